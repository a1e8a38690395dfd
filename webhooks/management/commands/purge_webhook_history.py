from django.core.management.base import BaseCommand

from webhooks.retention import purge_webhook_history


class Command(BaseCommand):
    help = (
        "Delete finished webhook deliveries (with their attempts) and events without deliveries older than "
        "WEBHOOK_RETENTION_DAYS (`run_worker` does it too). Pending deliveries and audit events are kept."
    )

    def handle(self, *args, **options):
        result = purge_webhook_history()
        self.stdout.write(
            f"Deleted {result.deliveries} deliveries, {result.attempts} attempts and {result.events} events."
        )

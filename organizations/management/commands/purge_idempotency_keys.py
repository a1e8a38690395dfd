from django.core.management.base import BaseCommand

from organizations.models import IdempotencyKey


class Command(BaseCommand):
    help = "Delete Idempotency-Keys older than 24 hours (`run_worker` does it too; or run it daily from cron)."

    def handle(self, *args, **options):
        deleted = IdempotencyKey.purge_expired()
        self.stdout.write(f"Deleted {deleted} expired idempotency keys.")

from django.core.management.base import BaseCommand
from django.utils import timezone

from organizations.models import IDEMPOTENCY_KEY_TTL, IdempotencyKey


class Command(BaseCommand):
    help = "Delete Idempotency-Keys older than 24 hours (run it daily, e.g. from cron)."

    def handle(self, *args, **options):
        cutoff = timezone.now() - IDEMPOTENCY_KEY_TTL
        deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} expired idempotency keys.")

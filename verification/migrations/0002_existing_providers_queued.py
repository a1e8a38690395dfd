"""Providers on file before verification existed: `pending` and queued, so the worker asks the
register about them first (or `unverified`, still queued, while no register is configured)."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

BATCH = 2000


def queue_existing_providers(apps, schema_editor):
    ProviderDetails = apps.get_model("accounts", "ProviderDetails")
    VerificationTask = apps.get_model("verification", "VerificationTask")
    RequestBudget = apps.get_model("verification", "RequestBudget")
    RequestBudget.objects.get_or_create(pk=1)
    status = "pending" if getattr(settings, "HI_SERVICE_URL", "") else "unverified"
    with_identity = ProviderDetails.objects.exclude(hpii_number__isnull=True, ahpra_number="")
    # One UPDATE, no history rows: the state is new, not a change of an old one.
    with_identity.update(verification_status=status)
    now = timezone.now()
    rows = with_identity.order_by("pk").values_list("user_id", "organization_id")
    batch = []
    for user_id, organization_id in rows.iterator(chunk_size=BATCH):
        batch.append(VerificationTask(user_id=user_id, organization_id=organization_id, priority=0, next_attempt_at=now))
        if len(batch) >= BATCH:
            VerificationTask.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    VerificationTask.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("verification", "0001_initial"),
        ("accounts", "0008_provider_verification_state"),
    ]

    operations = [migrations.RunPython(queue_existing_providers, migrations.RunPython.noop)]

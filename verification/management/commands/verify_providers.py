"""Ask the HI Service about providers now: `verify_providers [--organization ID] [--stale] [--all]`.

Without --stale or --all: the providers the register has not verified (unverified, pending,
mismatch, not_found, inactive, error). --stale: those whose revalidation is due. --all: every
provider with an HPI-I or AHPRA number. Each is asked through the same request as the API's
verify (audited; a verified provider stays verified until the answer), then the command works
the queue at HI_MAX_REQUESTS_PER_SECOND until they are answered, unless --queue-only leaves them
to the workers."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from accounts.models import ProviderDetails, User, VerificationStatus
from audit.context import Actor
from core.errors import ApplicationError
from hi_service import client as hi_client
from organizations.management.operator import organization_from_option
from verification import queue
from verification.models import VerificationTask

ACTOR = Actor.system("verify_providers")


class Command(BaseCommand):
    help = "Ask the HI Service about providers' details now (see the module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization's providers (its id).")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--stale", action="store_true", help="Providers whose revalidation is due.")
        which.add_argument("--all", action="store_true", help="Every provider with an HPI-I or AHPRA number.")
        parser.add_argument("--queue-only", action="store_true", help="Queue them for the workers and return.")

    def handle(self, *args, organization=None, stale=False, all=False, queue_only=False, **options):
        if not hi_client.configured() and not queue_only:
            raise CommandError("HI_SERVICE_URL is not set: the register can't be asked (use --queue-only to queue).")
        details = ProviderDetails.objects.filter(user__status=User.Status.ACTIVE).exclude(
            hpii_number__isnull=True, ahpra_number=""
        )
        if organization:
            details = details.filter(organization=organization_from_option(organization))
        if stale:
            details = details.filter(
                Q(verification_next_check_at__lte=timezone.now()) | Q(verification_checked_at__isnull=True)
            )
        elif not all:
            details = details.exclude(verification_status=VerificationStatus.VERIFIED)
        user_ids = list(details.values_list("user_id", flat=True))
        queued = 0
        with queue.inline_verification_disabled():
            for user in User.objects.filter(pk__in=user_ids).select_related("provider_details").iterator():
                try:
                    queue.provider_verification_request(user=user, actor=ACTOR)
                    queued += 1
                except ApplicationError:
                    continue
        self.stdout.write(f"Queued {queued} provider(s) for the HI Service.")
        if queue_only or not queued:
            return
        done = retried = 0
        while VerificationTask.objects.filter(pk__in=user_ids, next_attempt_at__lte=timezone.now()).exists():
            counts = queue.process_due(limit=50)
            done, retried = done + counts[queue.DONE], retried + counts[queue.RETRY]
            if not (counts[queue.DONE] or counts[queue.RETRY] or counts[queue.RELEASED] or counts[queue.GONE]):
                break
        self.stdout.write(f"Answered: {done}; errors, retried later by the workers: {retried}.")

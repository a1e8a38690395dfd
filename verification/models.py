"""The register check's queue, the shared request budget, and the append-only register log."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.append_only import AppendOnlyModel
from core.outbox import LeasedRow


class VerificationTask(LeasedRow):
    """One provider whose details the register is to be asked about: the outbox of the check.

    Written in the transaction of the change that needs it (an identity change, a request, the
    revalidation sweep). One row per provider: asking again while one is queued bumps `version`,
    so an answer about details that changed meanwhile is not applied (the newer check runs next).
    Claimed with core/outbox.py's Outbox; the row is deleted when its answer is recorded."""

    class Priority(models.IntegerChoices):
        # A change or a request: someone is waiting to prescribe. Verified before any revalidation.
        CHANGE = 0, "change or request"
        REVALIDATION = 1, "revalidation"

    user = models.OneToOneField(
        "accounts.User", on_delete=models.CASCADE, primary_key=True, related_name="verification_task"
    )
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.CHANGE)
    version = models.PositiveBigIntegerField(default=1)
    # Who made the check necessary (an actor as "type:id"); the local user id sent in the `user` header.
    requested_by = models.CharField(max_length=200, default="system:hi service")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last request.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "verification task"
        indexes = [
            # The worker's claim: due rows, changes before revalidations, oldest first.
            models.Index(fields=["priority", "next_attempt_at"], name="verification_task_due_idx"),
        ]

    def __str__(self):
        return f"Verification of {self.user_id}"


class RequestBudget(models.Model):
    """The one row every process reserves its register calls from (verification/rate.py): the next
    free moment, at HI_MAX_REQUESTS_PER_SECOND across every worker and request."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    next_free_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "HI Service request budget"

    def __str__(self):
        return f"Next register call free at {self.next_free_at:%H:%M:%S.%f}"


class RegisterCall(AppendOnlyModel):
    """One call to the HI Service, kept as it happened. Never updated or deleted.

    Holds what was sent on whose behalf (the HPI-O, the local user id) and what came back (the
    outcome, the service messages, the register's message id), not the details searched for."""

    class Operation(models.TextChoices):
        SEARCH_BY_HPII = "search_by_hpii", "provider-individual search by HPI-I"
        SEARCH_BY_AHPRA = "search_by_ahpra", "provider-individual search by AHPRA number"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    hpio_sent = models.CharField("HPI-O sent", max_length=16)
    user_id_sent = models.CharField("user id sent", max_length=200)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="register_calls", help_text="The provider asked about."
    )
    operation = models.CharField(max_length=32, choices=Operation.choices)
    outcome = models.CharField(max_length=16)  # hi_service's SearchResult.outcome
    service_messages = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    message_id = models.CharField("register's message id", max_length=200, blank=True)

    append_only_refusal = "The register log is append-only."

    class Meta:
        ordering = ["-id"]
        verbose_name = "HI Service call"
        indexes = [
            # GET .../users/{id}/provider-details/verifications, newest first.
            models.Index(fields=["user", "-id"], name="register_call_user_idx"),
            # The admin's list of an organization's calls.
            models.Index(fields=["organization", "-id"], name="register_call_org_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=["found", "not_found", "mismatch", "fault", "error"]),
                name="register_call_outcome_known",
            ),
        ]

    def __str__(self):
        return f"{self.get_operation_display()} at {self.occurred_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"

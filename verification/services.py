"""What the register's answer means for a provider, and the one way to record it.

`search_for(details)` builds the search from the person-identifying details: by HPI-I with the
family name, given names, date of birth and sex; without an HPI-I, by AHPRA number and family
name (the HI Service's recommended search), whose HPI-I found is shown as `found_hpii` and never
written into the details. `outcome_of(result)` maps the client's SearchResult to a verification
state. `verification_record` writes the state, and, when the status changes, the audit event
`user.provider_verification_changed` (actor system "hi service"), which sends its webhook.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import ProviderDetails, User, VerificationStatus
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from hi_service.client import ProviderSearch, SearchResult, hpii_status_kind
from verification import schedule
from verification.models import RegisterCall

HI_SERVICE_ACTOR = Actor.system("hi service")
MESSAGE_MAX_LENGTH = 500
NO_HPIO_MESSAGE = (
    "The organization has no HPI-O, so the register can't be asked on its behalf: staff add the "
    "practice's HPI-O in the admin, then the check runs again."
)
# Statuses that are the register's answer (asked again in HI_REVALIDATE_DAYS); `error` is retried by the queue.
ANSWERED = frozenset({
    VerificationStatus.VERIFIED, VerificationStatus.MISMATCH, VerificationStatus.NOT_FOUND, VerificationStatus.INACTIVE
})


@dataclass(frozen=True)
class Outcome:
    status: str
    hpii_status: str | None = None
    message: str = ""
    found_hpii: str | None = None


def search_for(details: ProviderDetails) -> tuple[str, ProviderSearch] | None:
    """(operation, search) for these details, or None when there is nothing to search by."""
    if details.hpii_number:
        return RegisterCall.Operation.SEARCH_BY_HPII, ProviderSearch(
            hpii=details.hpii_number,
            registration_id=None,
            family_name=details.family_name,
            given_names=tuple(details.given_name.split()) if details.given_name else (),
            date_of_birth=details.date_of_birth,
            sex=details.sex or None,
        )
    if details.ahpra_number:
        return RegisterCall.Operation.SEARCH_BY_AHPRA, ProviderSearch(
            hpii=None, registration_id=details.ahpra_number, family_name=details.family_name
        )
    return None


def messages_text(result: SearchResult) -> str:
    """The register's service-message codes and reasons, or the client's reason: never an identifier."""
    text = "; ".join(f"{m.code}: {m.reason}".strip(": ") for m in result.service_messages) or result.reason
    return text[:MESSAGE_MAX_LENGTH]


def outcome_of(result: SearchResult, *, by_ahpra: bool) -> Outcome:
    message = messages_text(result)
    if result.outcome == "found":
        kind = hpii_status_kind(result.hpii_status)
        found_hpii = result.hpii if by_ahpra else None
        if kind == "active":
            return Outcome(VerificationStatus.VERIFIED, result.hpii_status, message, found_hpii)
        if kind == "inactive":
            return Outcome(VerificationStatus.INACTIVE, result.hpii_status, message, found_hpii)
        return Outcome(
            VerificationStatus.ERROR,
            result.hpii_status,
            f"The register sent an HPI-I status this service does not know: {message}".rstrip(": ")[
                :MESSAGE_MAX_LENGTH
            ],
            found_hpii,
        )
    if result.outcome == "not_found":
        return Outcome(VerificationStatus.NOT_FOUND, None, message)
    if result.outcome == "mismatch":
        return Outcome(VerificationStatus.MISMATCH, None, message)
    # fault (the register refused the request) or error (it could not be asked, or its answer
    # can't be trusted): the reason is in the message, and the queue asks again.
    return Outcome(VerificationStatus.ERROR, None, message or "The register could not be asked.")


def register_call_record(*, details: ProviderDetails, hpio: str, user_id_sent: str, operation: str, result):
    """Append the call to the register log (its own transaction: kept whatever happens next)."""
    return RegisterCall.objects.create(
        organization_id=details.organization_id,
        hpio_sent=hpio,
        user_id_sent=user_id_sent[:200],
        user_id=details.user_id,
        operation=operation,
        outcome=result.outcome,
        service_messages=[
            {"code": m.code, "severity": m.severity, "reason": m.reason, "details": m.details}
            for m in result.service_messages
        ],
        reason=(result.reason or "")[:500],
        duration_ms=max(0, int(result.duration_ms or 0)),
        message_id=(result.message_id or "")[:200],
    )


def verification_record(*, user_id, outcome: Outcome, checked_at: datetime | None = None) -> bool:
    """Write the verification state of the user's provider details; True when the status changed.

    Inside its own transaction (or the caller's). A change of state is saved through save() (the
    details' history) with the audit event; a repeated answer only moves the check times."""
    now = timezone.now()
    checked_at = checked_at or now
    with transaction.atomic():
        details = ProviderDetails.objects.select_for_update().filter(pk=user_id).first()
        if details is None:
            return False
        previous_status = details.verification_status
        state = {
            "verification_status": outcome.status,
            "verification_hpii_status": outcome.hpii_status,
            "verification_message": outcome.message,
            "verification_found_hpii": outcome.found_hpii,
        }
        times = {
            "verification_checked_at": checked_at,
            "verification_next_check_at": (
                schedule.next_check_at(user_id=details.user_id, checked_at=checked_at)
                if outcome.status in ANSWERED
                else None
            ),
        }
        if all(getattr(details, field) == value for field, value in state.items()):
            ProviderDetails.objects.filter(pk=details.pk).update(**times)
            return False
        before = {field: getattr(details, field) for field in state}
        for field, value in {**state, **times}.items():
            setattr(details, field, value)
        state_save(details)
        status_changed = previous_status != outcome.status
        if status_changed:
            # The user resource shows the state (and can_prescribe follows it).
            User.objects.filter(pk=details.user_id).update(updated_at=details.updated_at)
            verification_changed_record(
                details=details,
                changes={
                    field.removeprefix("verification_"): {"from": before[field], "to": value}
                    for field, value in state.items()
                    if before[field] != value
                },
            )
        return status_changed


def state_save(details: ProviderDetails) -> None:
    """Save a change of verification state through save(), so the details' history has it (by the
    HI Service, never the API principal the history middleware would otherwise pick up)."""
    details._history_user = None
    details._change_reason = f"{HI_SERVICE_ACTOR.type}:{HI_SERVICE_ACTOR.name}"
    details.save()


def verification_changed_record(*, details: ProviderDetails, changes: dict) -> None:
    """The audit event of a change of status (its webhook follows from it): inside the change's transaction."""
    audit_event_record(
        action=AuditEvent.Action.USER_PROVIDER_VERIFICATION_CHANGED,
        actor=HI_SERVICE_ACTOR,
        organization_id=details.organization_id,
        user_id=details.user_id,
        changes=changes,
    )

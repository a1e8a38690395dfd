"""Receives accounts' provider_identity_changed: queue the register check in the change's own
transaction, record the move to `pending` (or `unverified`) as an audit event, and schedule the
inline attempt for after commit."""

from accounts import signals
from accounts.models import VerificationStatus
from verification import queue, services


def record_verification_work(sender, user, previous_status, actor, new_details=False, **kwargs):
    details = user.provider_details
    if previous_status != details.verification_status:
        services.verification_changed_record(
            details=details,
            changes={"status": {"from": previous_status, "to": details.verification_status}},
        )
    if not details.has_identity:
        queue.task_forget(user=user)
        return
    # A new user's details: no task can exist for them yet.
    queue.task_record(user=user, actor=actor, new=new_details)
    if details.verification_status == VerificationStatus.PENDING:
        queue.schedule_inline(user.pk)


def connect():
    signals.provider_identity_changed.connect(
        record_verification_work, dispatch_uid="verification.receivers:provider_identity_changed"
    )

"""Compare users with their Cognito accounts (reconcile_cognito), and repair drift through the outbox.

Drift is reported by kind and attribute/group name only: no values, so no PII reaches the output.
"""

from dataclasses import dataclass

from django.db import transaction

from accounts.cognito import sync
from accounts.cognito.gateway import CUSTOM_ORGANIZATION_ID, CognitoError, get_gateway
from accounts.models import User


@dataclass(frozen=True)
class Drift:
    user_id: str
    kind: str  # missing_account, attributes, groups, enabled_when_disabled, disabled_when_enabled, unreachable
    detail: str = ""

    def __str__(self):
        return f"{self.user_id} {self.kind}" + (f" {self.detail}" if self.detail else "")


def _expected_attributes(state: dict) -> dict[str, str]:
    # Not email_verified: a changed address is unverified until its owner proves it, in Cognito.
    return {
        "email": state["email"],
        "given_name": state["given_name"],
        "family_name": state["family_name"],
        CUSTOM_ORGANIZATION_ID: state["organization_id"],
    }


def user_drift(user: User, gateway=None) -> list[Drift]:
    """What differs between the user's desired state (from the database, now) and its account."""
    gateway = gateway or get_gateway()
    user_id = str(user.pk)
    try:
        account = gateway.describe(username=user_id)
    except CognitoError as error:
        return [Drift(user_id, "unreachable", error.code)]
    if account is None:
        return [Drift(user_id, "missing_account")]
    state = sync.desired_state(user)
    drifts = []
    wrong = sorted(
        name for name, value in _expected_attributes(state).items() if account["attributes"].get(name) != value
    )
    if wrong:
        drifts.append(Drift(user_id, "attributes", ",".join(wrong)))
    desired_groups, groups = set(state["groups"]), set(account["groups"])
    if desired_groups != groups:
        detail = []
        if desired_groups - groups:
            detail.append("missing=" + ",".join(sorted(desired_groups - groups)))
        if groups - desired_groups:
            detail.append("extra=" + ",".join(sorted(groups - desired_groups)))
        drifts.append(Drift(user_id, "groups", " ".join(detail)))
    if account["enabled"] and not state["enabled"]:
        # The user may be active while the organization is not: say which, so the operator knows
        # why an account of an active user must be off.
        drifts.append(Drift(user_id, "enabled_when_disabled", "" if user.is_disabled else "organization_inactive"))
    elif state["enabled"] and not account["enabled"]:
        drifts.append(Drift(user_id, "disabled_when_enabled"))
    return drifts


def user_repair(user: User) -> None:
    """Record the user's desired state again (as any change would) and apply it now, reading the
    account first: the last applied state is what drifted from."""
    with transaction.atomic():
        # Locked like the services lock it, so a concurrent change can't interleave with the record.
        locked = User.objects.select_for_update(of=("self",)).select_related("organization").get(pk=user.pk)
        sync.record_desired_state(locked, read_account=True)
    sync.sync_user(user.pk)  # after commit: no network call inside the transaction

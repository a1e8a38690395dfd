"""The receivers of the domain signals that change Cognito accounts: record the work in the change's
own transaction and schedule the inline attempt for after commit. A change the account does not
carry (provider details, a phone number) records and schedules nothing. An organization deactivated
or activated again records every one of its users' state (the worker applies it: no inline call)."""

from django.dispatch import Signal

from accounts import signals
from accounts.cognito import sync
from accounts.cognito.organization_state import record_users_cognito_state
from organizations.signals import organization_active_changed


def record_cognito_work(sender, user, signal=None, fields=None, **kwargs):
    if signal is signals.provider_details_updated:
        return  # Cognito carries no provider details
    if fields is not None and not sync.ACCOUNT_FIELDS.intersection(fields):
        return  # user_updated of fields the account does not carry
    sync.record_desired_state(user, new_user=signal is signals.user_created)
    sync.apply_after_commit(user.pk)


def record_organization_cognito_work(sender, organization, **kwargs):
    record_users_cognito_state(organization)


def _signal_names() -> dict[str, Signal]:
    names = {name: value for name, value in vars(signals).items() if isinstance(value, Signal)}
    # Every signal in ALL must have a module-level name, or it would get no stable dispatch_uid.
    if not {id(s) for s in names.values()} >= {id(s) for s in signals.ALL}:
        raise RuntimeError("every signal in accounts.signals.ALL needs a module-level name")
    return {name: signal for name, signal in names.items() if any(signal is s for s in signals.ALL)}


def connect():
    # A stable uid per signal (not id()), so a repeated ready() or reload can't connect twice.
    for name, signal in _signal_names().items():
        signal.connect(record_cognito_work, dispatch_uid=f"accounts.cognito.sync:{name}")
    organization_active_changed.connect(
        record_organization_cognito_work, dispatch_uid="accounts.cognito.sync:organization_active_changed"
    )

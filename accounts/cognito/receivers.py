"""The one receiver of the domain signals: record the Cognito work in the change's own transaction
and schedule the inline attempt for after commit."""

from accounts import signals
from accounts.cognito import sync


def record_cognito_work(sender, user, **kwargs):
    sync.record_desired_state(user)
    sync.apply_after_commit(user.pk)


def connect():
    for signal in signals.ALL:
        signal.connect(record_cognito_work, dispatch_uid=f"cognito-sync-{id(signal)}")

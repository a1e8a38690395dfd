"""Domain signals the services send inside their transaction, after the change and its audit row.

Receivers must only record work in the same transaction (and schedule anything external with
transaction.on_commit); the Cognito sync in accounts.cognito.receivers is the one receiver today.
Every signal is sent with `user=` (the changed User).
"""

from django.dispatch import Signal

user_created = Signal()
user_updated = Signal()
user_roles_changed = Signal()
user_disabled = Signal()
user_enabled = Signal()
provider_details_updated = Signal()

ALL = (user_created, user_updated, user_roles_changed, user_disabled, user_enabled, provider_details_updated)

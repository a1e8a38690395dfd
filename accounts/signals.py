"""Domain signals the services send inside their transaction, after the change and its audit row.

Each service call sends exactly one of them (or none when nothing changed), with `user=` (the
changed User). `user_updated` also carries `fields=` (the names of the user's fields that changed)
and `provider_details_changed=` (bool); `provider_details_updated` is sent when a `user_update`
changed the provider details only.

`provider_identity_changed` is sent besides (with `user=`, `previous_status=` the verification
state before the change, `actor=`, and `new_details=True` from a create) whenever a write set or
changed a person-identifying provider field (accounts.models.PERSON_IDENTIFYING_FIELDS); the
verification app queues the register check.

Receivers must only record work in the same transaction (and schedule anything external with
transaction.on_commit); the Cognito sync (accounts.cognito.receivers) and the register check (verification.receivers).
"""

from django.dispatch import Signal

user_created = Signal()
user_updated = Signal()
user_roles_changed = Signal()
user_disabled = Signal()
user_enabled = Signal()
provider_details_updated = Signal()

provider_identity_changed = Signal()

# The signals of a change Cognito may carry (provider_identity_changed is about the register only).
ALL = (user_created, user_updated, user_roles_changed, user_disabled, user_enabled, provider_details_updated)

"""Domain signals of the organization lifecycle, sent inside the change's transaction.

`organization_active_changed(organization=)`: the organization was deactivated or activated again.
accounts receives it to record every user's Cognito state in the same transaction.
"""

from django.dispatch import Signal

organization_active_changed = Signal()

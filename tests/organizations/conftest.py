"""For the organization lifecycle (Alice's practice is the one deactivated, Charlie's clinic must be
untouched; the personas and make_user are the root conftest's): a user's Cognito account state."""

import pytest

from audit.context import Actor

SETUP = Actor.system("test setup")


@pytest.fixture
def account_enabled(raw_cognito, pool_id):
    """account_enabled(user) -> AdminGetUser's Enabled flag of the user's Cognito account."""

    def enabled(user) -> bool:
        return raw_cognito.admin_get_user(UserPoolId=pool_id, Username=str(user.pk))["Enabled"]

    return enabled

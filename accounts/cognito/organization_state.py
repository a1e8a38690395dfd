"""An organization deactivated or activated again: every one of its users' Cognito state, in the
change's transaction (accounts' receiver of organizations' `organization_active_changed`)."""

from django.db import connection
from django.db.models import F
from django.utils import timezone

from accounts.cognito import sync
from accounts.models import CognitoSync, User
from core.batches import batched
from organizations.models import Organization

# The users' Cognito state is recorded this many at a time.
_USERS_PER_CHUNK = 1000


def record_users_cognito_state(organization: Organization) -> None:
    """In the caller's transaction: every user's newest desired Cognito state, enabled only when the
    user and the organization are both active, with its version bumped and due now, as
    sync.record_desired_state records one user's. An organization can have 100k users: no per-user
    round trip and no inline Cognito call (the worker applies the rows)."""
    if connection.vendor == "postgresql":
        _record_in_two_statements(organization)
    else:  # SQLite: the local demo's small organizations
        _record_row_by_row(organization)
    # A user without an outbox row (none, unless one was lost) gets one with its complete state.
    now = timezone.now()
    missing = User.objects.filter(organization=organization, cognito_sync__isnull=True)
    for chunk in batched(missing.iterator(chunk_size=_USERS_PER_CHUNK), _USERS_PER_CHUNK):
        for user in chunk:
            user.organization = organization
        CognitoSync.objects.bulk_create(
            [CognitoSync(user=user, desired=sync.desired_state(user), next_attempt_at=now) for user in chunk]
        )


def _record_in_two_statements(organization: Organization) -> None:
    """100,000 users in about 3 s. The outbox row always holds the user's complete newest state, so
    only its `enabled` changes; the expression is desired_state's rule, in SQL.

    The users are locked first: a change of one of them in flight commits before the UPDATE reads
    the user's status and outbox row, so the UPDATE neither misses it nor overwrites it."""
    users, outbox = User._meta.db_table, CognitoSync._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {users} WHERE organization_id = %s "  # noqa: S608 (our tables)
            "FOR NO KEY UPDATE) AS locked",
            [organization.pk],
        )
        cursor.execute(
            f"UPDATE {outbox} AS outbox SET "  # noqa: S608 (our tables)
            "desired = jsonb_set(outbox.desired, '{enabled}', to_jsonb(member.status = %s AND %s)), "
            "desired_version = outbox.desired_version + 1, state = %s, attempts = 0, next_attempt_at = %s, "
            f"updated_at = %s FROM {users} AS member "
            "WHERE member.organization_id = %s AND member.id = outbox.user_id",
            [User.Status.ACTIVE, organization.is_active, CognitoSync.State.PENDING, now, now, organization.pk],
        )


def _record_row_by_row(organization: Organization) -> None:
    now = timezone.now()
    users = User.objects.filter(organization=organization).select_for_update(of=("self",))
    for user in list(users):
        user.organization = organization  # the locked row in hand, with its new flag
        CognitoSync.objects.filter(pk=user.pk).update(
            desired=sync.desired_state(user),
            desired_version=F("desired_version") + 1,
            state=CognitoSync.State.PENDING,
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )

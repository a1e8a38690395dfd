"""accounts/expiry.py: the worker disables users whose access has expired (issue 17 c), through
user_disable (actor: system, "access expiry"), safely with several workers at once."""

import datetime as dt
import os
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services
from accounts.cognito import sync
from accounts.expiry import disable_expired_users
from accounts.models import CognitoSync, User
from audit.context import Actor
from audit.models import AuditEvent
from tests.factories import UserFactory

NOW = dt.datetime(2027, 3, 1, 9, 0, 0, tzinfo=dt.UTC)  # the fake clock


def _user(organization, email, *, expires_at=None, roles=("admin",)):
    user = UserFactory(
        organization=organization, actor=Actor.system("test"), email=email, given_name="Ann", family_name="Lee",
        roles=roles,
    )
    # Set as stored: the services refuse a past expiry, and the fake clock is not the real one.
    User.objects.filter(pk=user.pk).update(access_expires_at=expires_at)
    return user


@pytest.mark.django_db
def test_the_boundary_expires_exactly_now_is_disabled_one_second_later_is_not(organization):
    exact = _user(organization, "exact@x.example", expires_at=NOW)
    later = _user(organization, "later@x.example", expires_at=NOW + dt.timedelta(seconds=1))
    never = _user(organization, "never@x.example")

    assert disable_expired_users(now=NOW) == 1

    assert User.objects.get(pk=exact.pk).is_disabled
    assert User.objects.get(pk=later.pk).is_active and User.objects.get(pk=never.pk).is_active
    assert disable_expired_users(now=NOW) == 0  # nothing more is due

    assert disable_expired_users(now=NOW + dt.timedelta(seconds=1)) == 1
    assert User.objects.get(pk=later.pk).is_disabled
    assert User.objects.get(pk=never.pk).is_active


@pytest.mark.django_db
def test_it_disables_through_user_disable_with_the_system_actor(organization):
    user = _user(organization, "ann@x.example", expires_at=NOW - dt.timedelta(hours=1))

    disable_expired_users(now=NOW)

    stored = User.objects.get(pk=user.pk)
    assert (stored.status, stored.roles) == ("disabled", ["member"])
    event = AuditEvent.objects.get(user=user, action="user.disabled")
    assert (event.actor_type, event.actor_name) == ("system", "access expiry")
    assert event.changes["status"] == {"from": "active", "to": "disabled"}
    assert event.changes["access_roles"] == {"from": ["admin"], "to": ["member"]}
    assert "expired" in event.changes["reason"]["to"]
    assert CognitoSync.objects.get(user=user).desired["enabled"] is False


@pytest.mark.django_db
def test_disabled_and_other_organizations_users_are_handled_once(organization, other_organization):
    done = _user(organization, "done@x.example", expires_at=NOW - dt.timedelta(days=1))
    services.user_disable(user=done, actor=Actor.system("test"))
    charlie = _user(other_organization, "charlie@x.example", expires_at=NOW - dt.timedelta(days=1))

    assert disable_expired_users(now=NOW) == 1  # only Charlie's user was still active
    assert User.objects.get(pk=charlie.pk).is_disabled
    assert AuditEvent.objects.filter(user=done, action="user.disabled").count() == 1


@pytest.mark.django_db
def test_the_limit_bounds_one_pass_oldest_expiry_first(organization):
    users = [
        _user(organization, f"u{n}@x.example", expires_at=NOW - dt.timedelta(minutes=10 - n)) for n in range(5)
    ]
    assert disable_expired_users(now=NOW, limit=2) == 2
    assert [User.objects.get(pk=u.pk).is_disabled for u in users] == [True, True, False, False, False]
    assert disable_expired_users(now=NOW, limit=10) == 3


@pytest.mark.django_db
def test_the_default_clock_is_now(organization):
    user = _user(organization, "ann@x.example", expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert disable_expired_users() == 1
    assert User.objects.get(pk=user.pk).is_disabled


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL (SKIP LOCKED)"
)
def test_two_workers_at_once_disable_each_user_once(organization):
    with sync.inline_sync_disabled():
        users = [_user(organization, f"u{n}@x.example", expires_at=NOW - dt.timedelta(minutes=n)) for n in range(6)]
    start = threading.Barrier(2)
    counts, errors = [], []

    def slow_disable(execute, sql, params, many, context):
        # Widen the race: hold each claimed row a moment, so the two workers overlap.
        result = execute(sql, params, many, context)
        if "FOR UPDATE SKIP LOCKED" in sql:
            time.sleep(0.05)
        return result

    def worker():
        try:
            start.wait()
            with sync.inline_sync_disabled(), connection.execute_wrapper(slow_disable):
                counts.append(disable_expired_users(now=NOW))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(counts) == 6 and all(counts), counts  # both took part, nobody twice
    for user in users:
        assert AuditEvent.objects.filter(user=user, action="user.disabled").count() == 1
        assert User.objects.get(pk=user.pk).is_disabled


def _form(user, **overrides):
    data = {
        "email": user.email, "given_name": user.given_name, "family_name": user.family_name, "title": user.title,
        "phone": user.phone, "partner_user_id": user.partner_user_id or "",
        "access_expires_at_0": "", "access_expires_at_1": "",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_the_admin_shows_and_sets_the_expiry(staff_client, organization):
    user = _user(organization, "ann@x.example")
    url = f"/admin/accounts/user/{user.pk}/change/"
    assert 'name="access_expires_at_0"' in staff_client.get(url).text

    future = timezone.localtime(timezone.now() + dt.timedelta(days=10)).replace(second=0, microsecond=0)
    response = staff_client.post(
        url, _form(user, access_expires_at_0=future.strftime("%Y-%m-%d"), access_expires_at_1=future.strftime("%H:%M:%S"))
    )
    assert response.status_code == 302, response.content
    assert User.objects.get(pk=user.pk).access_expires_at == future
    event = AuditEvent.objects.filter(user=user, action="user.updated").latest("id")
    assert event.changes["access_expires_at"]["to"] == future.astimezone(dt.UTC).isoformat()


@pytest.mark.django_db
def test_the_admin_refuses_a_past_expiry(staff_client, organization):
    user = _user(organization, "ann@x.example")
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        _form(user, access_expires_at_0="2001-01-01", access_expires_at_1="00:00:00"),
    )
    assert response.status_code == 200
    assert "Must be in the future" in response.text
    assert User.objects.get(pk=user.pk).access_expires_at is None


@pytest.mark.django_db
def test_staff_re_enabling_an_expired_user_clears_the_passed_expiry_so_the_worker_leaves_them(organization):
    past = timezone.now() - dt.timedelta(minutes=5)
    user = _user(organization, "back@x.example", expires_at=past)
    disable_expired_users()

    services.user_enable(user=User.objects.get(pk=user.pk), actor=Actor.system("staff test"))

    stored = User.objects.get(pk=user.pk)
    assert stored.is_active and stored.access_expires_at is None
    assert disable_expired_users() == 0  # not disabled again a few seconds later
    event = AuditEvent.objects.get(user=user, action="user.enabled")
    assert event.changes["access_expires_at"]["to"] is None


@pytest.mark.django_db
def test_re_enabling_keeps_an_expiry_still_in_the_future(organization):
    user = _user(organization, "soon@x.example")
    services.user_disable(user=user, actor=Actor.system("test"))
    future = timezone.now() + dt.timedelta(days=3)
    User.objects.filter(pk=user.pk).update(access_expires_at=future)

    services.user_enable(user=User.objects.get(pk=user.pk), actor=Actor.system("staff test"))

    assert User.objects.get(pk=user.pk).access_expires_at == future


@pytest.mark.django_db(transaction=True)
def test_a_pass_records_the_cognito_work_without_waiting_on_cognito_and_stops_when_asked(organization, monkeypatch):
    users = [_user(organization, f"e{n}@x.example", expires_at=NOW - dt.timedelta(minutes=n)) for n in range(3)]
    inline = []
    monkeypatch.setattr(sync, "_apply_inline", lambda user_id: inline.append(user_id))

    assert disable_expired_users(now=NOW, should_stop=lambda: True) == 0  # SIGTERM before the first
    assert disable_expired_users(now=NOW) == 3

    assert inline == []  # nothing applied inline: the worker's Cognito job does it
    rows = CognitoSync.objects.filter(user__in=users)
    assert {row.state for row in rows} == {"pending"} and all(not row.desired["enabled"] for row in rows)

"""access_expires_at on the user resource (issue 17 c): set on create and update, in the future
or null; shown in the detail and the list; `?expiring_before=` filters the list."""

import datetime as dt
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from tests.api.support import assert_problem, create_user, error_fields, user_body

pytestmark = pytest.mark.django_db


def _in(days=0, **delta) -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=days, **delta)).replace(microsecond=0).astimezone(dt.UTC)


def test_create_with_an_expiry_shows_it_in_utc(api, users_url):
    moment = _in(days=30)
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=10))).isoformat()
    user = create_user(api, users_url, access_expires_at=local)
    assert user["access_expires_at"] == moment.isoformat()
    assert User.objects.get(pk=user["id"]).access_expires_at == moment
    event = AuditEvent.objects.get(user_id=user["id"], action="user.created")
    assert event.changes["access_expires_at"] == {"from": None, "to": moment.isoformat()}


def test_without_an_expiry_it_is_null(api, users_url):
    assert create_user(api, users_url)["access_expires_at"] is None
    assert create_user(api, users_url, email="x@x.com", access_expires_at=None)["access_expires_at"] is None


@pytest.mark.parametrize("value", ["Z", "2027-01-01T00:00:00Z"])
def test_z_suffix_is_accepted(api, users_url, value):
    if value == "Z":
        value = _in(days=1).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert create_user(api, users_url, access_expires_at=value)["access_expires_at"].endswith("+00:00")


@pytest.mark.parametrize(
    "value",
    [
        "2020-01-01T00:00:00Z",  # in the past
        "yesterday",
        "2027-01-01",  # a date, not a date-time
        "2027-01-01T00:00:00",  # no offset: ambiguous
        "2027-13-01T00:00:00Z",
        "2027-01-01T00:00:00+25:00",
        "9999-12-31T23:59:59-14:00",  # leaves the calendar in UTC
        12345,
        True,
        "",
    ],
)
def test_a_bad_or_past_expiry_is_400_naming_the_field(api, users_url, value):
    response = api.post(users_url, user_body(access_expires_at=value), format="json")
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"access_expires_at"}
    assert not User.objects.exists()


def test_now_itself_is_not_in_the_future(api, users_url, monkeypatch):
    from accounts import services

    moment = _in(days=1)
    # The services' clock only (the token's expiry reads the real one).
    monkeypatch.setattr(services, "timezone", SimpleNamespace(now=lambda: moment, is_aware=timezone.is_aware))
    response = api.post(users_url, user_body(access_expires_at=moment.isoformat()), format="json")
    assert error_fields(assert_problem(response, 400, "validation_error")) == {"access_expires_at"}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_sets_changes_and_clears_it(api, users_url, method):
    user = create_user(api, users_url)
    url = f"{users_url}/{user['id']}"
    moment = _in(days=7)
    body = getattr(api, method)(url, {"access_expires_at": moment.isoformat()}, format="json").json()
    assert body["access_expires_at"] == moment.isoformat()
    later = _in(days=14)
    assert getattr(api, method)(url, {"access_expires_at": later.isoformat()}, format="json").json()[
        "access_expires_at"
    ] == later.isoformat()
    assert getattr(api, method)(url, {"access_expires_at": None}, format="json").json()["access_expires_at"] is None
    changes = [e.changes["access_expires_at"] for e in AuditEvent.objects.filter(
        user_id=user["id"], action="user.updated").order_by("id")]
    assert changes == [
        {"from": None, "to": moment.isoformat()},
        {"from": moment.isoformat(), "to": later.isoformat()},
        {"from": later.isoformat(), "to": None},
    ]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_the_past_is_400_and_changes_nothing(api, users_url, method):
    user = create_user(api, users_url)
    response = getattr(api, method)(
        f"{users_url}/{user['id']}", {"access_expires_at": "2001-01-01T00:00:00Z", "title": "Dr"}, format="json"
    )
    assert error_fields(assert_problem(response, 400, "validation_error")) == {"access_expires_at"}
    stored = User.objects.get(pk=user["id"])
    assert (stored.access_expires_at, stored.title) == (None, "")


def test_a_stored_expiry_that_just_passed_does_not_block_other_changes(api, users_url):
    user = create_user(api, users_url, access_expires_at=_in(days=1).isoformat())
    User.objects.filter(pk=user["id"]).update(access_expires_at=_in(days=-1))  # the worker hasn't run yet
    response = api.patch(f"{users_url}/{user['id']}", {"title": "Dr"}, format="json")
    assert response.status_code == 200, response.content


def test_the_list_shows_it_and_filters_by_expiring_before(api, users_url):
    soon = create_user(api, users_url, email="soon@x.com", access_expires_at=_in(days=2).isoformat())
    later = create_user(api, users_url, email="later@x.com", access_expires_at=_in(days=20).isoformat())
    create_user(api, users_url, email="never@x.com")

    everyone = api.get(users_url).json()["results"]
    assert {u["email"]: u["access_expires_at"] for u in everyone} == {
        "soon@x.com": soon["access_expires_at"], "later@x.com": later["access_expires_at"], "never@x.com": None,
    }

    def emails(before):
        response = api.get(f"{users_url}?{urlencode({'expiring_before': before})}")
        assert response.status_code == 200, response.content
        return {u["email"] for u in response.json()["results"]}

    assert emails(_in(days=10).isoformat()) == {"soon@x.com"}
    assert emails(_in(days=30).isoformat()) == {"soon@x.com", "later@x.com"}
    assert emails(_in(days=1).isoformat()) == set()
    assert emails(soon["access_expires_at"]) == set()  # strictly before


@pytest.mark.parametrize("value", ["soon", "2027-02-30T00:00:00Z", "2027-01-01T00:00:00+20:00", "9999-12-31T23:59:59-14:00"])
def test_a_bad_expiring_before_is_400_naming_it(api, users_url, value):
    response = api.get(f"{users_url}?{urlencode({'expiring_before': value})}")
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"expiring_before"}


# --- a passed expiry is final through the API, at once ---------------------------------------------


def _expired_yesterday(api, users_url, **body):
    user = create_user(api, users_url, access_expires_at=_in(days=1).isoformat(), **body)
    passed = _in(days=-1)
    User.objects.filter(pk=user["id"]).update(access_expires_at=passed)  # the worker hasn't run yet
    return user, passed


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("new_value", [None, "future"])
def test_a_passed_expiry_cant_be_cleared_or_moved(api, users_url, method, new_value):
    user, passed = _expired_yesterday(api, users_url)
    value = _in(days=30).isoformat() if new_value == "future" else None
    response = getattr(api, method)(
        f"{users_url}/{user['id']}", {"access_expires_at": value, "title": "Dr"}, format="json"
    )
    body = assert_problem(response, 409, "access_expired")
    assert error_fields(body) == {"access_expires_at"}
    assert passed.isoformat() in body["detail"]
    stored = User.objects.get(pk=user["id"])
    assert (stored.access_expires_at, stored.title, stored.status) == (passed, "", "active")
    assert not AuditEvent.objects.filter(user_id=user["id"], action="user.updated").exists()


def test_sending_a_passed_expiry_back_unchanged_is_not_a_change(api, users_url):
    user, passed = _expired_yesterday(api, users_url)
    response = api.put(
        f"{users_url}/{user['id']}", {"access_expires_at": passed.isoformat(), "title": "Dr"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["access_expires_at"] == passed.isoformat()


def test_an_expired_prescriber_cant_prescribe_before_the_worker_runs(api, users_url):
    from tests.api.support import provider_body

    created = api.post(users_url, provider_body(access_expires_at=_in(days=1).isoformat()), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["can_prescribe"] is True
    user_id = created.json()["id"]
    User.objects.filter(pk=user_id).update(access_expires_at=_in(days=-1))

    detail = api.get(f"{users_url}/{user_id}").json()
    listed = {u["id"]: u for u in api.get(users_url).json()["results"]}[user_id]
    assert detail["status"] == listed["status"] == "active"  # the worker disables them, within a minute
    assert detail["can_prescribe"] is False
    assert listed["can_prescribe"] is False
    assert User.objects.get(pk=user_id).can_prescribe is False

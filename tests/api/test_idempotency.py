"""Idempotency-Key on POST /users: retries replay the first response and never create twice."""

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, connections

from accounts.api.idempotency import _request_hash
from accounts.models import User
from audit.models import AuditEvent
from organizations.models import IdempotencyKey

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def ben(email="ben@my-practice.com", **extra):
    return {"given_name": "Ben", "family_name": "Smith", "email": email, "access_roles": ["rx_reader"], **extra}


def post(api, url, body, key):
    return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retry_with_the_same_key_and_body_replays_the_first_response(api, users_url):
    first = post(api, users_url, ben(), "key-1")
    assert first.status_code == 201, first.content

    retry = post(api, users_url, ben(), "key-1")

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Location"] == first["Location"]
    assert retry["Idempotent-Replayed"] == "true"
    assert User.objects.filter(email="ben@my-practice.com").count() == 1
    assert AuditEvent.objects.filter(action="user.created").count() == 1


def test_a_crash_after_the_commit_replays_the_user_on_retry(api, users_url, monkeypatch):
    # The process dies after the user's transaction committed, before the response was stored:
    # the key already points at the user, so the retry replays it (no user_already_exists, no twin).
    from accounts.api.views import UserViewSet

    real_respond = UserViewSet._respond

    def die_once(self, *args, **kwargs):
        monkeypatch.setattr(UserViewSet, "_respond", real_respond)
        raise RuntimeError("crashed after the commit")

    monkeypatch.setattr(UserViewSet, "_respond", die_once)
    assert post(api, users_url, ben(), "key-1").status_code == 500
    user = User.objects.get(email="ben@my-practice.com")
    assert IdempotencyKey.objects.get().outcome_id == user.pk
    assert IdempotencyKey.objects.get().response_status is None

    retry = post(api, users_url, ben(), "key-1")

    assert retry.status_code == 201, retry.content
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == str(user.pk)
    assert retry.json()["email"] == "ben@my-practice.com"
    assert retry["Location"].endswith(f"{users_url}/{user.pk}")
    assert User.objects.filter(email="ben@my-practice.com").count() == 1
    assert AuditEvent.objects.filter(action="user.created").count() == 1
    # A later retry, with the same key and another body, is still the reused-key conflict.
    assert post(api, users_url, ben(email="amy@my-practice.com"), "key-1").json()["code"] == "idempotency_key_reused"


def test_the_outcome_commits_with_the_user_or_not_at_all(api, users_url, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("the outcome could not be written")

    monkeypatch.setattr("accounts.api.views.record_outcome", fail)
    assert post(api, users_url, ben(), "key-1").status_code == 500

    assert not User.objects.exists()  # the user's transaction rolled back with it
    assert not IdempotencyKey.objects.exists()  # and the key was released for a corrected retry
    monkeypatch.undo()
    assert post(api, users_url, ben(), "key-1").status_code == 201


def test_the_same_json_serialised_differently_is_the_same_request(api, users_url):
    first = post(api, users_url, ben(), "key-1")
    reordered = '{"access_roles": ["rx_reader"], "email": "ben@my-practice.com", "family_name": "Smith", "given_name": "Ben"}'

    retry = api.post(users_url, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_a_conflict(api, users_url):
    assert post(api, users_url, ben(), "key-1").status_code == 201

    reused = post(api, users_url, ben(email="someone-else@my-practice.com"), "key-1")

    assert reused.status_code == 409
    assert reused["Content-Type"] == PROBLEM
    assert reused.json()["code"] == "idempotency_key_reused"
    assert not User.objects.filter(email="someone-else@my-practice.com").exists()


def test_without_a_key_a_retry_is_a_new_request(api, users_url):
    assert api.post(users_url, ben(), format="json").status_code == 201
    again = api.post(users_url, ben(), format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "user_already_exists"


def test_keys_belong_to_one_api_client(api, api_for, organization, users_url):
    other_software = api_for(organization)
    assert post(api, users_url, ben(), "shared-key").status_code == 201

    theirs = post(other_software, users_url, ben(email="amy@my-practice.com"), "shared-key")

    assert theirs.status_code == 201, theirs.content
    assert theirs.json()["email"] == "amy@my-practice.com"


def test_a_failed_request_releases_its_key(api, users_url):
    invalid = post(api, users_url, ben(email="not-an-email"), "key-1")
    assert invalid.status_code == 400
    assert not IdempotencyKey.objects.exists()

    corrected = post(api, users_url, ben(), "key-1")

    assert corrected.status_code == 201
    assert IdempotencyKey.objects.get().response_status == 201


def test_keys_expire_after_24_hours(api, users_url):
    first = post(api, users_url, ben(), "key-1")
    IdempotencyKey.objects.update(created_at=first_created_at() - timedelta(hours=24, seconds=1))

    after_expiry = post(api, users_url, ben(email="amy@my-practice.com"), "key-1")

    assert after_expiry.status_code == 201
    assert after_expiry.json()["id"] != first.json()["id"]


def first_created_at():
    return IdempotencyKey.objects.get().created_at


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_a_validation_error(api, users_url, key):
    response = api.post(users_url, ben(), format="json", HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not User.objects.exists()


def _claim_as_in_progress(api_client, url, body, key, age=timedelta(0)):
    fake = SimpleNamespace(method="POST", path=url, data=body)
    record = IdempotencyKey.objects.create(api_client=api_client, key=key, request_hash=_request_hash(fake))
    IdempotencyKey.objects.filter(pk=record.pk).update(created_at=record.created_at - age)


def test_a_retry_while_the_first_request_is_running_is_told_so(api, users_url, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    api_client = api_client_of(api, users_url)
    _claim_as_in_progress(api_client, users_url, ben(), "key-1")

    response = post(api, users_url, ben(), "key-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert not User.objects.exists()


def test_a_key_abandoned_by_a_crashed_request_is_taken_over(api, users_url, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    _claim_as_in_progress(api_client_of(api, users_url), users_url, ben(), "key-1", age=timedelta(minutes=6))

    response = post(api, users_url, ben(), "key-1")

    assert response.status_code == 201


def api_client_of(api, users_url):
    """The API client behind `api`'s token (it made the one request seen so far)."""
    api.get(users_url)
    from organizations.models import ApiClient

    return ApiClient.objects.get()


def test_purge_deletes_only_expired_keys(api, users_url):
    post(api, users_url, ben(), "old")
    post(api, users_url, ben(email="amy@my-practice.com"), "new")
    IdempotencyKey.objects.filter(key="old").update(created_at=first_created_at_of("old") - timedelta(hours=25))

    call_command("purge_idempotency_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def first_created_at_of(key):
    return IdempotencyKey.objects.get(key=key).created_at


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_exactly_one_user(api, users_url):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and in-memory databases aren't shared")
    workers = 6
    barrier = threading.Barrier(workers)
    responses = []

    def retry():
        try:
            barrier.wait()
            responses.append(post(api, users_url, ben(), "the-one-key"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=retry) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert User.objects.filter(email="ben@my-practice.com").count() == 1
    assert AuditEvent.objects.filter(action="user.created").count() == 1
    created = [r for r in responses if r.status_code == 201]
    assert len(responses) == workers
    assert {r.json()["id"] for r in created} == {str(User.objects.get(email="ben@my-practice.com").pk)}
    # Any response that isn't the replay is the documented "still running" answer, never a duplicate.
    assert all(r.json()["code"] == "idempotency_key_in_progress" for r in responses if r.status_code != 201)

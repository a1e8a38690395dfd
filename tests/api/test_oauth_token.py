"""POST /v1/oauth/token: client credentials (RFC 6749 §4.4), errors per §5.2."""

import base64
import time

import pytest
from rest_framework.test import APIClient

from audit.context import Actor
from organizations.services import api_client_create, api_client_revoke
from tests.isolation import redis_key_prefix

pytestmark = pytest.mark.django_db

TOKEN_URL = "/v1/oauth/token"


@pytest.fixture
def credentials(organization):
    api_client, secret = api_client_create(actor=Actor.system("tests"),
        organization=organization, name="PMS", scopes=["read:users", "create:user"]
    )
    return api_client, api_client.application.client_id, secret


def _basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _token_request(basic_id, secret, **form):
    form.setdefault("grant_type", "client_credentials")
    return APIClient().post(TOKEN_URL, form, format="multipart", HTTP_AUTHORIZATION=_basic(basic_id, secret))


def _bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_token_response_shape(credentials):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert "refresh_token" not in body  # §4.4.3: no refresh token for client credentials
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert sorted(body["scope"].split()) == ["create:user", "read:users"]
    assert response["Cache-Control"] == "no-store"
    assert response["X-Request-ID"]


def test_the_token_works_against_the_api(credentials, organization):
    _, client_id, secret = credentials
    token = _token_request(client_id, secret).json()["access_token"]
    assert _bearer(token).get(f"/v1/organizations/{organization.pk}/users").status_code == 200


def test_form_encoded_body_works_too(credentials):
    _, client_id, secret = credentials
    response = APIClient().post(
        TOKEN_URL,
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client_id, secret),
    )
    assert response.status_code == 200, response.content


def test_a_token_is_limited_to_the_requested_scope(credentials, organization):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, scope="read:users")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "read:users"
    client = _bearer(response.json()["access_token"])
    users_url = f"/v1/organizations/{organization.pk}/users"
    assert client.get(users_url).status_code == 200
    denied = client.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@x.com"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"


@pytest.mark.parametrize("scope", ["delete:user", "read:users delete:user", "admin:everything"])
def test_asking_for_a_scope_the_client_does_not_have_is_invalid_scope(credentials, scope):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, scope=scope)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("wrong", ["secret", "client"])
def test_bad_secret_or_unknown_client_is_401_invalid_client(credentials, wrong):
    _, client_id, secret = credentials
    if wrong == "secret":
        response = _token_request(client_id, secret + "x")
    else:
        response = _token_request("no-such-client", secret)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


def test_no_client_authentication_is_401(credentials):
    response = APIClient().post(TOKEN_URL, {"grant_type": "client_credentials"}, format="multipart")
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


def test_a_revoked_client_gets_no_token(credentials):
    api_client, client_id, secret = credentials
    api_client_revoke(actor=Actor.system("tests"), api_client=api_client)
    response = _token_request(client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "", "nonsense"])
def test_other_grant_types_are_refused(credentials, grant_type):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, grant_type=grant_type)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in {"unsupported_grant_type", "invalid_request", "unauthorized_client"}
    assert "access_token" not in response.json()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_wrong_method_is_a_problem_405(method):
    response = getattr(APIClient(), method)(TOKEN_URL)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response["Allow"] == "POST"
    assert response.json()["code"] == "method_not_allowed"


def test_the_token_is_stored_only_as_a_checksum(credentials):
    from oauth2_provider.models import AccessToken

    _, client_id, secret = credentials
    token = _token_request(client_id, secret).json()["access_token"]
    assert not AccessToken.objects.filter(token=token).exists()
    assert AccessToken.objects.count() == 1


# --- only the client-credentials grant: no resource-owner password oracle ------------------------


@pytest.fixture
def staff_member(db):
    from accounts.models import User

    return User.objects.create_superuser(
        email="staff@platform.example", password="correct horse battery", given_name="Sam", family_name="Staff"
    )


def test_the_password_grant_answers_the_same_whatever_the_password_and_looks_nobody_up(
    credentials, staff_member, monkeypatch
):
    from unittest import mock

    from django.contrib.auth.backends import ModelBackend
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, client_id, secret = credentials
    backend = mock.Mock(wraps=ModelBackend.authenticate, side_effect=ModelBackend.authenticate)
    monkeypatch.setattr(ModelBackend, "authenticate", backend)
    answers = []
    for username, password in [
        ("staff@platform.example", "correct horse battery"),  # the right password
        ("staff@platform.example", "wrong"),
        ("nobody@platform.example", "wrong"),
    ]:
        with CaptureQueriesContext(connection) as queries:
            response = _token_request(client_id, secret, grant_type="password", username=username, password=password)
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "unsupported_grant_type"
        assert not [q for q in queries.captured_queries if "accounts_user" in q["sql"]]
        answers.append((response.status_code, response.content, response["Content-Type"]))
    assert answers[0] == answers[1] == answers[2]
    assert backend.call_count == 0


def test_the_validator_never_checks_user_credentials(credentials, staff_member, monkeypatch):
    from unittest import mock

    from accounts.api.oauth import ApiClientOAuth2Validator

    authenticate = mock.Mock()
    monkeypatch.setattr("oauth2_provider.oauth2_validators.authenticate", authenticate)
    assert ApiClientOAuth2Validator().validate_user(
        "staff@platform.example", "correct horse battery", None, mock.Mock()
    ) is False
    authenticate.assert_not_called()


@pytest.mark.parametrize("grant_types", [["password"], ["client_credentials", "password"], ["refresh_token"]])
def test_any_grant_but_client_credentials_is_refused_before_the_client_is_checked(credentials, grant_types):
    _, client_id, _ = credentials
    body = "&".join(f"grant_type={g}" for g in grant_types) + "&username=u&password=p"
    response = APIClient().post(
        TOKEN_URL, body, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=_basic(client_id, "x")
    )
    assert response.status_code == 400, response.content
    expected = "invalid_request" if len(grant_types) > 1 else "unsupported_grant_type"
    assert response.json()["error"] == expected
    # No client authentication happened, so nothing was counted against the client either.
    for _ in range(12):
        APIClient().post(TOKEN_URL, body, content_type="application/x-www-form-urlencoded",
                         HTTP_AUTHORIZATION=_basic(client_id, "x"))
    assert _token_request(client_id, credentials[2]).status_code == 200


# --- the budget of failed client authentications --------------------------------------------------


def _retry_after(response) -> int:
    assert response.status_code == 429, response.content
    assert response.json()["error"] == "rate_limited"
    value = int(response["Retry-After"])
    assert 1 <= value <= 600
    return value


def test_ten_wrong_secrets_lock_the_client_id_even_for_the_right_secret(credentials, organization):
    _, client_id, secret = credentials
    for _ in range(10):
        assert _token_request(client_id, "wrong").status_code == 401
    _retry_after(_token_request(client_id, secret))
    _retry_after(_token_request(client_id, "wrong"))
    # From another address too: the budget is the client id's.
    locked = APIClient().post(TOKEN_URL, {"grant_type": "client_credentials"}, format="multipart",
                              HTTP_AUTHORIZATION=_basic(client_id, secret), REMOTE_ADDR="10.7.7.7")
    _retry_after(locked)
    # Another client of the same practice is not locked out.
    _, other_id, other_secret = _other_credentials(organization)
    assert _token_request(other_id, other_secret).status_code == 200


def _other_credentials(organization, name="Other PMS"):
    api_client, secret = api_client_create(actor=Actor.system("test"), organization=organization, name=name, scopes=["read:users"])
    return api_client, api_client.application.client_id, secret


def test_the_client_id_counts_in_the_form_body_too(credentials):
    _, client_id, secret = credentials
    for _ in range(10):
        response = APIClient().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": client_id,
                                                "client_secret": "wrong"}, format="multipart")
        assert response.status_code == 401
    _retry_after(_token_request(client_id, secret))


def test_successful_requests_use_no_budget(credentials):
    _, client_id, secret = credentials
    for _ in range(9):
        assert _token_request(client_id, "wrong").status_code == 401
    for _ in range(5):
        assert _token_request(client_id, secret).status_code == 200
    assert _token_request(client_id, "wrong").status_code == 401  # the 10th failure
    _retry_after(_token_request(client_id, secret))


def test_one_address_gets_at_most_100_failures_across_client_ids(credentials):
    _, client_id, secret = credentials

    def attempt(claimed, password, address="10.1.1.1"):
        return APIClient().post(TOKEN_URL, {"grant_type": "client_credentials"}, format="multipart",
                                HTTP_AUTHORIZATION=_basic(claimed, password), REMOTE_ADDR=address)

    for number in range(100):
        assert attempt(f"no-such-client-{number}", "x").status_code == 401
    _retry_after(attempt(client_id, secret))
    _retry_after(attempt("yet-another-client", "x"))
    # The client itself is not locked (its own id failed nowhere), from another address.
    assert attempt(client_id, secret, address="10.2.2.2").status_code == 200


def test_the_address_is_the_one_the_trusted_proxy_forwarded(credentials, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _, client_id, secret = credentials

    def attempt(claimed, password, forwarded):
        return APIClient().post(TOKEN_URL, {"grant_type": "client_credentials"}, format="multipart",
                                HTTP_AUTHORIZATION=_basic(claimed, password), REMOTE_ADDR="10.0.0.1",
                                HTTP_X_FORWARDED_FOR=forwarded)

    for number in range(100):
        assert attempt(f"nobody-{number}", "x", "198.51.100.7").status_code == 401
    _retry_after(attempt(client_id, secret, "198.51.100.7"))
    # The same proxy, another client behind it.
    assert attempt(client_id, secret, "203.0.113.9").status_code == 200


def test_the_lock_ends_with_its_window(credentials, monkeypatch):
    from accounts.api.oauth import ApiTokenView

    _, client_id, secret = credentials
    start = time.time()
    monkeypatch.setattr(ApiTokenView, "timer", staticmethod(lambda: start))
    for _ in range(10):
        assert _token_request(client_id, "wrong").status_code == 401
    monkeypatch.setattr(ApiTokenView, "timer", staticmethod(lambda: start + 590))
    assert _retry_after(_token_request(client_id, secret)) <= 10
    # The clock passes the window while the cache still holds the keys (a backend rounding its expiry).
    monkeypatch.setattr(ApiTokenView, "timer", staticmethod(lambda: start + 601))
    assert _token_request(client_id, secret).status_code == 200


def test_the_lock_ends_when_the_cache_expires_the_window(credentials, monkeypatch):
    _, client_id, secret = credentials
    for _ in range(10):
        assert _token_request(client_id, "wrong").status_code == 401
    _retry_after(_token_request(client_id, secret))
    real_time = time.time
    # Every clock (the view's and the cache's expiry) moves on 10 minutes.
    monkeypatch.setattr(time, "time", lambda: real_time() + 601)
    from accounts.api.oauth import ApiTokenView

    monkeypatch.setattr(ApiTokenView, "timer", staticmethod(time.time))
    assert _token_request(client_id, secret).status_code == 200
    # A fresh window: ten more failures to lock it again.
    for _ in range(10):
        assert _token_request(client_id, "wrong").status_code == 401
    _retry_after(_token_request(client_id, secret))


def test_an_inactive_organizations_client_gets_no_token(credentials, organization):
    from organizations.models import Organization

    _, client_id, secret = credentials
    Organization.objects.filter(pk=organization.pk).update(is_active=False)
    response = _token_request(client_id, secret)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


# --- expired tokens ---------------------------------------------------------------------------------


def test_delete_expired_tokens_deletes_expired_ones_and_keeps_live_ones(credentials):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from accounts.api.oauth import delete_expired_tokens

    _, client_id, secret = credentials
    tokens = [_token_request(client_id, secret).json()["access_token"] for _ in range(3)]
    assert AccessToken.objects.count() == 3
    expired_ids = list(AccessToken.objects.order_by("pk").values_list("pk", flat=True)[:2])
    AccessToken.objects.filter(pk__in=expired_ids).update(expires=timezone.now() - timedelta(seconds=1))

    assert delete_expired_tokens() == 2
    assert list(AccessToken.objects.values_list("pk", flat=True)) == [
        pk for pk in AccessToken.objects.order_by("pk").values_list("pk", flat=True) if pk not in expired_ids
    ]
    assert AccessToken.objects.count() == 1
    assert delete_expired_tokens() == 0
    # The live one still works.
    live = [t for t in tokens if _bearer(t).get("/v1/organizations/x/users").status_code != 401]
    assert len(live) == 1


def _redis_or_skip():
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/3", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")


def test_with_redis_concurrent_guesses_cannot_overrun_the_budget(settings):
    """Counted before the secret is checked, with atomic add/incr: 40 concurrent attempts on one
    client id (any process, any server sharing the Redis) get exactly 10 checks of the secret."""
    import secrets
    import threading

    from django.core.cache import cache

    from accounts.api.oauth import MAX_FAILURES_PER_CLIENT_ID, _Counter

    _redis_or_skip()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/3",
                                   "KEY_PREFIX": redis_key_prefix("test-token-failures")}}
    client_id = secrets.token_hex(8)
    now = time.time()
    barrier = threading.Barrier(40)
    allowed = []

    def attempt():
        barrier.wait()
        allowed.append(_Counter("client", client_id, MAX_FAILURES_PER_CLIENT_ID).reserve(now))

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert allowed.count(True) == MAX_FAILURES_PER_CLIENT_ID
    assert len(allowed) == 40
    # A released reservation (an attempt that authenticated) gives its place back.
    counter = _Counter("client", client_id, MAX_FAILURES_PER_CLIENT_ID)
    assert counter.reserve(now) is False
    counter.release()
    cache.delete_many([k for k in (counter.key + ":start", counter.count_key) if k])


@pytest.mark.parametrize("basic", ["Basic !!!", "Basic " + base64.b64encode(b"no-such-client:x").decode()])
def test_a_basic_header_beside_a_secret_in_the_body_is_refused_before_any_secret_is_checked(credentials, basic):
    # Two client authentication methods (RFC 6749 §2.3): refused, and no guess is counted.
    _, client_id, secret = credentials
    for _ in range(11):
        response = APIClient().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": client_id,
                                                "client_secret": "wrong"}, format="multipart",
                                    HTTP_AUTHORIZATION=basic)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert "one client authentication method" in response.json()["error_description"]
    assert _token_request(client_id, secret).status_code == 200


def test_client_id_twice_in_the_form_is_invalid_request(credentials):
    _, client_id, secret = credentials
    response = APIClient().post(
        TOKEN_URL, f"grant_type=client_credentials&client_id=a&client_id={client_id}&client_secret={secret}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_a_basic_header_and_the_same_credentials_in_the_body_are_two_methods(credentials):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, client_id=client_id, client_secret=secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_body_client_id_naming_another_client_than_basic_is_invalid_request(credentials):
    _, client_id, secret = credentials
    assert _token_request(client_id, secret, client_id="another-client").json()["error"] == "invalid_request"
    # The same id in both places names one client: served.
    assert _token_request(client_id, secret, client_id=client_id).status_code == 200


@pytest.mark.parametrize("repeated", ["scope=read:users&scope=create:user", "scope=read:users&scope=read:users"])
def test_a_repeated_parameter_is_invalid_request_naming_it(credentials, repeated):
    _, client_id, secret = credentials
    response = APIClient().post(
        TOKEN_URL, f"grant_type=client_credentials&{repeated}",
        content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=_basic(client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "scope" in response.json()["error_description"]


@pytest.mark.parametrize("how", ["basic", "body", "none"])
def test_a_401_challenges_with_http_basic_and_describes_the_error(credentials, how):
    # RFC 6749 §5.2: the challenge matches the scheme the client used (Basic, the one documented).
    _, client_id, secret = credentials
    form = {"grant_type": "client_credentials"}
    headers = {}
    if how == "basic":
        headers["HTTP_AUTHORIZATION"] = _basic(client_id, secret + "x")
    elif how == "body":
        form.update(client_id=client_id, client_secret=secret + "x")
    response = APIClient().post(TOKEN_URL, form, format="multipart", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    body = response.json()
    assert body["error"] == "invalid_client"
    assert "HTTP Basic" in body["error_description"]


def test_invalid_scope_carries_a_description(credentials):
    _, client_id, secret = credentials
    body = _token_request(client_id, secret, scope="delete:user").json()
    assert body["error"] == "invalid_scope"
    assert "scopes this client was given" in body["error_description"]


def test_every_token_endpoint_error_carries_a_description(credentials):
    """RFC 6749 §5.2's error_description on each refusal the endpoint makes, so a developer reading
    the response learns what to change."""
    _, client_id, secret = credentials
    form = "application/x-www-form-urlencoded"
    refusals = {
        "no grant_type": APIClient().post(TOKEN_URL, "", content_type=form, HTTP_AUTHORIZATION=_basic(client_id, secret)),
        "another grant type": _token_request(client_id, secret, grant_type="password"),
        "no client authentication": APIClient().post(TOKEN_URL, "grant_type=client_credentials", content_type=form),
        "a wrong secret": _token_request(client_id, "wrong"),
        "an unknown scope": _token_request(client_id, secret, scope="delete:user"),
        "a repeated parameter": APIClient().post(TOKEN_URL, "grant_type=client_credentials&grant_type=client_credentials",
                                                 content_type=form, HTTP_AUTHORIZATION=_basic(client_id, secret)),
    }
    for _ in range(10):
        _token_request(client_id, "wrong")
    refusals["the failure limit"] = _token_request(client_id, secret)
    for what, response in refusals.items():
        assert 400 <= response.status_code < 500, (what, response.content)
        body = response.json()
        assert body.get("error") and body.get("error_description"), (what, body)

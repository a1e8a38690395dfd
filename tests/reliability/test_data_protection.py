"""Secrets and tokens at rest, audit immutability in the database, logs free of secrets and PII,
production settings, and admin sign-in throttling."""

import base64
import hashlib
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from oauth2_provider.models import AccessToken, Application
from rest_framework.test import APIClient

from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from core.admin_security import LOCKED_OUT_MESSAGE, MAX_ACCOUNT_FAILURES
from organizations.services import api_client_create
from tests.reliability.support import client_and_token

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_client_secrets_are_stored_hashed(organization):
    api_client, secret = api_client_create(actor=Actor.system("tests"), organization=organization, name="PMS", scopes=["read:users"])
    stored = Application.objects.values_list("client_secret", flat=True).get(pk=api_client.application_id)
    assert secret not in stored
    assert "$" in stored and check_password(secret, stored)  # a Django password hash of the secret
    with connection.cursor() as cursor:  # nothing anywhere in the row holds the plain secret
        cursor.execute("SELECT * FROM oauth2_provider_application WHERE id = %s", [api_client.application_id])
        assert all(secret not in str(value) for value in cursor.fetchone())


@pytest.mark.django_db
def test_access_tokens_are_stored_only_as_checksums(organization):
    _, token = client_and_token(organization)
    row = AccessToken.objects.values("token", "token_checksum").get()
    assert row["token"] == ""
    assert row["token_checksum"] == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM oauth2_provider_accesstoken")
        assert all(token not in str(value) for value in cursor.fetchone())
    # And the token still works: the lookup is by checksum.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(f"/v1/organizations/{organization.pk}").status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger is PostgreSQL's")
def test_audit_rows_cannot_be_changed_or_deleted_with_raw_sql(api, users_url):
    created = api.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@example.com"}, format="json")
    assert created.status_code == 201
    event_id = AuditEvent.objects.get(action="user.created").pk
    statements = [
        ("UPDATE audit_auditevent SET action = 'user.enabled' WHERE id = %s", [event_id]),
        ("UPDATE audit_auditevent SET changes = '{}'::jsonb", []),
        ("DELETE FROM audit_auditevent WHERE id = %s", [event_id]),
        ("DELETE FROM audit_auditevent", []),
    ]
    for sql, params in statements:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    event = AuditEvent.objects.get(pk=event_id)
    assert event.action == "user.created" and event.changes
    # Deleting the user can't take its audit trail with it either.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_user WHERE id = %s", [created.json()["id"]])


# --- logs ----------------------------------------------------------------------------------------

DOB = "1975-12-25"
HPII = "8003614900000009"
PHONE_FORMS = ["0432333333", "+61432333333", "61432333333", "432333333", "0432 333 333", "+61 432 333 333"]
PROVIDER_PHONE_FORMS = ["0455666777", "+61455666777", "455666777"]


@pytest.mark.django_db(transaction=True)
def test_logs_of_a_full_workflow_hold_no_token_secret_or_pii(organization, caplog):
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        api_client, secret = api_client_create(actor=Actor.system("tests"), organization=organization, name="PMS",
                                               scopes=["read:users", "create:user", "update:user",
                                                       "delete:user", "read:audit"])
        basic = f"{api_client.application.client_id}:{secret}"
        anonymous = APIClient()
        issued = anonymous.post("/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart",
                                HTTP_AUTHORIZATION="Basic " + base64.b64encode(basic.encode()).decode())
        token = issued.json()["access_token"]
        wrong = anonymous.post("/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart",
                               HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{basic}x".encode()).decode())
        assert wrong.status_code == 401
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        users = f"/v1/organizations/{organization.pk}/users"
        created = api.post(users, {
            "given_name": "Ben", "family_name": "Smith", "email": "ben@example.com", "phone": "0432 333 333",
            "access_roles": ["provider"], "date_of_birth": DOB, "sex": "M", "hpii_number": HPII,
            "prescriber_type": "M", "prescriber_number": "1234567", "qualifications": "MD",
        }, format="json")
        assert created.status_code == 201, created.content
        url = f"{users}/{created.json()['id']}"
        # Invalid identifiers and dates are echoed to the caller, never to the logs.
        assert api.patch(url, {"provider_details": {"hpii_number": "8003614900000001"}},
                         format="json").status_code == 400
        assert api.patch(url, {"provider_details": {"date_of_birth": "1875-12-25"}}, format="json").status_code == 400
        assert api.patch(url, {"phone": "+61 455 666 777"}, format="json").status_code == 200
        assert api.put(f"{url}/roles", {"access_roles": ["rx_reader"]}, format="json").status_code == 200
        assert api.get(f"{users}?search=0432333333&email=ben@example.com").status_code == 200
        assert api.get(f"{url}/history").status_code == 200
        assert api.put(f"{url}/disable").status_code == 200
        assert api.patch(url, {"phone": "0432333333"}, format="json").status_code == 409
        assert APIClient().get(users, HTTP_AUTHORIZATION=f"Bearer {token}x").status_code == 401
    finally:
        for lg, level in saved:
            lg.setLevel(level)

    assert len(caplog.records) > 5, "nothing was logged: the test would prove nothing"
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {getattr(r, 'request', '')}" for r in caplog.records
    )
    forbidden = [token, secret, DOB, "25/12/1975", HPII, "8003614900000001", "1875-12-25",
                 *PHONE_FORMS, *PROVIDER_PHONE_FORMS]
    leaked = [value for value in forbidden if value in text]
    assert not leaked, [line[:300] for line in text.splitlines() if any(value in line for value in leaked)][:5]


# --- production settings -------------------------------------------------------------------------


def _production_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
        # Production runs several processes: its limits need a shared cache (core/limits.py).
        "DJANGO_CACHE_URL": "redis://127.0.0.1:6379/6",
    })
    return env


def test_production_settings_are_secure():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS >= 31536000, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_CONTENT_TYPE_NOSNIFF)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_production_env(), capture_output=True,  # noqa: S603
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "True", "True", "True"]


def test_production_needs_a_secret_key():
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_check_deploy_is_clean(hi_service_server):
    # A production deployment asks the HI Service (here the emulator's URL and certificates, valid
    # for more than 30 days); without HI_SERVICE_URL check --deploy warns (tests/verification).
    env = {**_production_env(), **hi_service_server.settings()}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.slow
def test_check_deploy_says_when_the_register_is_not_configured():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "verification.W001" in result.stdout + result.stderr


# --- admin sign-in throttling --------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_sign_in_is_refused_after_repeated_failures(client):
    cache.clear()
    User.objects.create_superuser(email="staff@platform.example", password="correct horse battery",
                                  given_name="S", family_name="T")

    def sign_in(password, address="10.0.0.1", username="staff@platform.example"):
        return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                           REMOTE_ADDR=address)

    for _ in range(MAX_ACCOUNT_FAILURES):
        response = sign_in("wrong")
        assert response.status_code == 200 and LOCKED_OUT_MESSAGE not in response.content.decode()
    # Locked: even the right password is refused now, with a message that says why.
    refused = sign_in("correct horse battery")
    assert refused.status_code == 200
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # The account is locked from every address (tests/admin/test_sign_in_limits.py has the rest).
    assert sign_in("correct horse battery", address="10.0.0.2").status_code == 200
    client.logout()
    # A success clears the count for its own key.
    cache.clear()
    sign_in("wrong", address="10.0.0.3")
    assert sign_in("correct horse battery", address="10.0.0.3").status_code == 302
    client.logout()
    for _ in range(MAX_ACCOUNT_FAILURES - 1):
        sign_in("wrong", address="10.0.0.3")
    assert sign_in("correct horse battery", address="10.0.0.3").status_code == 302


# --- credentials in log lines, whatever logger writes them ------------------------------------------

SECRET = "S3cr3t-Value-that-must-never-be-logged"


@pytest.fixture
def log_output():
    """What the configured handlers (LOGGING) write: every handler's stream swapped for a buffer."""
    import io

    buffer = io.StringIO()
    handlers = {h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler}
    handlers |= {h for h in logging.getLogger("django.server").handlers if type(h) is logging.StreamHandler}
    assert {h.name for h in handlers} >= {"console", "django.server"}, handlers
    # Swapped without setStream(): it flushes the old stream, which an earlier test's captured
    # stderr may have left closed by now.
    saved = {handler: handler.stream for handler in handlers}
    for handler in handlers:
        handler.stream = buffer
    try:
        yield buffer
    finally:
        for handler, stream in saved.items():
            handler.stream = stream


@pytest.mark.django_db
def test_query_string_credentials_never_reach_a_log_line(log_output, monkeypatch):
    query = f"access_token={SECRET}&client_secret={SECRET}&password={SECRET}&token={SECRET}"
    # django.request: a 404 and a 500 whose exception quotes the full URL.
    assert APIClient().get(f"/v1/nope?{query}").status_code == 404
    from accounts.api import views

    def explode(self, request, *args, **kwargs):
        raise RuntimeError(f"could not handle {request.get_full_path()} with {request.META['HTTP_AUTHORIZATION']}")

    monkeypatch.setattr(views.OrganizationViewSet, "retrieve", explode)
    client = APIClient(raise_request_exception=False)
    _, token = client_and_token(_organization())
    response = client.get(f"/v1/organizations/x?{query}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code in (404, 500)
    # django.server: runserver's request line, as WSGIRequestHandler.log_message writes it.
    logging.getLogger("django.server").warning(
        '"%s" %s %s', f"GET /v1/organizations?{query} HTTP/1.1", "404", "120"
    )
    # oauthlib, and any other logger reaching the root's handler.
    logging.getLogger("oauthlib.oauth2.rfc6749.endpoints.token").warning(
        "token response %s", {"access_token": SECRET, "token_type": "Bearer"}
    )
    logging.getLogger("some.library").warning("calling upstream with Authorization: Bearer %s", SECRET)
    logging.getLogger().error("headers %r", {"HTTP_AUTHORIZATION": f"Basic {SECRET}", "client_secret": SECRET})
    try:
        raise ValueError(f"bad request /v1/x?client_secret={SECRET}")
    except ValueError:
        logging.getLogger("django.request").exception("Internal Server Error: /v1/x")
    written = log_output.getvalue()
    assert "Internal Server Error" in written and "Not Found: /v1/nope" in written, written
    assert "GET /v1/organizations?" in written and "[redacted]" in written
    assert SECRET not in written, [line for line in written.splitlines() if SECRET in line]
    assert token not in written


def _organization():
    from organizations.services import organization_create

    return organization_create(actor=Actor.system("test"), name="Log Practice")


def test_redaction_keeps_the_rest_of_the_line():
    from core.logging_filters import redact

    line = '"GET /v1/x?limit=5&access_token=abc&client%5Fsecret=def HTTP/1.1" 200 12 status code=200'
    assert redact(line) == (
        '"GET /v1/x?limit=5&access_token=[redacted]&client%5Fsecret=[redacted] HTTP/1.1" 200 12 status code=200'
    )
    assert redact("{'access_token': 'a b', 'token_type': 'Bearer', 'scope': 'read:users'}") == (
        "{'access_token': '[redacted]', 'token_type': 'Bearer', 'scope': 'read:users'}"
    )
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: [redacted]"
    assert redact("retry with a new token later") == "retry with a new token later"
    # Bracketed keys and a semicolon inside a bare value are credentials too.
    assert redact("GET /?access_token[]=abc&x=1") == "GET /?access_token[]=[redacted]&x=1"
    assert redact("GET /?access_token%5B%5D=abc") == "GET /?access_token%5B%5D=[redacted]"
    assert redact("?client_secret=a;b HTTP/1.1") == "?client_secret=[redacted] HTTP/1.1"

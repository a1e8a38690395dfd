"""/healthz for load balancers: 200 over plain HTTP and for any Host, in production settings too (they
probe by address, before TLS), 503 when the database doesn't answer, and nothing else said."""

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": False,
    "SECURE_SSL_REDIRECT": True,
    "ALLOWED_HOSTS": ["api.example.com"],
}


@pytest.fixture
def production(settings):
    for name, value in PRODUCTION.items():
        setattr(settings, name, value)
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["10.1.2.3", "api.example.com", "evil.example", "[::1]:8080", "bad host!"])
def test_healthz_is_200_over_http_for_any_host_in_production(production, host):
    response = Client().get("/healthz", HTTP_HOST=host)  # http, not https
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    assert response.json() == {
        "status": "ok", "database": "ok", "worker": {"status": "never", "last_heartbeat_at": None}
    }
    assert response["Cache-Control"] == "no-store"
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_only_healthz_skips_the_host_check_and_the_https_redirect(production):
    assert Client().get("/v1/schema", HTTP_HOST="api.example.com").status_code == 301  # to https
    assert Client().get("/v1/schema", HTTP_HOST="10.1.2.3", secure=True).status_code == 400  # DisallowedHost
    assert Client().get("/healthz/", HTTP_HOST="10.1.2.3").status_code in (301, 400)
    assert Client().get("/healthzz", HTTP_HOST="10.1.2.3").status_code in (301, 400)


class _DownConnection:
    def cursor(self):
        raise OperationalError("connection refused")


def test_healthz_is_503_when_the_database_is_down(production, monkeypatch):
    monkeypatch.setattr("core.views.connection", _DownConnection())
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}  # no error text


def _production_env(database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
        "DATABASE_URL": database_url,
    })
    return env


_PROBE = (
    "import django; django.setup(); from django.conf import settings as s; from django.test import Client; "
    "assert not s.DEBUG and s.SECURE_SSL_REDIRECT and s.ALLOWED_HOSTS == ['api.example.com']; "
    "r = Client().get('/healthz', HTTP_HOST='10.1.2.3'); print(r.status_code, r.content.decode())"
)


@pytest.mark.slow
@pytest.mark.django_db
def test_healthz_under_the_real_production_settings_module():
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("needs a database another process can reach")
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    up = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=_production_env(url),  # noqa: S603
                        capture_output=True, text=True, timeout=60, check=False)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == (
        '200 {"status": "ok", "database": "ok", "worker": {"status": "never", "last_heartbeat_at": null}}'
    ), up.stdout
    # Nothing listens on port 9: the database is down.
    down = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT,  # noqa: S603
                          env=_production_env("postgres://postgres@127.0.0.1:9/nothing"),
                          capture_output=True, text=True, timeout=60, check=False)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == '503 {"status": "unavailable", "database": "unreachable"}', down.stdout


def test_x_forwarded_proto_is_believed_only_behind_a_trusted_proxy(settings, monkeypatch):
    """Without a proxy in front, a client claiming https must still be redirected; behind one, the
    proxy's header is what says the connection was TLS."""

    def status(proxies):
        # What the production settings module makes of DJANGO_TRUSTED_PROXY_COUNT, served here.
        environment = {**_production_env("postgres://postgres@127.0.0.1:9/nothing"), "DJANGO_TRUSTED_PROXY_COUNT": proxies}
        for name in set(os.environ) - set(environment):
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        loaded = runpy.run_path(str(ROOT / "config" / "settings.py"))
        for name in ("DEBUG", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS"):
            setattr(settings, name, loaded[name])
        return Client().get("/v1/nope", HTTP_HOST="api.example.com", HTTP_X_FORWARDED_PROTO="https").status_code

    assert status("0") == 301  # the header is ignored: redirected to https
    assert status("1") == 404  # the proxy said https: served

"""With DEBUG off, several server processes over a per-process cache would multiply every limit by
the number of processes: gunicorn refuses to start, with one line naming DJANGO_CACHE_URL, and
`check --deploy` says the same. One explicit process, or a shared cache, starts."""

import os
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from bench.stack import VENV_BIN, free_port, wait_until
from core.limits import per_process_limits_refusal

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(VENV_BIN / "gunicorn")
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS = "django.core.cache.backends.redis.RedisCache"


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WEB_CONCURRENCY", "GUNICORN_", "PYTEST", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",  # the production module: DEBUG off, CACHES from the URL
        "DJANGO_SECRET_KEY": "shared-limits-test-secret-key-not-for-deployment-0123456789abcdef",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def _serve(tmp_path, *args, **env):
    """Start gunicorn; (exit code or None while it serves, its output)."""
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{free_port()}", *args],
            cwd=ROOT, env=_env(**env), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: server.poll() is not None or "Booting worker" in log_path.read_text(), 60, what="start")
            return server.poll(), log_path.read_text()
        finally:
            if server.poll() is None:
                # A worker still importing Django finishes that before it stops (gunicorn's graceful
                # timeout is 30 s): on a loaded machine that takes longer than the answer did.
                server.terminate()
                try:
                    server.wait(90)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(30)


def test_several_processes_over_a_per_process_cache_do_not_start(tmp_path):
    code, output = _serve(tmp_path, WEB_CONCURRENCY="2")

    assert code == 1
    refusals = [line for line in output.splitlines() if "DJANGO_CACHE_URL" in line]
    assert len(refusals) == 1, output
    assert refusals[0].startswith("Refusing to start: 2 server processes")
    assert "Booting worker" not in output


def test_the_workers_flag_counts_as_processes_too(tmp_path):
    code, output = _serve(tmp_path, "--workers", "3", WEB_CONCURRENCY="1")

    assert code == 1 and "Refusing to start: 3 server processes" in output


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [
        {"WEB_CONCURRENCY": "1"},  # one explicit process keeps its memory
        {"WEB_CONCURRENCY": "2", "DJANGO_CACHE_URL": "redis://127.0.0.1:6379/6"},
        {"WEB_CONCURRENCY": "2", "DJANGO_DEBUG": "true"},
    ],
    ids=["one-process", "shared-cache", "debug"],
)
def test_one_process_a_shared_cache_or_debug_starts(tmp_path, env):
    code, output = _serve(tmp_path, **env)

    assert code is None, output
    assert "Refusing" not in output


def test_every_shared_backend_passes_and_every_per_process_one_is_refused():
    for backend in (REDIS, "django.core.cache.backends.db.DatabaseCache",
                    "django.core.cache.backends.memcached.PyMemcacheCache"):
        assert per_process_limits_refusal(debug=False, processes=4, cache_backend=backend) is None
    for backend in (LOCMEM, "django.core.cache.backends.dummy.DummyCache",
                    "django.core.cache.backends.filebased.FileBasedCache"):
        assert "DJANGO_CACHE_URL" in per_process_limits_refusal(debug=False, processes=2, cache_backend=backend)
        assert per_process_limits_refusal(debug=False, processes=1, cache_backend=backend) is None
        assert per_process_limits_refusal(debug=True, processes=2, cache_backend=backend) is None


def _deploy_errors():
    try:
        call_command("check", "--deploy", "--fail-level", "ERROR", "--tag", "security")
    except SystemCheckError as error:
        return str(error)
    return ""


def test_check_deploy_says_the_same(settings, monkeypatch):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": LOCMEM}}
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)  # gunicorn.conf.py's default: 2 or more

    errors = _deploy_errors()
    assert "limits.E001" in errors and "DJANGO_CACHE_URL" in errors

    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert "limits.E001" not in _deploy_errors()
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    settings.CACHES = {"default": {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:6379/6"}}
    assert "limits.E001" not in _deploy_errors()

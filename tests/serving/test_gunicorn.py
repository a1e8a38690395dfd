"""gunicorn.conf.py: gunicorn picks it up from the project root, sizes itself from the environment,
and its access log carries no credential from a query string or a header."""

import contextlib
import os
import re
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bench.stack import VENV_BIN, free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(VENV_BIN / "gunicorn")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_CONCURRENCY", "GUNICORN_", "PYTEST"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.test_settings", "PYTHONUNBUFFERED": "1", **extra})
    return env


def _printed_config(**extra) -> dict:
    result = subprocess.run(  # noqa: S603
        [GUNICORN, "--print-config", "config.wsgi:application"],
        cwd=ROOT, env=_env(**extra), capture_output=True, text=True, timeout=120, check=True,
    )
    return dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.MULTILINE))


def test_gunicorn_reads_the_project_config_sized_for_the_machine():
    config = _printed_config()

    assert config["config"] == "./gunicorn.conf.py"
    assert config["worker_class"] == "gthread"
    assert int(config["workers"]) == max(2, len(os.sched_getaffinity(0)))
    assert int(config["threads"]) == 32
    # The app reads the same variable (a Cognito connection per thread), with the same default.
    from django.conf import settings

    assert "GUNICORN_THREADS" in os.environ or settings.GUNICORN_THREADS == 32
    assert int(config["timeout"]) > 0 and int(config["graceful_timeout"]) > 0
    assert config["accesslog"] == "-"
    assert "%(r)s" not in config["access_log_format"] and "%(q)s" not in config["access_log_format"]
    assert config["control_socket_disable"] == "True"


def test_web_concurrency_and_gunicorn_threads_override_the_sizing():
    config = _printed_config(WEB_CONCURRENCY="3", GUNICORN_THREADS="5")

    assert (config["workers"], config["threads"]) == ("3", "5")


def test_a_nonsensical_size_stops_the_server_at_start():
    result = subprocess.run(  # noqa: S603
        [GUNICORN, "--check-config", "config.wsgi:application"],
        cwd=ROOT, env=_env(GUNICORN_THREADS="0"), capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "GUNICORN_THREADS must be at least 1" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_access_log_of_a_real_request_has_no_credentials(tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=_env(WEB_CONCURRENCY="1", GUNICORN_THREADS="2"), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: server.poll() is not None or "Booting worker" in log_path.read_text(), 60, what="boot")
            secrets = {
                "/healthz?access_token=SECRET-QUERY-TOKEN": {},
                "/v1/oauth/token?client_secret=SECRET-CLIENT&password=SECRET-PASSWORD&token=SECRET-T": {
                    "Authorization": "Basic Y2xpZW50LWlkLVNFQ1JFVDpTRUNSRVQtQkFTSUM=",  # client-id-SECRET:SECRET-BASIC
                },
                "/v1/organizations/00000000-0000-0000-0000-000000000000?x=1": {
                    "Authorization": "Bearer SECRET-BEARER",
                    "Referer": "https://pms.example/callback?access_token=SECRET-REFERER",
                },
            }
            for path, headers in secrets.items():
                request = urllib.request.Request(base + path, headers=headers)  # noqa: S310
                with contextlib.suppress(urllib.error.HTTPError):  # 401, 404, 503: only the log line matters
                    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310
            # A request line gunicorn can't parse (an unencoded space) is quoted in its error log.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"GET /v1/x?access_token=SECRET-RAW def&password=SECRET-RAW2 HTTP/1.1\r\nHost: x\r\n\r\n")
                raw.recv(1024)
            wait_until(lambda: "Invalid request" in log_path.read_text(), 10, what="the error log line")
            wait_until(lambda: log_path.read_text().count('"GET /') >= len(secrets), 10, what="every access log line")
        finally:
            server.terminate()
            server.wait(30)

    text = log_path.read_text()
    assert '"GET /healthz HTTP/1.1"' in text, text
    assert '"GET /v1/oauth/token HTTP/1.1"' in text
    assert "SECRET" not in text
    assert "client-id" not in text
    assert re.search(r'"GET /healthz HTTP/1.1" \d{3} \d+ \d+ms "Python-urllib/[\d.]+" [0-9a-f]{32}', text), text
    assert server.returncode == 0  # SIGTERM: a graceful stop


def test_each_worker_freezes_what_it_loaded_so_full_collections_skip_it():
    import gc
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 10_000  # this process's modules, Django's included
    finally:
        gc.unfreeze()

"""`manage.py run_hi_emulator` as `make run` starts it: a process that writes its certificates and
hi.env, serves until SIGTERM, and whose settings let the client ask it."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hi_service.client import reset_client
from tests.hi_service.helpers import ask, search_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_command_serves_with_the_settings_it_writes(tmp_path, settings):
    directory = tmp_path / "hi"
    process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "manage.py", "run_hi_emulator", "--port", "0", "--dir", str(directory)],
        cwd=ROOT, env={**os.environ, "DJANGO_DEBUG": "true"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        env_file = directory / "hi.env"
        deadline = time.monotonic() + 30
        while not (env_file.exists() and env_file.stat().st_size) and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.1)
        written = dict(shlex.split(line)[0].split("=", 1) for line in env_file.read_text().splitlines())
        assert written["HI_PRODUCT_NAME"] == "User Management"
        assert written["HI_SERVICE_URL"].startswith("https://127.0.0.1:")
        for name in ("HI_SERVICE_CLIENT_CERT", "HI_SERVICE_CLIENT_KEY", "HI_SERVICE_SIGNING_CERT",
                     "HI_SERVICE_SIGNING_KEY", "HI_SERVICE_CA_BUNDLE", "HI_SERVICE_REPLY_SIGNING_CERT"):
            assert Path(written[name]).is_absolute() and Path(written[name]).exists(), name
        for name, value in written.items():
            setattr(settings, name, value)
        reset_client()
        assert ask(search_for("retired")).hpii_status == "Retired"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        reset_client()
    output = process.stdout.read().decode()
    assert "HI Service emulator at https://127.0.0.1:" in output
    assert "HI_SERVICE_URL=" in output

"""seed_demo: the demo's credentials are stable across runs (kept in a file only its owner reads),
replaced when they no longer work, and every staff grant and secret reset is audited."""

import base64
import contextlib
import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import User

ROOT = Path(__file__).resolve().parents[2]


def seed(credentials_file):
    out = io.StringIO()
    call_command("seed_demo", "--credentials-file", str(credentials_file), stdout=out)
    text = out.getvalue()
    password = re.search(r"Staff login:\s+\S+ / (\S+)", text).group(1)
    client_id = re.search(r"API client_id: (\S+)", text).group(1)
    secret = re.search(r"client_secret: (\S+)", text).group(1)
    return password, client_id, secret


def token_status(client_id, secret) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    return response.status_code


@pytest.mark.django_db
def test_seed_demo_with_a_credentials_file_prints_the_same_working_credentials_every_run(tmp_path):
    credentials = tmp_path / "var" / "demo-credentials.json"
    first = seed(credentials)
    second = seed(credentials)

    assert second == first
    assert credentials.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert User.objects.get(email="staff@demo.example").check_password(first[0])
    assert token_status(first[1], first[2]) == 200


@pytest.mark.django_db
def test_seed_demo_replaces_kept_credentials_that_no_longer_work(tmp_path):
    credentials = tmp_path / "demo-credentials.json"
    _, client_id, secret = seed(credentials)
    credentials.write_text(credentials.read_text().replace(secret, "not-the-secret"))

    _, _, new_secret = seed(credentials)

    assert new_secret != "not-the-secret"
    assert token_status(client_id, new_secret) == 200
    assert token_status(client_id, secret) == 401


@pytest.mark.django_db
def test_seed_demo_audits_the_staff_superuser_and_a_reset_secret(tmp_path):
    from audit.models import AuditEvent

    credentials = tmp_path / "demo-credentials.json"
    seed(credentials)
    staff = User.objects.get(email="staff@demo.example")
    granted = AuditEvent.objects.get(action="staff.privileges_changed", user=staff)
    assert granted.changes["is_superuser"] == {"from": False, "to": True}

    credentials.unlink()  # no kept secret: the demo client's secret must be reset
    _, client_id, secret = seed(credentials)

    reset = AuditEvent.objects.filter(action="api_client.updated").latest("id")
    assert reset.changes["client_secret"] == {"from": "(hidden)", "to": "(reset)"}
    assert secret not in str(reset.changes)
    assert token_status(client_id, secret) == 200


@pytest.mark.django_db
def test_the_demo_client_may_manage_webhooks(tmp_path):
    _, client_id, _ = seed(tmp_path / "demo-credentials.json")
    from organizations.models import ApiClient

    assert "manage:webhooks" in ApiClient.objects.get(application__client_id=client_id).scopes


DEMO_PORTS = ("PORT", "COGNITO_PORT", "HI_EMULATOR_PORT")


def _make_run(tmp_path, ports: dict) -> subprocess.CompletedProcess:
    """`make run NAME=port ...` with the real Makefile and script in a copy of the checkout's layout,
    whose bootstrap step only leaves a mark: what ran before the refusal shows as files."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    script = tmp_path / "scripts" / "run_demo.sh"
    script.write_text((ROOT / "scripts" / "run_demo.sh").read_text())
    script.chmod(0o755)
    bootstrap = tmp_path / "scripts" / "bootstrap.sh"
    bootstrap.write_text("#!/usr/bin/env bash\ntouch \"$(dirname \"$0\")/../bootstrapped\"\nexit 1\n")
    bootstrap.chmod(0o755)
    environment = {key: value for key, value in os.environ.items() if key not in DEMO_PORTS}
    return subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", "run", *(f"{name}={port}" for name, port in ports.items())],  # noqa: S607
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=30, check=False,
    )


def _nothing_set_up(tmp_path) -> bool:
    return not (tmp_path / "bootstrapped").exists() and not (tmp_path / "var").exists()


@pytest.mark.parametrize("taken", DEMO_PORTS)
def test_make_run_with_a_port_taken_stops_before_setting_anything_up(tmp_path, taken):
    """With a port taken, nothing runs: no install, no seeding, no var/demo.env."""
    import socket

    with contextlib.ExitStack() as sockets:
        ports = {}
        for name in DEMO_PORTS:
            held = sockets.enter_context(socket.socket())
            held.bind(("127.0.0.1", 0))  # bound, not listening: a port nobody answers on
            if name == taken:
                held.listen()
            ports[name] = str(held.getsockname()[1])
        result = _make_run(tmp_path, ports)
    assert result.returncode != 0, result
    assert f"Port {ports[taken]} on 127.0.0.1 is already in use ({taken})" in result.stderr
    assert f"make run {taken}=<free port>" in result.stderr
    assert _nothing_set_up(tmp_path)


def test_make_run_refuses_one_port_for_two_services(tmp_path):
    result = _make_run(tmp_path, {"PORT": "5011"})  # COGNITO_PORT's default
    assert result.returncode != 0, result
    assert "PORT (5011), COGNITO_PORT (5011) and HI_EMULATOR_PORT (5012) must be three different ports" in result.stderr
    assert _nothing_set_up(tmp_path)


def test_make_run_reads_a_leading_zero_as_the_same_port(tmp_path):
    result = _make_run(tmp_path, {"PORT": "05011"})  # COGNITO_PORT's default, written another way
    assert result.returncode != 0, result
    assert "PORT (5011), COGNITO_PORT (5011) and HI_EMULATOR_PORT (5012) must be three different ports" in result.stderr
    assert _nothing_set_up(tmp_path)


@pytest.mark.parametrize("value", ["eighty", "0", "70000", "80 81", "099999", "99999999999999999999"])
def test_make_run_refuses_what_is_not_a_port_number(tmp_path, value):
    result = _make_run(tmp_path, {"COGNITO_PORT": value})
    assert result.returncode != 0, result
    assert f"COGNITO_PORT must be a port number from 1 to 65535, not '{value}'" in result.stderr
    assert _nothing_set_up(tmp_path)

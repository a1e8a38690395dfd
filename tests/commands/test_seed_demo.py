"""What a newcomer meets first: the index page, the admin's name, the demo's stable credentials, and a
one-line error when a setting is missing."""

import base64
import io
import os
import re
import subprocess
import sys
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
def test_the_index_links_to_the_docs_the_admin_and_health(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for link in ('href="/v1/docs"', 'href="/admin/"', 'href="/healthz"'):
        assert link in page
    assert "User management" in page


@pytest.mark.django_db
def test_the_admin_carries_the_product_name_not_djangos(client):
    page = client.get("/admin/login/").content.decode()
    assert "User management" in page
    assert "Django administration" not in page


def test_a_command_without_its_settings_says_so_in_one_line():
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == "Configuration error: Set the DJANGO_SECRET_KEY environment variable"


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

"""create_organization and create_api_client: scripts depend on their output, word for word."""

import base64
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from oauth2_provider.models import Application
from rest_framework.test import APIClient

from organizations.models import ApiClient, Organization

pytestmark = pytest.mark.django_db

SCOPES = "read:users create:user update:user delete:user read:audit"


def _run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_organization_prints_the_id_last():
    output = _run("create_organization", "--name", "Harbour Medical")
    last_line = output.strip().splitlines()[-1]
    organization = Organization.objects.get(pk=last_line)
    assert organization.name == "Harbour Medical"
    assert organization.hpio_number is None
    assert organization.is_active


def test_create_organization_with_a_valid_hpio():
    output = _run("create_organization", "--name", "Harbour Medical", "--hpio", "8003624900000008")
    assert Organization.objects.get(pk=output.strip().splitlines()[-1]).hpio_number == "8003624900000008"


@pytest.mark.parametrize(
    ("hpio", "fragment"),
    [
        ("8003624900000000", "should be 8"),  # check digit
        ("8003614900000009", "800362"),  # an HPI-I
        ("80036249", "16"),
    ],
)
def test_create_organization_rejects_a_bad_hpio(hpio, fragment):
    with pytest.raises(CommandError, match=fragment):
        _run("create_organization", "--name", "Harbour Medical", "--hpio", hpio)
    assert not Organization.objects.exists()


def test_create_organization_rejects_a_duplicate_hpio():
    _run("create_organization", "--name", "One", "--hpio", "8003624900000008")
    with pytest.raises(CommandError):
        _run("create_organization", "--name", "Two", "--hpio", "8003624900000008")
    assert Organization.objects.count() == 1


def test_create_organization_rejects_an_empty_name():
    with pytest.raises(CommandError):
        _run("create_organization", "--name", "  ")


def test_a_command_error_is_a_non_zero_exit(monkeypatch):
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "create_organization", "--name", "X", "--hpio", "123"]).execute()
    assert exit_info.value.code != 0


@pytest.fixture
def organization_id(organization):
    return str(organization.pk)


def test_create_api_client_json_prints_exactly_one_object(organization_id):
    output = _run("create_api_client", "--organization", organization_id, "--name", "PMS", "--scopes", SCOPES, "--json")
    credentials = json.loads(output)  # the whole output, nothing around it
    assert set(credentials) == {"client_id", "client_secret"}
    assert credentials["client_id"] and credentials["client_secret"]
    api_client = ApiClient.objects.get(application__client_id=credentials["client_id"])
    assert str(api_client.organization_id) == organization_id
    assert api_client.scopes == frozenset(SCOPES.split())


def test_the_printed_secret_works_at_the_token_endpoint(organization_id):
    credentials = json.loads(
        _run("create_api_client", "--organization", organization_id, "--name", "PMS", "--scopes", "read:users", "--json")
    )
    basic = base64.b64encode(f"{credentials['client_id']}:{credentials['client_secret']}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart", HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "read:users"


def test_the_secret_is_stored_hashed(organization_id):
    credentials = json.loads(
        _run("create_api_client", "--organization", organization_id, "--name", "PMS", "--scopes", SCOPES, "--json")
    )
    stored = Application.objects.get(client_id=credentials["client_id"]).client_secret
    assert credentials["client_secret"] not in stored
    assert stored != credentials["client_secret"]
    assert check_password(credentials["client_secret"], stored)


def test_create_api_client_without_json_shows_the_secret_once(organization_id):
    output = _run("create_api_client", "--organization", organization_id, "--name", "PMS", "--scopes", SCOPES)
    application = Application.objects.get()
    assert application.client_id in output
    assert "client_secret" in output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--organization", "00000000-0000-4000-8000-000000000000"], "No organization"),
        (["--organization", "not-a-uuid"], "No organization"),
        (["--scopes", "read:users write:everything"], "write:everything"),
        (["--scopes", ""], "scope"),
    ],
)
def test_create_api_client_refuses_bad_input(organization_id, args, fragment):
    base = {"--organization": organization_id, "--name": "PMS", "--scopes": SCOPES}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError, match=fragment):
        _run("create_api_client", *[item for pair in base.items() for item in pair], "--json")
    assert not ApiClient.objects.exists()


def test_create_organization_refuses_a_name_that_exists_unless_told():
    first = _run("create_organization", "--name", "Harbour Medical").splitlines()[-1]
    with pytest.raises(CommandError, match=f"exists already \\(id {first}\\).*--allow-duplicate"):
        _run("create_organization", "--name", "harbour medical ")
    assert Organization.objects.count() == 1

    second = _run("create_organization", "--name", "Harbour Medical", "--allow-duplicate").splitlines()[-1]
    assert second != first and Organization.objects.count() == 2


def test_the_operators_pages_sample_hpio_is_valid_and_not_the_demos():
    from accounts.management.commands.seed_demo import DEMO_HPIO

    readme = (Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()
    sample = re.search(r"create_organization --name \"[^\"]+\" \[--hpio (\d{16})\]", readme).group(1)
    assert sample != DEMO_HPIO
    output = _run("create_organization", "--name", "Harbour Medical", "--hpio", sample)
    assert Organization.objects.get(pk=output.splitlines()[-1]).hpio_number == sample

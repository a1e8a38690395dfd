"""import_users queues the register check (and says so); verify_providers asks now; the
migration's roll-out; check --deploy. Against the emulator over TLS."""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ProviderDetails
from hi_service import fixtures
from tests.verification.conftest import provider_of
from verification import checks
from verification.models import RegisterCall, VerificationTask

pytestmark = pytest.mark.django_db(transaction=True)


def _import(tmp_path, organization, people: list[str]) -> str:
    path = tmp_path / "providers.csv"
    header = ["email", "given_name", "family_name", "access_roles", "date_of_birth", "sex", "hpii_number",
              "prescriber_type", "prescriber_number", "qualifications"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for key in people:
            p = fixtures.PRACTITIONERS[key]
            writer.writerow([f"{key}@import.example", p.given_names[0], p.family_name, "provider",
                             p.date_of_birth.isoformat(), p.sex, p.hpii, "M", "2345678", "MBBS"])
    out = io.StringIO()
    call_command("import_users", str(path), "--organization", str(organization.pk), stdout=out)
    return out.getvalue()


def test_import_queues_verification_and_says_so_then_verify_providers_asks(hi_register, practice, tmp_path):
    output = _import(tmp_path, practice, ["active", "retired"])
    assert "HI Service: 2 providers' details are queued for verification (pending)" in output
    assert set(ProviderDetails.objects.values_list("verification_status", flat=True)) == {"pending"}
    assert VerificationTask.objects.count() == 2
    assert not RegisterCall.objects.exists()  # a bulk write leaves the asking to the workers

    out = io.StringIO()
    call_command("verify_providers", "--organization", str(practice.pk), stdout=out)
    assert "Queued 2 provider(s)" in out.getvalue()
    assert "Answered: 2" in out.getvalue()
    assert sorted(ProviderDetails.objects.values_list("verification_status", flat=True)) == ["inactive", "verified"]
    assert not VerificationTask.objects.exists()

    # Default: only those not verified; --all: everyone; --stale: none is due yet.
    out = io.StringIO()
    call_command("verify_providers", "--stale", "--queue-only", stdout=out)
    assert "Queued 0 provider(s)" in out.getvalue()
    out = io.StringIO()
    call_command("verify_providers", "--queue-only", stdout=out)
    assert "Queued 1 provider(s)" in out.getvalue()
    out = io.StringIO()
    call_command("verify_providers", "--all", "--queue-only", stdout=out)
    assert "Queued 2 provider(s)" in out.getvalue()
    # The verified one stays verified while it is asked again.
    assert sorted(ProviderDetails.objects.values_list("verification_status", flat=True)) == ["pending", "verified"]


def test_verify_providers_refuses_without_a_register(db):
    with pytest.raises(CommandError, match="HI_SERVICE_URL"):
        call_command("verify_providers", stdout=io.StringIO())


def test_the_verify_endpoint_asks_again_and_lists_the_register_log(
    hi_register, practice_api, practice_users_url, api_for, other_organization
):
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    url = f"{practice_users_url}/{user['id']}/provider-details"
    response = practice_api.post(f"{url}/verify")
    assert response.status_code == 202
    assert response.json()["provider_details"]["verification"]["status"] == "verified"

    calls = practice_api.get(f"{url}/verifications?limit=1").json()
    assert calls["next"] is not None
    newest = calls["results"][0]
    assert newest["outcome"] == "found"
    assert newest["hpio_sent"] == fixtures.FIXTURE_HPIO
    assert newest["operation"] == "search_by_hpii"
    assert newest["user_id"] == user["id"]
    assert newest["user_id_sent"].startswith("api_client:")
    assert newest["id"] > practice_api.get(calls["next"]).json()["results"][0]["id"]  # newest first

    # Another organization sees nothing (404); scopes are needed (403).
    outsider = api_for(other_organization)
    assert outsider.post(f"{url}/verify").status_code == 404
    assert outsider.get(f"{url}/verifications").status_code == 404


def test_the_verify_endpoint_needs_its_scopes_and_something_to_verify(
    hi_register, practice, practice_api, practice_users_url, api_for
):
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    url = f"{practice_users_url}/{user['id']}/provider-details"
    reader = api_for(practice, ("read:users",))
    assert reader.post(f"{url}/verify").status_code == 403
    assert reader.get(f"{url}/verifications").status_code == 403
    member = practice_api.post(
        practice_users_url, {"given_name": "M", "family_name": "M", "email": "m@x.example"}, format="json"
    ).json()
    response = practice_api.post(f"{practice_users_url}/{member['id']}/provider-details/verify")
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_verify"


def test_check_deploy_warns_without_a_register_and_when_not_required(settings):
    settings.HI_SERVICE_URL = ""
    settings.HI_VERIFICATION_REQUIRED = False
    ids = {warning.id for warning in checks.hi_service_deploy_checks()}
    assert {"verification.W001", "verification.W002"} <= ids


def test_check_deploy_warns_of_a_certificate_that_expires_soon(hi_register, settings):
    import datetime

    from django.utils import timezone

    from hi_service.client import certificate_expiry

    expiries = dict(certificate_expiry())
    assert expiries
    soonest = min(expiries.values())
    assert checks.certificate_warnings(now=soonest - datetime.timedelta(days=10))
    assert not checks.certificate_warnings(now=soonest - datetime.timedelta(days=40))
    assert "expired" in checks.certificate_warnings(now=soonest + datetime.timedelta(days=1))[0]
    assert timezone.now() < soonest


@pytest.mark.slow
def test_seed_demo_makes_one_provider_in_each_state(hi_register, settings):
    from accounts.models import User

    settings.HI_VERIFY_INLINE_BUDGET_SECONDS = 2.0  # the production budget, shorter than the slow answer
    call_command("seed_demo", stdout=io.StringIO())
    # The slow answer is left to the worker: pending until it asks.
    states = dict(
        User.objects.filter(provider_details__isnull=False).values_list("email", "provider_details__verification_status")
    )
    assert set(states.values()) == {"verified", "inactive", "mismatch", "not_found", "error", "pending"}
    assert states["by.ahpra@demo-practice.example"] == "verified"
    call_command("verify_providers", stdout=io.StringIO())
    assert User.objects.get(email="slow@demo-practice.example").provider_details.verification_status == "verified"


def test_a_certificate_that_expires_soon_is_a_deploy_warning_and_on_the_admin_index(hi_register, client):
    import datetime

    import time_machine

    from hi_service.client import certificate_expiry
    from tests.factories import StaffFactory

    label, soonest = min(certificate_expiry(), key=lambda expiry: expiry[1])
    staff = StaffFactory(email="sam@platform.example")
    with time_machine.travel(soonest - datetime.timedelta(days=10), tick=False):
        warnings = [w for w in checks.hi_service_deploy_checks() if w.id == "verification.W003"]
        assert f"{label} expires on {soonest:%Y-%m-%d} (within 30 days): renew it." in [w.msg for w in warnings]
        client.force_login(staff)
        index = client.get("/admin/").content.decode()
    assert f"{label} expires on {soonest:%Y-%m-%d}" in index
    assert 'class="errornote hi-service-certificate"' in index

    client.force_login(staff)  # today: the certificates are good for more than 30 days
    assert "hi-service-certificate" not in client.get("/admin/").content.decode()
    assert not [w for w in checks.hi_service_deploy_checks() if w.id == "verification.W003"]


def test_the_register_log_is_append_only(hi_register, practice_api, practice_users_url, client):
    from tests.factories import StaffFactory

    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    call = RegisterCall.objects.get(user_id=user["id"])
    with pytest.raises(TypeError, match="append-only"):
        call.save()
    with pytest.raises(TypeError, match="append-only"):
        call.delete()
    with pytest.raises(TypeError, match="append-only"):
        RegisterCall.objects.filter(pk=call.pk).update(outcome="error")
    with pytest.raises(TypeError, match="append-only"):
        RegisterCall.objects.filter(pk=call.pk).delete()

    client.force_login(StaffFactory(email="sam@platform.example"))
    page = f"/admin/verification/registercall/{call.pk}/change/"
    assert client.get(page).status_code == 200  # staff read it
    assert client.post(page, {"outcome": "error"}).status_code == 403
    assert client.post(f"/admin/verification/registercall/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/verification/registercall/add/").status_code == 403
    assert list(RegisterCall.objects.values_list("pk", "outcome")) == [(call.pk, "found")]

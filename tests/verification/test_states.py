"""Each verification state, through the API, from the emulator's fixture practitioners over TLS."""

from datetime import timedelta

import pytest

from accounts.models import ProviderDetails
from hi_service import fixtures
from tests.verification.conftest import provider_of
from verification import queue
from verification.models import RegisterCall, VerificationTask

pytestmark = pytest.mark.django_db(transaction=True)


def _verification(user: dict) -> dict:
    return user["provider_details"]["verification"]


@pytest.mark.parametrize(
    ("key", "overrides", "status", "hpii_status", "can_prescribe"),
    [
        ("active", {}, "verified", "Active", True),
        ("deactivated", {}, "inactive", "Deactivated", False),
        ("retired", {}, "inactive", "Retired", False),
        ("mismatch", {"family_name": "Someone-Else"}, "mismatch", None, False),
        ("not_found", {}, "not_found", None, False),
    ],
)
def test_the_inline_check_answers_each_state(
    hi_register, practice_api, practice_users_url, key, overrides, status, hpii_status, can_prescribe
):
    response = practice_api.post(practice_users_url, provider_of(key, **overrides), format="json")
    assert response.status_code == 201, response.content
    user = response.json()
    verification = _verification(user)
    assert verification["status"] == status
    assert verification["hpii_status"] == hpii_status
    assert verification["checked_at"] is not None
    assert user["can_prescribe"] is can_prescribe
    # An answer is asked again within the period; nothing stays queued.
    assert verification["next_check_at"] > verification["checked_at"]
    assert not VerificationTask.objects.filter(pk=user["id"]).exists()
    assert RegisterCall.objects.filter(user_id=user["id"]).count() == 1
    # GET shows what the write answered.
    assert _verification(practice_api.get(f"{practice_users_url}/{user['id']}").json()) == verification


def test_a_mismatch_says_why(hi_register, practice_api, practice_users_url):
    user = practice_api.post(
        practice_users_url, provider_of("mismatch", family_name="Someone-Else"), format="json"
    ).json()
    assert "HI-EMU-MISMATCH" in _verification(user)["message"]


def test_a_service_fault_is_error_with_the_register_reason_and_is_retried(
    hi_register, practice_api, practice_users_url
):
    user = practice_api.post(practice_users_url, provider_of("fault"), format="json").json()
    verification = _verification(user)
    assert verification["status"] == "error"
    assert "HI-EMU-FAULT" in verification["message"]
    assert verification["next_check_at"] is None
    assert user["can_prescribe"] is False
    task = VerificationTask.objects.get(pk=user["id"])
    assert task.attempts == 1 and task.next_attempt_at is not None  # backing off, not lost


def test_each_error_doubles_the_wait_before_the_next_attempt_up_to_an_hour(
    hi_register, practice_api, practice_users_url
):
    import time_machine
    from django.utils import timezone

    user = practice_api.post(practice_users_url, provider_of("fault"), format="json").json()

    def attempt_when_due() -> tuple[int, timedelta, timedelta]:
        """(attempts, least and most wait after this attempt) of an attempt made once the task is due."""
        due = VerificationTask.objects.get(pk=user["id"]).next_attempt_at
        with time_machine.travel(due + timedelta(seconds=1), tick=True):
            before = timezone.now()
            assert queue.process_due()[queue.RETRY] == 1
            after = timezone.now()
        task = VerificationTask.objects.get(pk=user["id"])
        return task.attempts, task.next_attempt_at - after, task.next_attempt_at - before

    first = VerificationTask.objects.get(pk=user["id"])
    assert first.attempts == 1 and first.next_attempt_at > timezone.now()  # the inline attempt's error
    for attempts, wait in ((2, 10), (3, 20)):
        made, least, most = attempt_when_due()
        assert made == attempts
        assert least <= timedelta(seconds=wait) <= most
    VerificationTask.objects.filter(pk=user["id"]).update(attempts=20)
    made, least, most = attempt_when_due()
    assert made == 21 and least <= timedelta(hours=1) <= most


def test_a_search_by_ahpra_number_shows_the_hpii_found_and_never_writes_it(
    hi_register, practice_api, practice_users_url
):
    person = "by_ahpra"
    body = provider_of(person, hpii_number=None, access_roles=["member"], ahpra_number="NMW0000000004")
    user = practice_api.post(practice_users_url, body, format="json").json()
    verification = _verification(user)
    assert verification["status"] == "verified"
    assert verification["found_hpii"] == "8003610000000402"
    assert user["provider_details"]["hpii_number"] is None
    assert ProviderDetails.objects.get(pk=user["id"]).hpii_number is None
    assert RegisterCall.objects.get(user_id=user["id"]).operation == RegisterCall.Operation.SEARCH_BY_AHPRA


def test_an_organization_without_hpio_cant_ask(hi_register, api, users_url):
    user = api.post(users_url, provider_of("active"), format="json").json()
    verification = _verification(user)
    assert verification["status"] == "error"
    assert "HPI-O" in verification["message"]
    assert not RegisterCall.objects.filter(user_id=user["id"]).exists()  # nothing was sent


def test_an_untrustworthy_answer_leaves_the_write_pending_and_the_worker_records_error(
    hi_register, practice_api, practice_users_url
):
    user = practice_api.post(practice_users_url, provider_of("garbage"), format="json").json()
    assert _verification(user)["status"] == "pending"
    assert user["can_prescribe"] is False

    counts = queue.process_due()
    assert counts[queue.RETRY] == 1
    details = ProviderDetails.objects.get(pk=user["id"])
    assert details.verification_status == "error"
    assert details.verification_message
    assert RegisterCall.objects.filter(user_id=user["id"], outcome="error").count() == 2


def test_without_a_register_providers_stay_unverified_and_cant_prescribe(
    practice_api, practice_users_url, settings
):
    settings.HI_VERIFICATION_REQUIRED = True
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert _verification(user)["status"] == "unverified"
    assert user["can_prescribe"] is False
    assert queue.process_due()[queue.DONE] == 0
    assert not RegisterCall.objects.exists()


def test_an_expired_certificate_makes_every_check_error_with_the_reason(
    hi_register, practice_api, practice_users_url, settings
):
    from hi_service.client import reset_client

    cert, key = hi_register.issue_client_certificate(name="Expired CSP", expired=True)
    settings.HI_SERVICE_CLIENT_CERT, settings.HI_SERVICE_CLIENT_KEY = str(cert), str(key)
    settings.HI_SERVICE_SIGNING_CERT, settings.HI_SERVICE_SIGNING_KEY = str(cert), str(key)
    reset_client()
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert user["can_prescribe"] is False
    queue.process_due()
    details = ProviderDetails.objects.get(pk=user["id"])
    assert details.verification_status == "error"
    assert "expired" in details.verification_message.lower()


def test_an_identity_change_forgets_the_old_answer_until_the_register_answers(
    hi_register, practice_api, practice_users_url, settings
):
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert _verification(user)["hpii_status"] == "Active"
    settings.HI_VERIFY_INLINE = False
    changed = practice_api.patch(
        f"{practice_users_url}/{user['id']}", {"provider_details": {"family_name": "Nguyen-Smith"}}, format="json"
    ).json()
    verification = _verification(changed)
    assert verification["status"] == "pending"
    assert verification["hpii_status"] is None and verification["next_check_at"] is None
    assert verification["checked_at"] == _verification(user)["checked_at"]
    assert changed["can_prescribe"] is False
    assert queue.process_due()[queue.DONE] == 1
    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "mismatch"


def test_a_write_cant_set_the_verification_state(hi_register, practice_api, practice_users_url):
    user = practice_api.post(practice_users_url, provider_of("retired"), format="json").json()
    url = f"{practice_users_url}/{user['id']}"
    assert _verification(user)["status"] == "inactive"
    claimed = {**_verification(user), "status": "verified", "hpii_status": "Active"}
    response = practice_api.patch(url, {"provider_details": {"verification": claimed}}, format="json")
    assert response.status_code == 200, response.content
    assert _verification(response.json()) == _verification(user)
    assert response.json()["can_prescribe"] is False
    # The details as read back can be sent again: `verification` is dropped, the register not asked.
    sent_back = practice_api.get(url).json()["provider_details"]
    response = practice_api.patch(url, {"provider_details": sent_back}, format="json")
    assert response.status_code == 200, response.content
    assert _verification(response.json())["status"] == "inactive"
    assert RegisterCall.objects.filter(user_id=user["id"]).count() == 1


@pytest.mark.parametrize("key", fixtures.ADVERSARIAL)
def test_an_adversarial_answer_never_verifies_and_is_asked_again(hi_register, practice_api, practice_users_url, key):
    response = practice_api.post(practice_users_url, provider_of(key), format="json")
    assert response.status_code == 201, response.content
    assert _verification(response.json())["status"] in ("pending", "error")
    assert response.json()["can_prescribe"] is False
    queue.process_due()
    details = ProviderDetails.objects.get(pk=response.json()["id"])
    assert details.verification_status == "error"
    assert details.verification_message  # the reason the answer was refused
    assert (details.verification_hpii_status, details.verification_found_hpii) == (None, None)
    assert set(RegisterCall.objects.filter(user_id=details.pk).values_list("outcome", flat=True)) == {"error"}
    task = VerificationTask.objects.get(pk=details.pk)
    assert task.attempts >= 1 and task.next_attempt_at is not None  # kept, asked again after a back-off


def test_with_the_gate_off_the_register_is_still_asked_but_does_not_decide(
    hi_register, practice_api, practice_users_url, settings
):
    from verification import checks

    settings.HI_VERIFICATION_REQUIRED = False
    user = practice_api.post(practice_users_url, provider_of("retired"), format="json").json()
    assert _verification(user)["status"] == "inactive"  # the outcome an operator watches
    assert user["can_prescribe"] is True
    listed = practice_api.get(practice_users_url).json()["results"]  # the SQL rendering
    assert [u["can_prescribe"] for u in listed if u["id"] == user["id"]] == [True]
    assert "verification.W002" in {warning.id for warning in checks.hi_service_deploy_checks()}

    settings.HI_VERIFICATION_REQUIRED = True
    assert practice_api.get(f"{practice_users_url}/{user['id']}").json()["can_prescribe"] is False
    listed = practice_api.get(practice_users_url).json()["results"]
    assert [u["can_prescribe"] for u in listed if u["id"] == user["id"]] == [False]
    assert "verification.W002" not in {warning.id for warning in checks.hi_service_deploy_checks()}

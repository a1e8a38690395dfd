"""What follows a change of verification state: audit events and webhooks, the worker's pass
(revalidation on a fake clock, a retired HPI-I seen everywhere), the hung register, two workers,
the shared request budget. Against the emulator over TLS."""

import dataclasses
import itertools
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ProviderDetails
from audit.context import Actor
from audit.models import AuditEvent
from hi_service import fixtures
from tests.verification.conftest import provider_of
from verification import queue, rate, schedule
from verification.models import RegisterCall, VerificationTask
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create
from worker import jobs

pytestmark = pytest.mark.django_db(transaction=True)

CHANGED = AuditEvent.Action.USER_PROVIDER_VERIFICATION_CHANGED


@pytest.fixture
def endpoint(practice, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint, _secret = webhook_endpoint_create(
        organization=practice, actor=Actor.system("tests"), url="http://127.0.0.1:9/hook", events=["*"]
    )
    return endpoint


def _transitions(user_id) -> list[tuple]:
    events = AuditEvent.objects.filter(user_id=user_id, action=CHANGED).order_by("id")
    return [(e.changes["status"]["from"], e.changes["status"]["to"], e.actor_type, e.actor_name) for e in events]


def _webhooks(user_id) -> list[dict]:
    return [
        event.payload["data"]
        for event in WebhookEvent.objects.filter(type=CHANGED, audit_event__user_id=user_id).order_by("audit_event_id")
    ]


def test_each_transition_is_audited_by_the_hi_service_and_sent_as_a_webhook(
    hi_register, practice_api, practice_users_url, endpoint
):
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert _transitions(user["id"]) == [
        ("unverified", "pending", "system", "hi service"),
        ("pending", "verified", "system", "hi service"),
    ]
    sent = _webhooks(user["id"])
    assert [data["changes"]["status"] for data in sent] == [
        {"from": "unverified", "to": "pending"},
        {"from": "pending", "to": "verified"},
    ]
    assert sent[-1]["user"]["can_prescribe"] is True
    assert sent[-1]["user"]["provider_details"]["verification"]["status"] == "verified"

    # A change of an identifying field: pending at once (can't prescribe on the old answer), then the answer.
    retired = fixtures.PRACTITIONERS["retired"]
    changed = practice_api.patch(
        f"{practice_users_url}/{user['id']}",
        {"provider_details": {
            "hpii_number": retired.hpii, "family_name": retired.family_name, "given_name": retired.given_names[0],
            "date_of_birth": retired.date_of_birth.isoformat(), "sex": retired.sex,
        }},
        format="json",
    ).json()
    assert changed["provider_details"]["verification"]["status"] == "inactive"
    assert changed["can_prescribe"] is False
    assert _transitions(user["id"])[2:] == [
        ("verified", "pending", "system", "hi service"),
        ("pending", "inactive", "system", "hi service"),
    ]
    assert [data["user"]["can_prescribe"] for data in _webhooks(user["id"])[2:]] == [False, False]

    # A change that identifies nobody new keeps the state, and writes no verification event.
    before = AuditEvent.objects.filter(action=CHANGED).count()
    kept = practice_api.patch(
        f"{practice_users_url}/{user['id']}", {"provider_details": {"qualifications": "FRACGP"}}, format="json"
    ).json()
    assert kept["provider_details"]["verification"]["status"] == "inactive"
    assert AuditEvent.objects.filter(action=CHANGED).count() == before
    assert RegisterCall.objects.filter(user_id=user["id"]).count() == 2


@pytest.fixture
def receiver():
    from tests.webhooks.conftest import Receiver

    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.release.set()
    receiver.stop()


def test_a_retired_hpii_loses_can_prescribe_everywhere_within_one_worker_pass(
    hi_register, practice, practice_api, practice_users_url, receiver, monkeypatch, client, settings
):
    from scim.services import scim_token_create

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on loopback
    webhook_endpoint_create(organization=practice, actor=Actor.system("tests"), url=receiver.url, events=["*"])
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert user["can_prescribe"] is True
    due = ProviderDetails.objects.get(pk=user["id"]).verification_next_check_at

    # The register retires the HPI-I; the provider's revalidation comes due.
    active = fixtures.PRACTITIONERS["active"]
    monkeypatch.setitem(fixtures.PRACTITIONERS, "active", dataclasses.replace(active, status="Retired"))
    with time_machine.travel(due + timedelta(seconds=1), tick=True):
        assert jobs.hi_verification(lambda: False) == 1
        # The worker's delivery job (the main lane of the same pass) sends what the register's answer changed.
        while jobs.webhook_delivery(lambda: False):
            pass

    resource = practice_api.get(f"{practice_users_url}/{user['id']}").json()
    assert resource["can_prescribe"] is False
    # Nothing else about the user changes: still active, still a provider, the same details.
    assert (resource["status"], resource["access_roles"]) == (user["status"], user["access_roles"])
    assert {k: v for k, v in resource["provider_details"].items() if k != "verification"} == {
        k: v for k, v in user["provider_details"].items() if k != "verification"
    }
    assert resource["provider_details"]["verification"]["status"] == "inactive"
    assert resource["provider_details"]["verification"]["hpii_status"] == "Retired"
    listed = practice_api.get(practice_users_url).json()["results"]
    assert [u["can_prescribe"] for u in listed if u["id"] == user["id"]] == [False]

    sent = _webhooks(user["id"])[-1]
    assert sent["changes"]["status"] == {"from": "verified", "to": "inactive"}
    assert sent["user"]["can_prescribe"] is False
    delivered = [body for body in receiver.bodies() if body["type"] == CHANGED][-1]["data"]
    assert delivered["changes"]["status"] == {"from": "verified", "to": "inactive"}
    assert delivered["user"]["can_prescribe"] is False
    assert delivered["user"]["provider_details"]["verification"]["hpii_status"] == "Retired"

    _token, raw = scim_token_create(organization=practice, name="Entra", actor=Actor.system("tests"))
    scim = APIClient()
    scim.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    extension = scim.get(f"/scim/v2/Users/{user['id']}").json()[
        "urn:ietf:params:scim:schemas:extension:au-prescriber:2.0:User"
    ]
    assert extension["verificationStatus"] == "inactive"

    from tests.factories import StaffFactory

    client.force_login(StaffFactory(email="sam@platform.example"))
    page = client.get(f"/admin/accounts/user/{user['id']}/change/").content.decode()
    assert "has not verified these details" in page
    assert "inactive" in page


def test_a_hung_register_answers_the_write_within_budget_with_pending(
    hi_register, practice_api, practice_users_url, settings
):
    settings.HI_VERIFY_INLINE_BUDGET_SECONDS = 1.0
    hi_register.slow_seconds = 10.0
    started = time.monotonic()
    response = practice_api.post(practice_users_url, provider_of("slow"), format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json()["provider_details"]["verification"]["status"] == "pending"
    assert elapsed < settings.HI_VERIFY_INLINE_BUDGET_SECONDS + 0.5
    task = VerificationTask.objects.get(pk=response.json()["id"])
    assert task.attempts == 0 and task.claimed_until is None  # nothing lost, due for the worker at once


def test_a_register_that_never_completes_the_handshake_leaves_the_write_pending_within_budget(
    hi_register, hi_service_hung, practice_api, practice_users_url, settings
):
    settings.HI_VERIFY_INLINE_BUDGET_SECONDS = 1.0  # shorter than the client's connect timeout (2 s)
    started = time.monotonic()
    response = practice_api.post(practice_users_url, provider_of("active"), format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json()["provider_details"]["verification"]["status"] == "pending"
    assert elapsed < settings.HI_VERIFY_INLINE_BUDGET_SECONDS + 0.5
    assert VerificationTask.objects.filter(pk=response.json()["id"], claimed_until__isnull=True).exists()


def test_two_workers_ask_about_each_provider_once(hi_register, practice_api, practice_users_url, settings):
    settings.HI_VERIFY_INLINE = False
    keys = ["active", "deactivated", "retired", "not_found"]
    ids = [practice_api.post(practice_users_url, provider_of(k), format="json").json()["id"] for k in keys]
    assert VerificationTask.objects.count() == len(ids)

    barrier = threading.Barrier(2)
    errors = []

    def work():
        from django.db import connection

        try:
            barrier.wait()
            while VerificationTask.objects.exists():
                queue.process_due(limit=2)
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(RegisterCall.objects.values_list("user_id", flat=True)) == sorted(
        type(RegisterCall.objects.first().user_id)(i) for i in ids
    )
    assert set(ProviderDetails.objects.values_list("verification_status", flat=True)) == {
        "verified", "inactive", "not_found"
    }


def test_the_request_budget_holds_across_threads(hi_register, settings):
    settings.HI_MAX_REQUESTS_PER_SECOND = 20.0
    starts, lock = [], threading.Lock()

    def reserve_ten():
        from django.db import connection

        try:
            for _ in range(10):
                moment = rate.reserve_moment(wait_at_most=5.0)
                with lock:
                    starts.append(moment)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve_ten) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    starts.sort()
    assert len(starts) == 30
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 20.0
    # Nothing reserved when the next free moment is further off than the caller can wait.
    assert rate.reserve(wait_at_most=0.0) is None


def test_revalidation_is_spread_over_the_period_and_repeats_on_each_providers_moment(settings):
    import uuid

    settings.HI_REVALIDATE_DAYS = 30
    period = timedelta(days=30)
    checked = timezone.now()
    ids = [uuid.uuid4() for _ in range(3000)]
    nexts = [schedule.next_check_at(user_id=i, checked_at=checked) for i in ids]
    assert all(checked + period / 2 < n <= checked + period for n in nexts)
    # Checked all at once (a first pass), due spread evenly: no day of the window holds a burst.
    per_day = [0] * 15
    for n in nexts:
        per_day[min(14, int((n - checked - period / 2) / timedelta(days=1)))] += 1
    assert max(per_day) < 2 * (len(ids) / 15)
    # Checked on its moment, a provider is next checked exactly one period later.
    for i, n in zip(ids[:50], nexts[:50], strict=True):
        assert schedule.next_check_at(user_id=i, checked_at=n) == n + period


def test_the_worker_revalidates_when_due_on_a_fake_clock(hi_register, practice_api, practice_users_url):
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    details = ProviderDetails.objects.get(pk=user["id"])
    due = details.verification_next_check_at
    with time_machine.travel(due - timedelta(minutes=1), tick=False):
        assert queue.process_due()[queue.DONE] == 0  # not yet
    with time_machine.travel(due + timedelta(seconds=1), tick=True):
        assert queue.process_due()[queue.DONE] == 1
    details.refresh_from_db()
    assert RegisterCall.objects.filter(user_id=user["id"]).count() == 2
    assert details.verification_status == "verified"
    assert details.verification_next_check_at == schedule.next_check_at(
        user_id=details.user_id, checked_at=details.verification_checked_at
    )
    assert details.verification_next_check_at > due


def test_due_revalidations_are_queued_oldest_first_a_pass_worth_at_a_time_after_changes(hi_register, practice):
    from accounts.services import user_disable
    from tests.factories import UserFactory

    users = [UserFactory(organization=practice, provider=True) for _ in range(5)]
    VerificationTask.objects.all().delete()
    now = timezone.now()
    for age, user in enumerate(users):  # users[4] has been due longest
        ProviderDetails.objects.filter(pk=user.pk).update(verification_next_check_at=now - timedelta(days=age + 1))
    ProviderDetails.objects.filter(pk=users[0].pk).update(verification_next_check_at=now + timedelta(days=1))
    user_disable(user=users[3], actor=Actor.system("tests"), reason="left")  # a disabled user is not asked
    VerificationTask.objects.all().delete()

    def queued() -> list:
        return list(VerificationTask.objects.order_by("user_id").values_list("user_id", flat=True))

    assert queue.enqueue_revalidations(limit=2) == 2
    assert queued() == sorted([users[4].pk, users[2].pk])
    assert queue.enqueue_revalidations(limit=2) == 0  # a pass's worth waits: nothing more is queued
    assert queue.enqueue_revalidations(limit=3) == 1  # room for one: the next due, never one queued
    assert queued() == sorted([users[4].pk, users[2].pk, users[1].pk])
    assert set(VerificationTask.objects.values_list("priority", flat=True)) == {VerificationTask.Priority.REVALIDATION}
    assert queue.enqueue_revalidations(limit=10) == 0  # users[0] is not due, users[3] is disabled

    # A change waiting meanwhile is asked about before every revalidation.
    queue.task_record(user=users[0], actor=Actor.system("tests"))
    asked_before = RegisterCall.objects.count()
    assert sum(queue.process_due(limit=1, concurrency=1).values()) == 1
    assert RegisterCall.objects.values_list("user_id", flat=True).first() == users[0].pk  # the newest call
    assert RegisterCall.objects.count() == asked_before + 1


def test_no_identifier_value_reaches_the_application_logs(
    hi_register, practice_api, practice_users_url, caplog
):
    import logging

    caplog.set_level(logging.DEBUG)
    for key in ("active", "fault", "garbage", "not_found"):
        practice_api.post(practice_users_url, provider_of(key), format="json")
    queue.process_due()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for key in ("active", "fault", "garbage", "not_found"):
        person = fixtures.PRACTITIONERS[key]
        assert person.hpii not in logged
        assert person.registration_id not in logged
        assert person.date_of_birth.isoformat() not in logged
    assert fixtures.FIXTURE_HPIO not in logged


def test_staff_verify_now_from_the_admin(hi_register, practice_api, practice_users_url, client, settings):
    from tests.factories import StaffFactory

    settings.HI_VERIFY_INLINE = False
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "pending"
    settings.HI_VERIFY_INLINE = True
    staff = StaffFactory(email="sam@platform.example")
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/providerdetails/",
        {"action": "verify_now_action", "_selected_action": [user["id"]]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Asked the HI Service about 1 provider" in response.content.decode()
    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "verified"
    listing = client.get("/admin/accounts/providerdetails/?verification_status__exact=verified").content.decode()
    assert "Register Practice" in listing
    log = client.get("/admin/verification/registercall/").content.decode()
    assert "provider-individual search by HPI-I" in log


def test_staff_who_may_only_view_cant_verify_now(hi_register, practice_api, practice_users_url, client, settings):
    from django.contrib.auth.models import Permission

    from tests.factories import StaffFactory

    settings.HI_VERIFY_INLINE = False
    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    VerificationTask.objects.all().delete()  # nothing left for a later attempt to answer
    viewer = StaffFactory(email="vera@platform.example")
    viewer.is_superuser = False
    viewer.save()
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "view_providerdetails"]))
    client.force_login(viewer)
    settings.HI_VERIFY_INLINE = True
    listing = client.get("/admin/accounts/providerdetails/")
    assert listing.status_code == 200 and "verify_now_action" not in listing.content.decode()
    client.post(
        "/admin/accounts/providerdetails/", {"action": "verify_now_action", "_selected_action": [user["id"]]}
    )
    assert not RegisterCall.objects.filter(user_id=user["id"]).exists()
    assert not VerificationTask.objects.exists()
    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "pending"


def test_the_admin_shows_the_status_the_last_check_and_the_registers_message(
    hi_register, practice_api, practice_users_url, client
):
    from django.utils import formats, timezone

    from tests.factories import StaffFactory

    user = practice_api.post(
        practice_users_url, provider_of("mismatch", family_name="Someone-Else"), format="json"
    ).json()
    details = ProviderDetails.objects.get(pk=user["id"])
    assert details.verification_status == "mismatch" and "HI-EMU-MISMATCH" in details.verification_message
    client.force_login(StaffFactory(email="sam@platform.example"))
    checked = formats.date_format(timezone.localtime(details.verification_checked_at), "DATETIME_FORMAT")

    page = client.get(f"/admin/accounts/providerdetails/{user['id']}/change/").content.decode()
    status = details.get_verification_status_display()
    for shown in (status, checked, details.verification_message):
        assert shown in page, shown
    listing = client.get("/admin/accounts/providerdetails/?verification_status__exact=mismatch").content.decode()
    assert status in listing and checked in listing
    user_page = client.get(f"/admin/accounts/user/{user['id']}/change/").content.decode()
    assert f"has not verified these details: {status} ({details.verification_message})" in user_page


def test_the_migration_makes_existing_providers_pending_and_queued_first(hi_register, practice_api, practice_users_url):
    import importlib

    from django.apps import apps

    user = practice_api.post(practice_users_url, provider_of("active", access_roles=["member"]), format="json").json()
    # As before the verification state existed: unverified, nothing queued.
    ProviderDetails.objects.filter(pk=user["id"]).update(verification_status="unverified")
    VerificationTask.objects.all().delete()

    migration = importlib.import_module("verification.migrations.0002_existing_providers_queued")
    migration.queue_existing_providers(apps, None)

    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "pending"
    task = VerificationTask.objects.get(pk=user["id"])
    assert task.priority == VerificationTask.Priority.CHANGE  # before any revalidation
    assert queue.process_due()[queue.DONE] == 1
    assert ProviderDetails.objects.get(pk=user["id"]).verification_status == "verified"


@pytest.mark.parametrize(
    ("key", "overrides", "status"),
    [
        ("mismatch", {"family_name": "Someone-Else"}, "mismatch"),
        ("not_found", {}, "not_found"),
        ("fault", {}, "error"),
        ("deactivated", {}, "inactive"),
    ],
)
def test_each_answer_is_a_transition_audited_and_sent_as_a_webhook(
    hi_register, practice_api, practice_users_url, endpoint, key, overrides, status
):
    user = practice_api.post(practice_users_url, provider_of(key, **overrides), format="json").json()
    assert user["provider_details"]["verification"]["status"] == status
    assert _transitions(user["id"]) == [
        ("unverified", "pending", "system", "hi service"),
        ("pending", status, "system", "hi service"),
    ]
    sent = _webhooks(user["id"])
    assert [data["changes"]["status"] for data in sent] == [
        {"from": "unverified", "to": "pending"}, {"from": "pending", "to": status},
    ]
    assert [data["user"]["can_prescribe"] for data in sent] == [False, False]
    assert sent[-1]["user"]["provider_details"]["verification"]["status"] == status


def test_an_error_then_an_answer_are_transitions_too(
    hi_register, practice_api, practice_users_url, endpoint, settings
):
    from hi_service.client import reset_client

    user = practice_api.post(practice_users_url, provider_of("active"), format="json").json()
    # Verified inline; asked again with the register unreachable, the worker's attempt is an error.
    url, settings.HI_SERVICE_URL = settings.HI_SERVICE_URL, "https://127.0.0.1:1/ProviderSearchForProviderIndividual/5.0.0"
    reset_client()
    assert practice_api.post(f"{practice_users_url}/{user['id']}/provider-details/verify").status_code == 202
    assert queue.process_due()[queue.RETRY] == 1
    settings.HI_SERVICE_URL = url
    reset_client()
    asked = practice_api.post(f"{practice_users_url}/{user['id']}/provider-details/verify").json()
    assert asked["provider_details"]["verification"]["status"] == "verified"
    assert _transitions(user["id"])[2:] == [
        ("verified", "error", "system", "hi service"),
        ("error", "pending", "system", "hi service"),
        ("pending", "verified", "system", "hi service"),
    ]
    assert [data["user"]["can_prescribe"] for data in _webhooks(user["id"])[2:]] == [False, False, True]

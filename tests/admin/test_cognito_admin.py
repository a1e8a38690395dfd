"""The Cognito queue in the admin, and the index's "needs attention" panel."""

import re

import pytest

from accounts.models import CognitoSync
from tests.admin.conftest import PROVIDER_DETAILS

pytestmark = pytest.mark.django_db


def _fail(user, error="Cognito timed out"):
    CognitoSync.objects.filter(pk=user.pk).update(state=CognitoSync.State.FAILED, attempts=8, last_error=error)


def test_queue_lists_failed_tasks_with_their_error(staff_client, ben):
    _fail(ben)
    page = staff_client.get("/admin/accounts/cognitosync/", {"state__exact": "failed"})
    assert page.status_code == 200
    assert ben.email in page.text and "Cognito timed out" in page.text


def test_retry_action_makes_failed_tasks_due_again(staff_client, ben, make_user):
    synced = make_user("synced@practice.example")
    CognitoSync.objects.filter(pk=synced.pk).update(state=CognitoSync.State.SYNCED)
    _fail(ben)
    response = staff_client.post(
        "/admin/accounts/cognitosync/", {"action": "retry_action", "_selected_action": [ben.pk, synced.pk]}
    )
    assert response.status_code == 302
    row = CognitoSync.objects.get(pk=ben.pk)
    assert row.state == CognitoSync.State.PENDING and row.attempts == 0
    assert CognitoSync.objects.get(pk=synced.pk).state == CognitoSync.State.SYNCED


def test_queue_is_read_only_and_view_only_staff_cant_retry(viewer_client, ben):
    _fail(ben)
    assert viewer_client.get(f"/admin/accounts/cognitosync/{ben.pk}/change/").status_code == 200
    assert "retry_action" not in viewer_client.get("/admin/accounts/cognitosync/").text
    viewer_client.post("/admin/accounts/cognitosync/", {"action": "retry_action", "_selected_action": [ben.pk]})
    assert CognitoSync.objects.get(pk=ben.pk).state == CognitoSync.State.FAILED


def test_index_shows_what_needs_attention(staff_client, make_user):
    from accounts.services import user_roles_set
    from audit.context import Actor

    _fail(make_user("a@practice.example"))
    _fail(make_user("b@practice.example"))
    make_user("complete@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS)
    upgraded = make_user("upgraded@practice.example", roles=["rx_reader"])
    user_roles_set(user=upgraded, actor=Actor.system(), roles=["provider"])

    page = staff_client.get("/admin/")
    assert page.status_code == 200
    items = {item["label"]: item["count"] for item in page.context["attention"]}
    assert items["Failed Cognito syncs"] == 2
    assert items["Providers with incomplete details"] == 1
    assert "?can_prescribe=incomplete" in page.text
    incomplete = staff_client.get("/admin/accounts/user/", {"can_prescribe": "incomplete"}).text
    assert "upgraded@practice.example" in incomplete and "complete@practice.example" not in incomplete.replace(
        "upgraded@practice.example", ""
    )


def test_only_a_pending_task_shows_a_next_attempt(staff_client, ben, make_user):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(days=3650)
    synced = make_user("synced@practice.example")
    CognitoSync.objects.filter(pk=synced.pk).update(state=CognitoSync.State.SYNCED, next_attempt_at=later)
    CognitoSync.objects.filter(pk=ben.pk).update(state=CognitoSync.State.PENDING, next_attempt_at=later)
    year = str(timezone.localtime(later).year)

    # Read in the field itself: the page around it holds UUIDs, which may contain the year's digits.
    assert _next_attempt(staff_client.get(f"/admin/accounts/cognitosync/{synced.pk}/change/").text) == "—"
    assert year in _next_attempt(staff_client.get(f"/admin/accounts/cognitosync/{ben.pk}/change/").text)
    listing = staff_client.get("/admin/accounts/cognitosync/", {"state__exact": "synced"}).text
    assert re.findall(r'<td class="field-next_attempt[^"]*">(.*?)</td>', listing, flags=re.S) == ["—"]


def _next_attempt(page: str) -> str:
    """The change page's "Next attempt at" field, as shown."""
    return re.search(r"<label>Next attempt at:</label>\s*<div class=\"readonly\">(.*?)</div>", page, flags=re.S).group(1)


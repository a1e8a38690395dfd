"""Audit events in the admin: read-only for everyone, with a CSV export of the filtered list."""

import csv
import io

import pytest

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_no_add_change_or_delete_even_for_superusers(staff_client, ben):
    event = AuditEvent.objects.filter(user=ben).first()
    assert staff_client.get("/admin/audit/auditevent/add/").status_code == 403
    detail = staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert "user.created" in detail.text and 'name="action"' not in detail.text
    assert (
        staff_client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "user.disabled"}).status_code == 403
    )
    assert staff_client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    staff_client.post("/admin/audit/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk]})
    assert AuditEvent.objects.filter(pk=event.pk, action="user.created").exists()


def test_filters_by_user_action_and_actor(staff_client, ben, make_user):
    other = make_user("other@practice.example")
    by_user = staff_client.get("/admin/audit/auditevent/", {"user": ben.pk})
    assert ben.email in by_user.text and other.email not in by_user.text
    by_search = staff_client.get("/admin/audit/auditevent/", {"q": str(other.pk)})
    assert other.email in by_search.text and ben.email not in by_search.text
    by_action = staff_client.get("/admin/audit/auditevent/", {"action__exact": "user.disabled"})
    assert ben.email not in by_action.text
    by_actor = staff_client.get("/admin/audit/auditevent/", {"actor_type__exact": "system"})
    assert ben.email in by_actor.text


def test_csv_export_is_the_filtered_list(staff_client, ben, make_user, staff):
    from accounts.services import user_create
    from audit.context import Actor

    user_create(
        organization=ben.organization,
        actor=Actor.system("=cmd|' /C calc'!A0"),
        email="x@practice.example",
        given_name="X",
        family_name="Y",
    )
    staff_client.post(f"/admin/accounts/user/{ben.pk}/roles/", {"roles": ["admin"], "apply": "1"})

    everything = _csv(staff_client.get("/admin/audit/auditevent/export.csv"))
    assert len(everything) == AuditEvent.objects.count() == 4  # and organization.created

    rows = _csv(
        staff_client.get("/admin/audit/auditevent/export.csv", {"user": ben.pk, "action__exact": "user.roles_changed"})
    )
    assert len(rows) == 1
    assert rows[0]["user_id"] == str(ben.pk)
    assert rows[0]["actor_type"] == "staff" and rows[0]["actor_name"] == staff.email
    assert '"to": ["admin"]' in rows[0]["changes"]

    # A spreadsheet must not run a value as a formula.
    [hostile] = [r for r in everything if "calc" in r["actor_name"]]
    assert hostile["actor_name"] == "'=cmd|' /C calc'!A0"


def test_export_link_carries_the_current_filters(staff_client, ben):
    page = staff_client.get("/admin/audit/auditevent/", {"action__exact": "user.created"})
    assert "export.csv?action__exact=user.created" in page.text


def test_view_only_staff_can_read_and_export(viewer_client, ben):
    assert viewer_client.get("/admin/audit/auditevent/").status_code == 200
    assert len(_csv(viewer_client.get("/admin/audit/auditevent/export.csv"))) == 2  # organization.created too


def test_staff_without_permission_cant_export(client, viewer, ben):
    viewer.user_permissions.clear()
    client.force_login(viewer)
    assert client.get("/admin/audit/auditevent/export.csv").status_code == 403

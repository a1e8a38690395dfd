"""Staff and privileges: only superusers manage staff accounts, groups and permissions.

The attacker is Ivy, a staff member holding every permission there is except the superuser flag.
Sam is a superuser; Olga is another staff member without privileges."""

import csv
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

from accounts import staff as staff_services
from accounts.models import User
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def _staff_member(django_user_model, email, given_name, *, permissions=()):
    user = django_user_model.objects.create_superuser(
        email=email, password=PASSWORD, given_name=given_name, family_name="Staff"
    )
    user.is_superuser = False
    user.save()
    user.user_permissions.set(permissions)
    return user


@pytest.fixture
def ivy(db, django_user_model):
    """Every permission, no superuser flag."""
    return _staff_member(django_user_model, "ivy@platform.example", "Ivy", permissions=Permission.objects.all())


@pytest.fixture
def ivy_client(client, ivy):
    client.force_login(ivy)
    return client


@pytest.fixture
def olga(db, django_user_model):
    return _staff_member(django_user_model, "olga@platform.example", "Olga")


@pytest.fixture
def support(db):
    group = Group.objects.create(name="Support")
    group.permissions.set(Permission.objects.filter(codename="view_user"))
    return group


def _change_url(member) -> str:
    return f"/admin/accounts/staffuser/{member.pk}/change/"


def _form(member, **overrides) -> dict:
    data = {
        "email": member.email,
        "given_name": member.given_name,
        "family_name": member.family_name,
        "status": member.status,
    }
    if member.is_superuser:
        data["is_superuser"] = "on"
    data["groups"] = [g.pk for g in member.groups.all()]
    data["user_permissions"] = [p.pk for p in member.user_permissions.all()]
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _privileges(member) -> dict:
    member = User.objects.get(pk=member.pk)
    return {
        "is_superuser": member.is_superuser,
        "status": member.status,
        "groups": sorted(member.groups.values_list("name", flat=True)),
        "permissions": sorted(member.user_permissions.values_list("codename", flat=True)),
        "email": member.email,
        "password": member.password,
    }


def _events():
    return list(AuditEvent.objects.filter(action="staff.privileges_changed").order_by("id"))


# --- a staff member with every permission but superuser -------------------------------------------


def test_password_pages_of_others_and_their_own_are_forbidden(ivy_client, ivy, staff, olga):
    for member in (staff, olga, ivy):
        url = f"/admin/accounts/staffuser/{member.pk}/password/"
        assert ivy_client.get(url).status_code == 403
        response = ivy_client.post(url, {"password1": "taken over at last", "password2": "taken over at last",
                                         "usable_password": "true"})
        assert response.status_code == 403
        assert User.objects.get(pk=member.pk).check_password(PASSWORD)
    # Their own password changes where the old one is asked.
    assert ivy_client.get("/admin/password_change/").status_code == 200
    # Others' pages are read-only, and show no password hash.
    page = ivy_client.get(_change_url(staff))
    assert page.status_code == 200
    assert 'name="email"' not in page.text and 'name="password1"' not in page.text
    assert staff.password.split("$")[-1] not in page.text
    assert _events() == []


def test_another_staff_member_cannot_be_changed(ivy_client, olga, support):
    before = _privileges(olga)
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    attempts = [
        {"email": "ivy.owns.this@platform.example"},
        {"status": "disabled"},
        {"is_superuser": "on"},
        {"groups": [support.pk]},
        {"user_permissions": every_permission},
        {"given_name": "Renamed"},
    ]
    for change in attempts:
        response = ivy_client.post(_change_url(olga), _form(olga, **change))
        assert response.status_code == 403, change
        assert _privileges(olga) == before
    assert User.objects.get(pk=olga.pk).given_name == "Olga"
    assert _events() == []


def test_they_cannot_raise_their_own_privileges(ivy_client, ivy, support):
    before = _privileges(ivy)
    response = ivy_client.post(
        _change_url(ivy),
        _form(
            ivy,
            email="ivy.root@platform.example",
            given_name="Ivy-Renamed",
            is_superuser="on",
            groups=[support.pk],
            user_permissions=list(Permission.objects.values_list("pk", flat=True)),
            status="active",
        ),
    )
    assert response.status_code in (302, 403)
    assert _privileges(ivy) == before  # not superuser, no group, e-mail unchanged
    assert User.objects.get(pk=ivy.pk).given_name == "Ivy-Renamed"  # their own name they may change
    assert _events() == []


def test_the_service_refuses_whatever_the_page_sent(ivy, olga, support):
    """The rule lives in the service, not only in the read-only fields of the form."""
    ivy.is_superuser = True
    with pytest.raises(PermissionDenied):
        staff_services.staff_member_save(actor=User.objects.get(pk=ivy.pk), member=ivy)
    actor = User.objects.get(pk=ivy.pk)
    me = User.objects.get(pk=ivy.pk)
    with pytest.raises(PermissionDenied):
        staff_services.staff_member_save(actor=actor, member=me, groups=[support])
    me.email = "ivy.root@platform.example"
    with pytest.raises(PermissionDenied):
        staff_services.staff_member_save(actor=actor, member=me)
    with pytest.raises(PermissionDenied):
        staff_services.staff_member_save(actor=actor, member=User.objects.get(pk=olga.pk), permissions=[])
    with pytest.raises(PermissionDenied):
        staff_services.group_save(actor=actor, group=support, permissions=Permission.objects.all())
    assert not User.objects.get(pk=ivy.pk).is_superuser and not User.objects.get(pk=ivy.pk).groups.exists()
    assert support.permissions.count() == 1


def test_groups_cannot_be_added_changed_or_deleted(ivy_client, ivy, support):
    ivy.groups.add(support)
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    assert ivy_client.get(f"/admin/auth/group/{support.pk}/change/").status_code == 200  # view only
    change = ivy_client.post(
        f"/admin/auth/group/{support.pk}/change/", {"name": "Support", "permissions": every_permission}
    )
    assert change.status_code == 403
    assert list(support.permissions.values_list("codename", flat=True)) == ["view_user"]
    assert ivy_client.post("/admin/auth/group/add/", {"name": "Root", "permissions": every_permission}).status_code == 403
    assert not Group.objects.filter(name="Root").exists()
    assert ivy_client.post(f"/admin/auth/group/{support.pk}/delete/", {"post": "yes"}).status_code == 403
    ivy_client.post(
        "/admin/auth/group/", {"action": "delete_selected", "_selected_action": [support.pk], "post": "yes"}
    )
    assert Group.objects.filter(pk=support.pk).exists()
    assert _events() == []


def test_they_cannot_add_staff_members(ivy_client, support):
    assert ivy_client.get("/admin/accounts/staffuser/add/").status_code == 403
    response = ivy_client.post(
        "/admin/accounts/staffuser/add/",
        {
            "email": "accomplice@platform.example",
            "given_name": "Acc",
            "family_name": "Omplice",
            "password1": "a long staff passphrase",
            "password2": "a long staff passphrase",
            "is_superuser": "on",
            "groups": [support.pk],
        },
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="accomplice@platform.example").exists()


# --- superusers manage all of it, and every change is recorded -----------------------------------------


def test_a_superuser_changes_privileges_and_each_change_is_recorded(staff_client, staff, olga, support):
    view_org = Permission.objects.get(codename="view_organization")
    response = staff_client.post(
        _change_url(olga),
        _form(olga, is_superuser="on", groups=[support.pk], user_permissions=[view_org.pk]),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    olga.refresh_from_db()
    assert olga.is_superuser and list(olga.groups.all()) == [support]
    [event] = _events()
    assert event.organization_id is None and event.user_id == olga.pk
    assert (event.actor_type, event.actor_id, event.actor_name) == ("staff", str(staff.pk), staff.email)
    assert event.changes == {
        "is_superuser": {"from": False, "to": True},
        "groups": {"from": [], "to": ["Support"]},
        "permissions": {"from": [], "to": ["organizations.view_organization"]},
    }

    response = staff_client.post(_change_url(olga), _form(olga, is_superuser=None, status="disabled", groups=[]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _events()[-1].changes == {
        "is_superuser": {"from": True, "to": False},
        "is_active": {"from": True, "to": False},
        "groups": {"from": ["Support"], "to": []},
    }
    # A change that touches no privilege records none.
    staff_client.post(_change_url(olga), _form(User.objects.get(pk=olga.pk), given_name="Olga-Renamed"))
    assert User.objects.get(pk=olga.pk).given_name == "Olga-Renamed"
    assert len(_events()) == 2

    password = staff_client.post(
        f"/admin/accounts/staffuser/{olga.pk}/password/",
        {"password1": "a new staff passphrase", "password2": "a new staff passphrase", "usable_password": "true"},
    )
    assert password.status_code == 302
    assert User.objects.get(pk=olga.pk).check_password("a new staff passphrase")


def test_a_new_staff_member_is_recorded(staff_client, staff):
    response = staff_client.post(
        "/admin/accounts/staffuser/add/",
        {
            "email": "new@platform.example",
            "given_name": "New",
            "family_name": "Staff",
            "password1": "a long staff passphrase",
            "password2": "a long staff passphrase",
        },
    )
    assert response.status_code == 302
    member = User.objects.get(email="new@platform.example")
    assert member.is_staff and not member.is_superuser and member.check_password("a long staff passphrase")
    [event] = _events()
    assert event.user_id == member.pk and event.actor_id == str(staff.pk)
    assert event.changes == {"is_staff": {"from": False, "to": True}, "is_active": {"from": False, "to": True}}


def test_a_superuser_changes_a_groups_permissions_and_it_is_recorded(staff_client, staff, support):
    view_org = Permission.objects.get(codename="view_organization")
    view_user = Permission.objects.get(codename="view_user")
    response = staff_client.post(
        f"/admin/auth/group/{support.pk}/change/", {"name": "Support", "permissions": [view_user.pk, view_org.pk]}
    )
    assert response.status_code == 302
    [event] = _events()
    assert event.organization_id is None and event.user_id is None and event.actor_id == str(staff.pk)
    assert event.changes == {
        "group": "Support",
        "permissions": {
            "from": ["accounts.view_user"],
            "to": ["accounts.view_user", "organizations.view_organization"],
        },
    }
    assert staff_client.post("/admin/auth/group/add/", {"name": "Auditors"}).status_code == 302
    assert len(_events()) == 1  # a new group with no permissions gives nobody anything
    assert staff_client.post(f"/admin/auth/group/{support.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=support.pk).exists()
    assert _events()[-1].changes["permissions"] == {
        "from": ["accounts.view_user", "organizations.view_organization"],
        "to": [],
    }
    # The list's bulk delete goes through the same service.
    auditors = Group.objects.get(name="Auditors")
    auditors.permissions.set(Permission.objects.filter(codename="view_auditevent"))
    staff_client.post(
        "/admin/auth/group/", {"action": "delete_selected", "_selected_action": [auditors.pk], "post": "yes"}
    )
    assert not Group.objects.filter(pk=auditors.pk).exists()
    last = _events()[-1]
    assert last.changes["group"] == "Auditors"
    assert last.changes["permissions"] == {"from": ["audit.view_auditevent"], "to": []}


# --- the audit pages show events with no organization -----------------------------------------------------


def test_audit_pages_show_staff_events(staff_client, staff, olga):
    staff_client.post(_change_url(olga), _form(olga, is_superuser="on"))
    [event] = _events()
    listing = staff_client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200 and "staff.privileges_changed" in listing.text
    assert _change_url(olga) in listing.text  # the staff page, not the practice users' one
    assert staff_client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    export = staff_client.get("/admin/audit/auditevent/export.csv")
    assert export.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert row["action"] == "staff.privileges_changed" and row["organization_id"] == "" and row["organization"] == ""


# --- how a staff member signs in: a privileged change like any other ----------------------------------


def test_a_superuser_setting_another_staff_members_password_is_recorded(staff_client, staff, olga):
    response = staff_client.post(
        f"/admin/accounts/staffuser/{olga.pk}/password/",
        {"password1": "a new staff passphrase", "password2": "a new staff passphrase", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert User.objects.get(pk=olga.pk).check_password("a new staff passphrase")
    [event] = _events()
    assert (event.user_id, event.actor_type, event.actor_id) == (olga.pk, "staff", str(staff.pk))
    assert event.changes == {"password": "set"}
    assert "a new staff passphrase" not in str(event.changes)

    # Turning password sign-in off is recorded too.
    response = staff_client.post(f"/admin/accounts/staffuser/{olga.pk}/password/", {"usable_password": "false",
                                                                                   "unset-password": "1"})
    assert response.status_code == 302
    assert not User.objects.get(pk=olga.pk).has_usable_password()
    assert _events()[-1].changes == {"password": "removed"}


def test_a_superuser_changing_another_staff_members_email_is_recorded(staff_client, staff, olga):
    response = staff_client.post(_change_url(olga), _form(olga, email="olga.new@platform.example"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = _events()
    assert event.user_id == olga.pk and event.actor_id == str(staff.pk)
    assert event.changes == {"email": {"from": "olga@platform.example", "to": "olga.new@platform.example"}}


def test_the_password_service_refuses_anyone_but_a_superuser(ivy, olga):
    with pytest.raises(PermissionDenied):
        staff_services.staff_password_set(actor=ivy, member=olga, password="taken over at last")
    assert User.objects.get(pk=olga.pk).check_password(PASSWORD)
    assert _events() == []


def test_a_staff_members_own_password_change_is_recorded_and_keeps_them_signed_in(client, olga):
    client.force_login(olga)
    new = "olga's own new passphrase"
    wrong = client.post("/admin/password_change/", {"old_password": "not it", "new_password1": new,
                                                    "new_password2": new})
    assert wrong.status_code == 200 and "old_password" in wrong.context["form"].errors
    assert _events() == []

    response = client.post("/admin/password_change/", {"old_password": PASSWORD, "new_password1": new,
                                                       "new_password2": new})
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/done/"
    assert User.objects.get(pk=olga.pk).check_password(new)
    [event] = _events()
    assert (event.user_id, event.actor_type, event.actor_id) == (olga.pk, "staff", str(olga.pk))
    assert event.organization_id is None
    assert event.changes == {"password": "changed"}
    assert new not in str(event.changes)
    assert client.get("/admin/").status_code == 200  # the session follows the new password


def test_the_own_password_page_is_the_admins(client, olga):
    assert client.get("/admin/password_change/").status_code == 302  # signed out: to the sign-in page
    client.force_login(olga)
    page = client.get("/admin/password_change/")
    assert page.status_code == 200
    assert "admin/base_site.html" in [template.name for template in page.templates]

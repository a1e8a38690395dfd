"""Platform staff have their own page: no organization, a password, admin permissions."""

import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_add_a_staff_member_and_change_them(staff_client, ben):
    response = staff_client.post(
        "/admin/accounts/staffuser/add/",
        {
            "email": "New.Staff@Platform.example",
            "given_name": "New",
            "family_name": "Staff",
            "password1": "a long staff passphrase",
            "password2": "a long staff passphrase",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    member = User.objects.get(email="new.staff@platform.example")
    assert member.is_staff and member.organization_id is None and not member.is_superuser
    assert member.check_password("a long staff passphrase")

    listing = staff_client.get("/admin/accounts/staffuser/").text
    assert "new.staff@platform.example" in listing and ben.email not in listing
    assert staff_client.get(f"/admin/accounts/staffuser/{ben.pk}/change/").status_code == 302  # not staff

    change = staff_client.post(
        f"/admin/accounts/staffuser/{member.pk}/change/",
        {"email": member.email, "given_name": "New", "family_name": "Staff", "status": "disabled"},
    )
    assert change.status_code == 302, change.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.is_disabled and member.disabled_at is not None


def test_provider_details_page_is_read_only(staff_client, make_user):
    from tests.admin.conftest import PROVIDER_DETAILS

    user = make_user("p@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS)
    page = staff_client.get(f"/admin/accounts/providerdetails/{user.pk}/change/")
    assert page.status_code == 200 and 'name="hpii_number"' not in page.text
    assert staff_client.get(f"/admin/accounts/providerdetails/{user.pk}/history/").status_code == 200


def test_staff_who_are_not_superusers_cannot_grant_themselves_privileges(client, viewer):
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_staffuser", "change_staffuser"]))
    client.force_login(viewer)
    page = client.get(f"/admin/accounts/staffuser/{viewer.pk}/change/")
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.text
    assert 'name="user_permissions"' not in page.text

"""The practice users' admin: every write goes through the services, attributed to the staff member."""

import pytest

from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from tests.admin.conftest import BAD_HPII, PROVIDER_DETAILS, VALID_HPII, change_url, user_form_data

pytestmark = pytest.mark.django_db


def _upgrade(user):
    """Provider role without complete details: the API's documented step 2 before step 3."""
    from accounts.services import user_roles_set
    from audit.context import Actor

    return user_roles_set(user=user, actor=Actor.system("test setup"), roles=[*user.roles, "provider"])


def _staff_events(user, staff):
    return list(AuditEvent.objects.filter(user=user, actor_type="staff", actor_id=str(staff.pk)).order_by("id"))


# --- list, search, filters ---------------------------------------------------------------------------


def test_list_shows_practice_users_but_not_platform_staff(staff_client, ben, staff):
    response = staff_client.get("/admin/accounts/user/")
    assert response.status_code == 200
    assert ben.email in response.text
    assert staff.email not in response.text.split('id="result_list"')[1]


@pytest.mark.parametrize(
    ("query", "found"),
    [("pms-42", True), ("Smith", True), ("ben@practice", True), (VALID_HPII, True), ("nobody", False)],
)
def test_search_by_partner_id_name_email_and_hpii(staff_client, make_user, query, found):
    make_user("ben@practice.example", partner_user_id="pms-42", roles=["provider"], provider_details=PROVIDER_DETAILS)
    response = staff_client.get("/admin/accounts/user/", {"q": query})
    assert response.status_code == 200
    assert ("ben@practice.example" in response.text) is found


def test_role_and_can_prescribe_filters(staff_client, make_user):
    make_user("prescriber@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS)
    _upgrade(make_user("upgraded@practice.example", roles=["rx_reader"], provider_details={"qualifications": "MD"}))
    make_user("reader@practice.example", roles=["rx_reader"])

    def emails(**params):
        body = staff_client.get("/admin/accounts/user/", params).text.split('id="result_list"')[1]
        return {e for e in ("prescriber", "upgraded", "reader") if f"{e}@practice.example" in body}

    assert emails(role="provider") == {"prescriber", "upgraded"}
    assert emails(role="rx_reader") == {"upgraded", "reader"}
    assert emails(can_prescribe="yes") == {"prescriber"}
    assert emails(can_prescribe="no") == {"upgraded", "reader"}
    assert emails(can_prescribe="incomplete") == {"upgraded"}


def test_status_and_cognito_state_filters(staff_client, make_user, staff):
    from accounts.services import user_disable
    from audit.context import Actor

    active = make_user("active@practice.example")
    gone = make_user("gone@practice.example")
    user_disable(user=gone, actor=Actor.staff(staff))
    CognitoSync.objects.filter(pk=active.pk).update(state=CognitoSync.State.FAILED, last_error="boom")

    failed = staff_client.get("/admin/accounts/user/", {"cognito_sync__state__exact": "failed"}).text
    assert "active@practice.example" in failed and "gone@practice.example" not in failed
    disabled = staff_client.get("/admin/accounts/user/", {"status__exact": "disabled"}).text
    assert "gone@practice.example" in disabled and "active@practice.example" not in disabled


def test_list_query_count_does_not_grow_with_users(staff_client, make_user, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_user("one@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS)
    with CaptureQueriesContext(connection) as few:
        staff_client.get("/admin/accounts/user/")
    for i in range(6):
        _upgrade(make_user(f"more{i}@practice.example", roles=["rx_reader"], provider_details={"qualifications": "MD"}))
    with CaptureQueriesContext(connection) as many:
        assert staff_client.get("/admin/accounts/user/").status_code == 200
    assert len(many) == len(few)


# --- create and change through the services ------------------------------------------------------------


def test_creating_a_user_goes_through_user_create(staff_client, organization, staff):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "organization": organization.pk,
            "email": "New.Person@Practice.example",
            "given_name": "New",
            "family_name": "Person",
            "phone": "0432333333",
            "roles": ["receptionist"],
            **{f"provider_{k}": "" for k in PROVIDER_DETAILS},
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@practice.example")
    assert user.organization == organization
    assert user.roles == ["receptionist"]
    assert user.phone == "+61432333333"
    assert [e.action for e in _staff_events(user, staff)] == ["user.created"]
    assert CognitoSync.objects.get(pk=user.pk).desired["groups"] == ["receptionist"]
    assert user.history.latest().history_user_id == staff.pk


def test_creating_a_provider_without_details_shows_the_services_field_errors(staff_client, organization):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "organization": organization.pk,
            "email": "p@practice.example",
            "given_name": "P",
            "family_name": "Q",
            "roles": ["provider"],
            "provider_hpii_number": BAD_HPII,
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "check digit" in " ".join(errors["provider_hpii_number"])
    assert "required" in " ".join(errors["provider_date_of_birth"])
    assert not User.objects.filter(email="p@practice.example").exists()


def test_duplicate_email_is_a_field_error_not_a_crash(staff_client, organization, ben):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {"organization": organization.pk, "email": "BEN@practice.example", "given_name": "B", "family_name": "S"},
    )
    assert response.status_code == 200
    assert "already exists" in " ".join(response.context["adminform"].form.errors["email"])


def test_bad_hpii_is_a_field_error_and_nothing_is_written(staff_client, ben, staff):
    response = staff_client.post(
        change_url(ben), user_form_data(ben, provider_hpii_number=BAD_HPII, provider_qualifications="MBBS")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["provider_hpii_number"]
    assert "check digit" in errors["provider_hpii_number"][0]
    ben.refresh_from_db()
    assert not hasattr(ben, "provider_details")
    assert _staff_events(ben, staff) == []


def test_saving_provider_details_writes_the_same_event_as_the_api(staff_client, ben, staff):
    response = staff_client.post(
        change_url(ben),
        user_form_data(
            ben,
            provider_hpii_number=VALID_HPII,
            provider_date_of_birth="1975-12-25",
            provider_sex="M",
            provider_prescriber_type="M",
            provider_prescriber_number="1234567",
            provider_qualifications="MBBS",
        ),
    )
    assert response.status_code == 302
    ben = User.objects.select_related("provider_details").get(pk=ben.pk)
    assert ben.provider_details.hpii_number == VALID_HPII
    assert ben.provider_details.given_name == "Ben"  # filled from the user, as the API does
    [event] = _staff_events(ben, staff)
    assert event.action == "provider_details.updated"
    assert event.actor_name == staff.email
    assert event.changes["hpii_number"] == {"from": None, "to": VALID_HPII}
    assert ben.provider_details.history.latest().history_user_id == staff.pk


def test_unchanged_save_writes_nothing(staff_client, ben, staff):
    before = CognitoSync.objects.get(pk=ben.pk).desired_version
    response = staff_client.post(change_url(ben), user_form_data(ben))
    assert response.status_code == 302
    assert _staff_events(ben, staff) == []
    assert CognitoSync.objects.get(pk=ben.pk).desired_version == before


def test_changing_the_email_is_audited_and_queued_for_cognito(staff_client, ben, staff):
    response = staff_client.post(change_url(ben), user_form_data(ben, email="ben.smith@practice.example"))
    assert response.status_code == 302
    [event] = _staff_events(ben, staff)
    assert event.action == "user.updated"
    assert event.changes == {"email": {"from": "ben@practice.example", "to": "ben.smith@practice.example"}}
    assert CognitoSync.objects.get(pk=ben.pk).desired["email"] == "ben.smith@practice.example"


def test_hpii_used_by_another_user_is_a_field_error(staff_client, make_user, ben):
    make_user("other@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS)
    response = staff_client.post(change_url(ben), user_form_data(ben, provider_hpii_number=VALID_HPII))
    assert response.status_code == 200
    assert "already has this HPI-I" in response.context["adminform"].form.errors["provider_hpii_number"][0]


# --- roles, disable, re-enable -----------------------------------------------------------------------


def test_set_roles_page(staff_client, ben, staff):
    url = f"/admin/accounts/user/{ben.pk}/roles/"
    page = staff_client.get(url)
    assert page.status_code == 200
    for role in ("admin", "provider", "receptionist", "rx_reader", "member"):
        assert f'value="{role}"' in page.text

    response = staff_client.post(url, {"roles": ["provider", "rx_reader"], "apply": "1"})
    assert response.status_code == 302
    ben.refresh_from_db()
    assert ben.roles == ["provider", "rx_reader"]
    [event] = _staff_events(ben, staff)
    assert event.action == "user.roles_changed"
    assert event.changes == {"access_roles": {"from": ["rx_reader"], "to": ["provider", "rx_reader"]}}
    assert CognitoSync.objects.get(pk=ben.pk).desired["groups"] == ["provider", "rx_reader"]


def test_set_roles_with_nothing_chosen_shows_the_services_rule(staff_client, ben):
    response = staff_client.post(f"/admin/accounts/user/{ben.pk}/roles/", {"apply": "1"})
    assert response.status_code == 200
    assert "non-empty list" in response.context["form"].errors["roles"][0]
    ben.refresh_from_db()
    assert ben.roles == ["rx_reader"]


def test_set_roles_action_on_several_users(staff_client, make_user, staff):
    users = [make_user(f"u{i}@practice.example") for i in range(2)]
    body = {"action": "set_roles_action", "_selected_action": [u.pk for u in users]}
    page = staff_client.post("/admin/accounts/user/", body)
    assert page.status_code == 200 and "Set roles" in page.text
    response = staff_client.post("/admin/accounts/user/", {**body, "roles": ["admin"], "apply": "1"})
    assert response.status_code == 302
    for user in users:
        user.refresh_from_db()
        assert user.roles == ["admin"]
        assert [e.action for e in _staff_events(user, staff)] == ["user.roles_changed"]


def test_disable_confirmation_says_what_will_happen_and_changes_nothing(staff_client, ben):
    page = staff_client.get(f"/admin/accounts/user/{ben.pk}/disable/")
    assert page.status_code == 200
    text = page.text
    assert "disabled" in text and "member" in text
    assert "disable the Cognito account and sign it out everywhere" in text
    ben.refresh_from_db()
    assert ben.is_active


def test_disabling_through_the_confirmation_page(staff_client, make_user, staff):
    user = make_user("p@practice.example", roles=["provider", "admin"], provider_details=PROVIDER_DETAILS)
    response = staff_client.post(f"/admin/accounts/user/{user.pk}/disable/", {"confirm": "1"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.status == "disabled" and user.disabled_at is not None
    assert user.roles == ["member"]
    assert user.provider_details.hpii_number == VALID_HPII  # kept
    [event] = _staff_events(user, staff)
    assert event.action == "user.disabled"
    assert event.changes["access_roles"] == {"from": ["admin", "provider"], "to": ["member"]}
    desired = CognitoSync.objects.get(pk=user.pk).desired
    assert desired["enabled"] is False and desired["groups"] == []

    # A second confirmation is a no-op, like the API's idempotent disable.
    staff_client.post(f"/admin/accounts/user/{user.pk}/disable/", {"confirm": "1"})
    assert len(_staff_events(user, staff)) == 1


def test_disable_action_on_several_users(staff_client, make_user, staff):
    users = [make_user(f"u{i}@practice.example", roles=["rx_reader"]) for i in range(2)]
    body = {"action": "disable_action", "_selected_action": [u.pk for u in users]}
    page = staff_client.post("/admin/accounts/user/", body)
    assert "sign it out everywhere" in page.text
    assert all(User.objects.get(pk=u.pk).is_active for u in users)
    staff_client.post("/admin/accounts/user/", {**body, "confirm": "1"})
    for user in users:
        user.refresh_from_db()
        assert user.is_disabled and user.roles == ["member"]
        assert [e.action for e in _staff_events(user, staff)] == ["user.disabled"]


def test_re_enabling_keeps_roles_member_and_is_audited(staff_client, ben, staff):
    staff_client.post(f"/admin/accounts/user/{ben.pk}/disable/", {"confirm": "1"})
    page = staff_client.get(f"/admin/accounts/user/{ben.pk}/enable/")
    assert "member" in page.text
    response = staff_client.post(f"/admin/accounts/user/{ben.pk}/enable/", {"confirm": "1"})
    assert response.status_code == 302
    ben.refresh_from_db()
    assert ben.is_active and ben.roles == ["member"]
    assert [e.action for e in _staff_events(ben, staff)] == ["user.disabled", "user.enabled"]
    assert CognitoSync.objects.get(pk=ben.pk).desired["enabled"] is True


def test_enable_action(staff_client, ben, staff):
    staff_client.post(f"/admin/accounts/user/{ben.pk}/disable/", {"confirm": "1"})
    body = {"action": "enable_action", "_selected_action": [ben.pk]}
    staff_client.post("/admin/accounts/user/", {**body, "confirm": "1"})
    ben.refresh_from_db()
    assert ben.is_active
    assert _staff_events(ben, staff)[-1].action == "user.enabled"


def test_a_disabled_user_is_read_only(staff_client, ben, staff):
    staff_client.post(f"/admin/accounts/user/{ben.pk}/disable/", {"confirm": "1"})
    page = staff_client.get(change_url(ben))
    assert 'name="email"' not in page.text
    assert "This user is disabled" in page.text
    assert 'name="_save"' not in page.text
    # A crafted POST still meets the service's refusal, and nothing changes.
    refused = staff_client.post(change_url(ben), user_form_data(ben, given_name="Changed"))
    assert refused.status_code == 200
    assert "disabled" in str(refused.context["adminform"].form.non_field_errors())
    assert staff_client.get(f"/admin/accounts/user/{ben.pk}/roles/").status_code == 302
    ben.refresh_from_db()
    assert ben.roles == ["member"]


def test_history_names_the_staff_member_and_cant_be_reverted(staff_client, ben, staff):
    staff_client.post(f"/admin/accounts/user/{ben.pk}/roles/", {"roles": ["admin"], "apply": "1"})
    history = staff_client.get(f"/admin/accounts/user/{ben.pk}/history/")
    assert history.status_code == 200
    assert staff.email in history.text
    record = ben.history.earliest()
    revert = staff_client.post(f"/admin/accounts/user/{ben.pk}/history/{record.history_id}/", user_form_data(ben))
    assert revert.status_code == 403


# --- permissions ------------------------------------------------------------------------------------------


def test_view_only_staff_see_read_only_pages(viewer_client, ben):
    page = viewer_client.get(change_url(ben))
    assert page.status_code == 200
    assert 'name="email"' not in page.text
    assert 'id="set-roles-link"' not in page.text and 'id="disable-link"' not in page.text
    assert "Set roles" not in page.text
    listing = viewer_client.get("/admin/accounts/user/")
    assert "disable_action" not in listing.text
    assert viewer_client.get(f"/admin/accounts/user/{ben.pk}/roles/").status_code == 403
    assert viewer_client.post(f"/admin/accounts/user/{ben.pk}/disable/", {"confirm": "1"}).status_code == 403
    assert viewer_client.post(change_url(ben), user_form_data(ben, given_name="X")).status_code == 403
    assert viewer_client.get("/admin/accounts/user/add/").status_code == 403
    ben.refresh_from_db()
    assert ben.is_active and ben.given_name == "Ben"


def test_practice_users_and_anonymous_visitors_cant_reach_the_admin(client, ben):
    assert client.get("/admin/accounts/user/").status_code == 302
    client.force_login(ben)
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

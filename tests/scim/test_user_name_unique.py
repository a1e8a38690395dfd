"""userName is unique within an organization across REST and SCIM: an identity provider finds users
by userName (a user SCIM never wrote answers to its e-mail), so no filter can ever return two."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.scim.conftest import ScimClient, assert_scim_error, patch_body, scim_user

BEN_UPN = "ben@my-practice.com"
REST_USER = {"given_name": "Benjamin", "family_name": "Other", "email": BEN_UPN}


def scim_ben(scim) -> str:
    """Ben, provisioned with a userName that is not his e-mail address (Entra ID's UPN often isn't)."""
    body = scim_user(BEN_UPN, emails=[{"value": "b.smith@mail.my-practice.com", "primary": True}])
    response = scim.post("Users", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_rest_user_cant_take_an_e_mail_held_as_a_scim_user_name(scim, api, users_url):
    ben = scim_ben(scim)
    response = api.post(users_url, REST_USER, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "user_already_exists"
    assert body["errors"][0]["field"] == "email"
    found = scim.get(f'Users?filter=userName eq "{BEN_UPN}"').json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == ben


def test_nor_change_its_e_mail_to_one(scim, api, users_url):
    scim_ben(scim)
    amy = api.post(users_url, {**REST_USER, "email": "amy@my-practice.com"}, format="json").json()["id"]
    response = api.patch(f"{users_url}/{amy}", {"email": BEN_UPN.upper()}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "user_already_exists"
    assert User.objects.get(pk=amy).email == "amy@my-practice.com"
    assert scim.get(f'Users?filter=userName eq "{BEN_UPN}"').json()["totalResults"] == 1


def test_nor_a_scim_user_its_e_mail(scim):
    scim_ben(scim)
    body = scim_user("amy-upn", emails=[{"value": BEN_UPN, "primary": True}])
    assert_scim_error(scim.post("Users", body), 409, "uniqueness")
    amy = scim.post("Users", scim_user("amy-upn", emails=[{"value": "amy@my-practice.com"}])).json()["id"]
    response = scim.patch(
        f"Users/{amy}", patch_body({"op": "replace", "path": 'emails[type eq "work"].value', "value": BEN_UPN})
    )
    assert_scim_error(response, 409, "uniqueness")


def test_the_user_s_own_user_name_and_e_mail_may_agree(scim, api, users_url):
    ben = scim_ben(scim)
    response = scim.patch(
        f"Users/{ben}", patch_body({"op": "replace", "value": {'emails[type eq "work"].value': BEN_UPN}})
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=ben).email == BEN_UPN


def test_a_user_name_freed_by_scim_delete_can_be_taken(scim, api, users_url):
    ben = scim_ben(scim)
    assert scim.delete(f"Users/{ben}").status_code == 204
    assert api.post(users_url, REST_USER, format="json").status_code == 201
    assert scim.get(f'Users?filter=userName eq "{BEN_UPN}"').json()["totalResults"] == 1


def test_another_organization_is_another_namespace(scim, charlie_scim, api_for, other_organization):
    scim_ben(scim)
    api = api_for(other_organization)
    response = api.post(
        f"/v1/organizations/{other_organization.pk}/users",
        {**REST_USER, "email": "ben.elsewhere@other.example"},
        format="json",
    )
    assert response.status_code == 201
    assert charlie_scim.post("Users", scim_user(BEN_UPN, emails=[{"value": "c@other.example"}])).status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks and parallel sessions: PostgreSQL")
def test_rest_and_scim_claiming_one_name_at_once_leave_one_holder(scim_token, issue_token, organization):
    barrier = threading.Barrier(2)
    statuses = {}
    access_token = issue_token(organization)

    def rest(name):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
            barrier.wait()
            response = client.post(
                f"/v1/organizations/{organization.pk}/users", {**REST_USER, "email": name}, format="json"
            )
            statuses["rest"] = response.status_code
        finally:
            connections.close_all()

    def scim(name):
        try:
            client = ScimClient(Client(), scim_token[1])
            barrier.wait()
            body = scim_user(name, emails=[{"value": f"mail.{name}", "primary": True}])
            statuses["scim"] = client.post("Users", body).status_code
        finally:
            connections.close_all()

    for round_ in range(3):
        name = f"round{round_}@my-practice.com"
        threads = [threading.Thread(target=rest, args=(name,)), threading.Thread(target=scim, args=(name,))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(statuses.values()) == [201, 409], statuses
        found = ScimClient(Client(), scim_token[1]).get(f'Users?filter=userName eq "{name}"').json()
        assert found["totalResults"] == 1

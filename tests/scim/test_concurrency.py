"""Identity providers retry and run in parallel: the same userName created at once is one user and a 409."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from accounts.models import User
from scim.models import ScimIdentity
from tests.scim.conftest import ScimClient, scim_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and parallel sessions: PostgreSQL")
def test_the_same_user_name_created_at_once_is_one_user(scim_token):
    barrier = threading.Barrier(4)
    statuses = []

    def create(index):
        try:
            client = ScimClient(Client(), scim_token[1])
            barrier.wait()
            payload = scim_user("bsmith", emails=[{"value": f"ben{index}@my-practice.com", "primary": True}])
            statuses.append(client.post("Users", payload).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201, 409, 409, 409], statuses
    assert ScimIdentity.objects.filter(user_name="bsmith").count() == 1
    assert User.objects.filter(organization=scim_token[0].organization).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and parallel sessions: PostgreSQL")
def test_parallel_group_additions_keep_every_role(scim_token):
    setup = ScimClient(Client(), scim_token[1])
    user_id = setup.post("Users", scim_user()).json()["id"]
    groups = ["admin", "receptionist", "rx_reader"]
    barrier = threading.Barrier(len(groups))
    statuses = []

    def add(group):
        try:
            client = ScimClient(Client(), scim_token[1])
            barrier.wait()
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": user_id}]}],
            }
            statuses.append(client.patch(f"Groups/{group}", body).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200, 200, 200]
    assert User.objects.get(pk=user_id).roles == groups

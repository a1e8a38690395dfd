"""Thinking like an attacker holding a SCIM token (or none): no 500, nothing leaks into the logs."""

import itertools
import logging

import pytest

from tests.scim.conftest import EXT, USER_SCHEMA, assert_scim_error, patch_body, scim_user

DOB = "1975-12-25"
HPII = "8003614900000009"


@pytest.mark.parametrize(
    "query",
    [
        'filter=userName eq "a\x00b"',
        'filter=externalId eq "a\x00b"',
        'filter=id eq "a\x00b"',
        "filter=" + "(" * 5000,
        "startIndex=99999999999999999999999&count=5",
        "attributes=" + ",".join(["x"] * 1000),
        "excludedAttributes=emails[",
    ],
)
def test_hostile_queries_are_4xx(scim, query):
    response = scim.get(f"Users?{query}")
    assert 200 <= response.status_code < 500, response.content


@pytest.mark.parametrize("path", ["Users/%00", "Users/' OR 1=1 --", "Groups/%00", "Groups/admin%00"])
def test_hostile_ids_are_404(scim, path):
    assert_scim_error(scim.get(path), 404)


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "userName", "value": "a\x00b"}],
        [{"op": "replace", "path": "id", "value": "00000000-0000-0000-0000-000000000000"}],
        [{"op": "replace", "path": "meta.created", "value": "yesterday"}],
        [{"op": "add", "path": "roles", "value": "admin"}],
        [{"op": "remove", "path": "userName"}],
        [{"op": "replace", "path": "emails[value eq ", "value": "x"}],
        [{"op": "replace", "value": ["not", "an", "object"]}],
        [{"op": "replace", "path": "active", "value": "maybe"}],
    ],
)
def test_hostile_patches_are_4xx_and_change_nothing(scim, operations):
    created = scim.post("Users", scim_user()).json()
    response = scim.patch(f"Users/{created['id']}", patch_body(*operations))
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.content
    after = scim.get(f"Users/{created['id']}").json()
    if response.status_code != 200:
        assert after == created


@pytest.mark.django_db(transaction=True)
def test_logs_hold_no_token_or_pii(scim, scim_token, caplog):
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        body = scim_user(
            schemas=[USER_SCHEMA, EXT],
            phoneNumbers=[{"value": "0432333333"}],
            roles=[{"value": "provider"}],
            **{
                EXT: {
                    "dateOfBirth": DOB,
                    "sex": "M",
                    "hpiiNumber": HPII,
                    "prescriberType": "M",
                    "prescriberNumber": "1234567",
                    "qualifications": "MD",
                }
            },
        )
        created = scim.post("Users", body)
        assert created.status_code == 201, created.content
        user_id = created.json()["id"]
        bad = scim.patch(
            f"Users/{user_id}", patch_body({"op": "replace", "path": f"{EXT}:hpiiNumber", "value": "8003614900000001"})
        )
        assert bad.status_code == 400
        assert scim.get('Users?filter=userName eq "nobody@x.com"').status_code == 200
        assert scim.get("Users/6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11").status_code == 404
        assert scim.post("Groups", {"displayName": "x"}).status_code == 501
        assert scim.delete(f"Users/{user_id}").status_code == 204
    finally:
        for lg, level in saved:
            lg.setLevel(level)
    assert len(caplog.records) > 5
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    forbidden = [scim_token[1], DOB, HPII, "8003614900000001", "0432333333", "+61432333333", "432333333"]
    leaked = [value for value in forbidden if value in text]
    assert not leaked, [line[:300] for line in text.splitlines() if any(value in line for value in leaked)][:5]


PATHS = [
    None,
    "",
    "userName",
    "name",
    "name.givenName",
    "emails",
    'emails[type eq "work"]',
    'emails[type eq "work"].value',
    "emails.value",
    "phoneNumbers",
    'phoneNumbers[type eq "mobile"].value',
    "roles",
    'roles[value eq "admin"]',
    "active",
    "title",
    "externalId",
    "groups",
    "meta",
    "id",
    "schemas",
    EXT,
    f"{EXT}:sex",
    f"{EXT}:dateOfBirth",
    "nickName",
    "urn:x:y",
    "members",
    "displayName",
]
VALUES = [
    None,
    "",
    "x",
    "False",
    True,
    1,
    [],
    [{}],
    [{"value": "admin"}],
    {"active": "False"},
    {"value": "x"},
    {"givenName": "Q", "familyName": "R"},
    {"emails": [{"value": "z@z.com"}]},
    {EXT: {"sex": "M"}},
    [{"value": "a@b.com", "primary": True}],
]
OPS = ["add", "replace", "remove"]


def pairwise_shapes():
    """Every path with every value, each pair under one of the operations in turn: every pair of
    (operation, path, value) is met, in a third of the full product's requests."""
    for (i, path), (j, value) in itertools.product(enumerate(PATHS), enumerate(VALUES)):
        yield OPS[(i + j) % len(OPS)], path, value


def test_pairwise_shapes_meet_every_pair():
    shapes = list(pairwise_shapes())
    pairs = [{(op, path) for op, path, _ in shapes}, {(op, repr(v)) for op, _, v in shapes},
             {(path, repr(v)) for _, path, v in shapes}]
    assert [len(found) for found in pairs] == [len(OPS) * len(PATHS), len(OPS) * len(VALUES), len(PATHS) * len(VALUES)]


@pytest.mark.slow
def test_every_patch_shape_is_answered_without_a_500(scim):
    """Operations, paths and values, pairwise, on a user and on a group: any answer but a 5xx (501 is
    the groups' rule)."""
    created = scim.post("Users", scim_user()).json()
    bad = []
    for op, path, value in pairwise_shapes():
        operation = {"op": op}
        if path is not None:
            operation["path"] = path
        if value is not None:
            operation["value"] = value
        for target in (f"Users/{created['id']}", "Groups/admin"):
            r = scim.patch(target, patch_body(operation))
            if r.status_code >= 500 and r.status_code != 501:
                bad.append((target, operation, r.status_code, r.content[:200]))
    assert not bad, bad[:10]

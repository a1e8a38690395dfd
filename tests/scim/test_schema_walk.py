"""The rule for the whole SCIM endpoint: every attribute and sub-attribute the server publishes in
/Schemas, through add, replace and remove, in the path form and the path-less form (and, for
multi-valued attributes with a type, the filtered path Entra ID sends), is either applied (a GET
afterwards shows what was asked) or refused with a SCIM error that leaves the resource as it was.
A 2xx that leaves the resource unchanged where the operation asked for a change fails the walk.

The schemas are read from the server, so an attribute added to them later is walked too."""

import itertools
import json

import pytest

from identifiers.checks import HPII_PREFIX, luhn_check_digit, provider_number_check_character
from tests.scim.conftest import EXT, USER_SCHEMA, patch_body, scim_user

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
OTHER_PROVIDER_NUMBER = "212346" + "1" + provider_number_check_character("212346", "1")

# The user every case starts from: every attribute holds a value, so a change is visible.
START_EXTENSION = {
    "dateOfBirth": "1980-03-15",
    "sex": "F",
    "prescriberType": "M",
    "prescriberNumber": "2345678",
    "qualifications": "MBBS",
    "providerNumber": "2123451T",
    "ahpraNumber": "MED0001234567",
    "hospitalProviderNumber": "H-1",
}

# A value different from the start for each attribute, valid by the service's rules (canonical, so
# the GET shows it as sent). An attribute without one here gets one from its type.
NEW_VALUES = {
    "userName": "walk.upn@my-practice.com",
    "name.familyName": "Walked",
    "name.givenName": "Walker",
    "displayName": "Someone Else",
    "title": "Dr",
    "emails.value": "walk.new@my-practice.com",
    "emails.type": "home",
    "phoneNumbers.value": "+61455666777",
    "phoneNumbers.type": "home",
    "roles.value": "admin",
    "groups.value": "admin",
    "groups.$ref": "http://testserver/scim/v2/Groups/admin",
    "dateOfBirth": "1975-01-02",
    "sex": "M",
    "prescriberType": "N",
    "prescriberNumber": "1234567",
    "qualifications": "FRACGP",
    "providerNumber": OTHER_PROVIDER_NUMBER,
    "ahpraNumber": "NMW0001234567",
    "hospitalProviderNumber": "H-2",
}


_serials = itertools.count(1)


def fresh_hpii() -> str:
    """A valid HPI-I no other user of the walk holds (they are unique in an organization)."""
    payload = f"{HPII_PREFIX}{next(_serials):09d}"
    return payload + str(luhn_check_digit(payload))


def with_fresh_hpii(operation: dict) -> dict:
    """The operation with each HPI-I it writes replaced by a fresh one."""
    text = json.dumps(operation)
    return json.loads(text.replace("HPII", fresh_hpii())) if "HPII" in text else operation


def walk(schema: dict, prefix: str):
    """(path, attribute definition, parent definition or None) for every attribute and sub-attribute."""
    for attribute in schema["attributes"]:
        path = prefix + attribute["name"]
        yield path, attribute, None
        for sub in attribute.get("subAttributes") or []:
            yield f"{path}.{sub['name']}", sub, attribute


def new_value(path: str, attribute: dict, parent: dict | None, *, key: str):
    if key == "hpiiNumber":
        return "HPII"  # made fresh per case (with_fresh_hpii)
    if key in NEW_VALUES:
        return NEW_VALUES[key]
    if attribute["type"] == "boolean":
        return False  # the start holds true (active, primary)
    if attribute["type"] == "complex":
        value = {
            sub["name"]: new_value(f"{path}.{sub['name']}", sub, attribute, key=f"{key}.{sub['name']}")
            for sub in attribute.get("subAttributes") or []
            if sub["name"] not in ("type", "primary", "display", "$ref")
        }
        if key in ("emails", "phoneNumbers"):
            value.update({"type": "work", "primary": True})
        return [value] if attribute.get("multiValued") else value
    return f"walked {key}"


def read(resource: dict, path: str):
    """The values at `path` in a SCIM resource as JSON (a list for multi-valued attributes)."""
    if path.startswith(EXT + ":"):
        return (resource.get(EXT) or {}).get(path[len(EXT) + 1 :])
    name, _, sub = path.partition(".")
    value = next((item for key, item in resource.items() if key.lower() == name.lower()), None)
    if not sub:
        return value
    if isinstance(value, list):
        return [entry.get(sub) for entry in value]
    return (value or {}).get(sub)


def same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def shows(got, wanted, *, op: str, multi_valued_sub: bool) -> bool:
    """Whether what a GET shows at a path is what an add or replace of `wanted` asked for."""
    if multi_valued_sub:
        return bool(got) and all(same(item, wanted) for item in got)
    if isinstance(wanted, list):
        entries = got or []
        found = all(any(all(same(e.get(k), v) for k, v in w.items()) for e in entries) for w in wanted)
        return found and (op == "add" or len(entries) == len(wanted))
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(same(got.get(k), v) for k, v in wanted.items())
    return same(got, wanted)


def removed(got) -> bool:
    if isinstance(got, list):
        return all(item in (None, [], {}) for item in got)
    return got in (None, "", [], {})


def cases(path: str, attribute: dict, parent: dict | None, value):
    """(label, operation) for add, replace and remove, path and path-less, plus the filtered forms."""
    paths = [path]
    if (
        parent is not None
        and parent.get("multiValued")
        and any(sub["name"] == "type" for sub in parent.get("subAttributes") or [])
    ):
        base, _, sub = path.rpartition(".")
        paths.append(f'{base}[type eq "work"].{sub}')
    for target in paths:
        for op in ("add", "replace", "remove"):
            with_value = {} if op == "remove" else {"value": value}
            yield f"{op} path={target}", {"op": op, "path": target, **with_value}
            yield f"{op} path-less {target}", {"op": op, "value": {target: None if op == "remove" else value}}


def check(client, url: str, label: str, operation: dict, *, multi_valued_sub: bool, read_path: str) -> str | None:
    """None when the case follows the rule, else what went wrong."""
    before = client.get(url).json()
    response = client.patch(url, patch_body(operation))
    after = client.get(url).json()
    if response.status_code >= 500 and response.status_code != 501:  # 501: SCIM's "not implemented" error
        return f"{label}: {response.status_code}"
    if response.status_code >= 300:
        body = response.json()
        if body.get("schemas") != [ERROR_SCHEMA] or not response["Content-Type"].startswith("application/scim+json"):
            return f"{label}: {response.status_code} without a SCIM error"
        if after != before:
            return f"{label}: refused ({body.get('detail')}) but the resource changed"
        return None
    got = read(after, read_path)
    wanted = operation.get("value")
    if "path" not in operation and isinstance(wanted, dict):
        wanted = next(iter(wanted.values()))  # the path-less form: {target: value}
    if operation["op"] == "remove" or wanted is None:
        ok = removed(got)
    else:
        ok = shows(got, wanted, op=operation["op"], multi_valued_sub=multi_valued_sub)
    if not ok:
        return f"{label}: {response.status_code} but GET shows {json.dumps(got)} (was {json.dumps(read(before, read_path))})"
    return None


@pytest.mark.slow
def test_every_user_attribute_is_applied_or_refused(scim):
    schemas = {doc["id"]: doc for doc in scim.get("Schemas").json()["Resources"]}
    paths = [*walk(schemas[USER_SCHEMA], ""), *walk(schemas[EXT], f"{EXT}:")]
    assert len(paths) >= 30
    failures, applied, refused = [], 0, 0
    for number, (path, attribute, parent) in enumerate(paths):
        key = path.removeprefix(f"{EXT}:")
        value = new_value(path, attribute, parent, key=key)
        multi_valued_sub = parent is not None and bool(parent.get("multiValued"))
        for index, (label, operation) in enumerate(cases(path, attribute, parent, value)):
            created = scim.post(
                "Users",
                scim_user(
                    f"walk{number}-{index}@my-practice.com",
                    schemas=[USER_SCHEMA, EXT],
                    title="Mr",
                    phoneNumbers=[{"value": "+61432333333", "type": "work", "primary": True}],
                    roles=[{"value": "receptionist"}],
                    externalId=f"entra-{number}-{index}",
                    **{EXT: {**START_EXTENSION, "hpiiNumber": fresh_hpii()}},
                ),
            )
            assert created.status_code == 201, created.content
            url = f"Users/{created.json()['id']}"
            operation = with_fresh_hpii(operation)
            read_path = path
            failure = check(scim, url, label, operation, multi_valued_sub=multi_valued_sub, read_path=read_path)
            if failure:
                failures.append(failure)
            elif scim.get(url).json() == created.json():
                refused += 1
            else:
                applied += 1
    assert failures == [], "\n".join(failures)
    # The walk meets both outcomes (a walk where everything is refused would pass vacuously).
    assert applied >= 80 and refused > 0, (applied, refused)


def test_every_group_attribute_is_applied_or_refused(scim):
    schema = next(doc for doc in scim.get("Schemas").json()["Resources"] if doc["id"] == GROUP_SCHEMA)
    failures = []
    for number, (path, attribute, parent) in enumerate(walk(schema, "")):
        members = [scim.post("Users", scim_user(f"g{number}-{i}@my-practice.com")).json()["id"] for i in range(2)]
        values = {
            "displayName": "renamed",
            "members": [{"value": members[1]}],
            "members.value": members[1],
            "members.$ref": f"http://testserver/scim/v2/Users/{members[1]}",
            "members.type": "Group",
            "members.display": "Someone Else",
        }
        for label, operation in cases(path, attribute, parent, values[path]):
            scim.put(
                "Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": [{"value": members[0]}]}
            )
            failure = check(
                scim,
                "Groups/admin",
                label,
                operation,
                multi_valued_sub=parent is not None,
                read_path=path,
            )
            if failure:
                failures.append(failure)
    assert failures == [], "\n".join(failures)

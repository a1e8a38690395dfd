"""Hostile input to every write endpoint: refused with a 4xx problem naming the field or the body,
or stored and returned verbatim; never a 500. Run it on PostgreSQL too: NUL characters and lone
surrogates are accepted by SQLite but refused by PostgreSQL, which is exactly the 500 to catch."""

import itertools

import orjson
import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.reliability.support import PROBLEM

pytestmark = pytest.mark.django_db

PROVIDER_BODY = {
    "date_of_birth": "1980-03-15",
    "sex": "F",
    "hpii_number": "8003614900000017",
    "prescriber_type": "M",
    "prescriber_number": "2345678",
    "qualifications": "MBBS",
}
CREATE_FIELDS = (
    "email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_roles",
    "provider_details", *PROVIDER_BODY, "provider_number", "ahpra_number", "hospital_provider_number",
)
UPDATE_FIELDS = tuple(f for f in CREATE_FIELDS if f != "access_roles")
NESTED_FIELDS = ("given_name", "family_name", "phone", *PROVIDER_BODY, "provider_number", "ahpra_number")

WRONG_TYPES = [0, 1.5, -(2**70), True, [], ["x"], {}, {"a": 1}]
OVERSIZED = ["A" * 10_000, "😀" * 300]
# Refused outright: these make logs, terminals and admin pages lie (Trojan Source), or can't be stored.
FORBIDDEN_CHARACTERS = ["a\x00b", "\x1b[31mred", "line\nbreak", "tab\tin", "\x7f", "\u202eevil", "a\u2066b"]
ODD_BUT_TEXT = [
    "👩\u200d⚕️",  # zero-width joiner: part of emoji sequences and several scripts
    "e\u0301",  # combining acute
    "Z\u0334\u0321\u031b\u0349a\u0335",
    "\ufeffBOM",
    "\uffff𝔘𝔫𝔦",
    "مرحبا",
    "Robert'); DROP TABLE accounts_user;--",
    "<img src=x onerror=alert(1)>",
    "%s%n{{7*7}}",
    " ",
]
# Every field gets the values every field must refuse; the free-text fields also get the odd
# text that may be stored (and then must come back verbatim). The machine is small: this keeps
# the request count in the hundreds, not thousands.
MUST_REFUSE = WRONG_TYPES + OVERSIZED[:1] + FORBIDDEN_CHARACTERS[:4]
CORPUS = [None, *MUST_REFUSE]
TEXT_CORPUS = OVERSIZED + FORBIDDEN_CHARACTERS + ODD_BUT_TEXT
TEXT_FIELDS = ("given_name", "family_name", "title", "partner_user_id", "qualifications", "hospital_provider_number")


def _cases(fields):
    for field in fields:
        for value in CORPUS + (TEXT_CORPUS if field in TEXT_FIELDS else []):
            yield field, value


# Raw bodies that are not a JSON object: 4xx naming the body.
_DEEP_LIST = b"[" * 10_000 + b"]" * 10_000
_DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
RAW_BODIES = [
    _DEEP_LIST,
    _DEEP_OBJECT,
    b"[" * 100_000,
    b'{"given_name": "\\ud800"}',  # a lone surrogate via a JSON escape
    b'{"given_name": "\\udfff\\ud800"}',
    b'{"given_name": "\xff\xfe"}',  # not UTF-8
    b'{"given_name": NaN}',
    b'{"given_name": Infinity}',
    b'{"given_name": "a"} trailing',
    b"{",
    b"null",
    b"true",
    b"123",
    b'"a string"',
    b"[]",
    b"[{}]",
    b"\x00",
]


def _assert_no_5xx_and_problem(response, context):
    assert response.status_code < 500, (context, response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith(PROBLEM), (context, response["Content-Type"])
        body = response.json()
        assert body["code"] and body["detail"], (context, body)
        return body
    return None


def _assert_names_field(body, field, context):
    """The problem points at the field: `field`, `field.<i>`, `provider_details.field` and the like."""
    fields = {e["field"] for e in body["errors"] if e["field"]}
    assert any(
        name == field or name.startswith(f"{field}.") or name.endswith(f".{field}") for name in fields
    ) or (body["code"] == "invalid_role" and field == "access_roles"), (context, body)


_counter = itertools.count()


def _unique_email():
    return f"hostile-{next(_counter)}@example.com"


def _expect_refusal(field, value) -> bool:
    """Values every field must refuse (None is fine where the field is nullable)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value in OVERSIZED or value in FORBIDDEN_CHARACTERS or (value == " " and field == "given_name")
    # Wrong JSON types: provider_details wants an object and access_roles a list, so {} and [] of
    # the right kind are legitimate (and an empty roles list is invalid_role anyway).
    return not ((field == "provider_details" and value == {}) or (field == "access_roles" and value == ["x"]))


def test_create_refuses_or_stores_every_hostile_value(api, users_url):
    for field, value in _cases(CREATE_FIELDS):
        body = {"given_name": "Ann", "family_name": "Lee", "email": _unique_email(), field: value}
        context = f"POST {field}={value!r:.60}"
        response = api.post(users_url, body, format="json")
        problem = _assert_no_5xx_and_problem(response, context)
        if _expect_refusal(field, value):
            assert problem is not None, context
        if problem is not None and problem["code"] != "malformed_json":
            _assert_names_field(problem, field, context)
        if problem is None and field in TEXT_FIELDS and isinstance(value, str):
            document = api.get(f"{users_url}/{response.json()['id']}").json()
            returned = document.get(field, (document["provider_details"] or {}).get(field))
            assert returned == value.strip() or (returned is None and not value.strip()), (context, returned)


def test_update_refuses_or_stores_every_hostile_value(api, users_url):
    user = api.post(users_url, {"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com"},
                      format="json").json()
    url = f"{users_url}/{user['id']}"
    cases = [(f, {f: v}) for f, v in _cases(UPDATE_FIELDS)]
    cases += [(f"provider_details.{f}", {"provider_details": {f: v}}) for f, v in _cases(NESTED_FIELDS)]
    # PUT and PATCH are one handler (both partial); alternate them rather than doubling the run.
    for method, (field, body) in zip(itertools.cycle(("put", "patch")), cases, strict=False):
        value = next(iter(body.values()))
        if isinstance(value, dict) and field.startswith("provider_details."):
            value = next(iter(value.values()))
        context = f"{method.upper()} {field}={value!r:.60}"
        response = getattr(api, method)(url, body, format="json")
        problem = _assert_no_5xx_and_problem(response, context)
        leaf = field.split(".")[-1]
        if _expect_refusal(field, value) and field != "provider_details":
            assert problem is not None, context
        if problem is not None:
            _assert_names_field(problem, leaf, context)


def test_roles_refuses_every_hostile_value(api, users_url):
    user = api.post(users_url, {"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com"},
                      format="json").json()
    url = f"{users_url}/{user['id']}/roles"
    for value in CORPUS + TEXT_CORPUS:
        for body in ({"access_roles": value}, {"access_roles": [value]}, {"access_roles": ["admin", value]}):
            response = api.put(url, body, format="json")
            problem = _assert_no_5xx_and_problem(response, body)
            assert problem is not None, body
            _assert_names_field(problem, "access_roles", body)


def test_raw_bodies_that_are_not_a_json_object_are_refused(api, users_url):
    user = api.post(users_url, {"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com"},
                      format="json").json()
    for url, method in ((users_url, "post"), (f"{users_url}/{user['id']}", "put"),
                        (f"{users_url}/{user['id']}", "patch"), (f"{users_url}/{user['id']}/roles", "put")):
        for raw in RAW_BODIES:
            context = f"{method.upper()} {url} {raw[:40]!r}"
            response = getattr(api, method)(url, raw, content_type="application/json")
            assert _assert_no_5xx_and_problem(response, context) is not None, context
            assert response.status_code == 400, context
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            response = getattr(api, method)(url, b"given_name=x", content_type=content_type)
            assert response.status_code == 415, (url, content_type, response.status_code)
            assert response["Content-Type"].startswith(PROBLEM)
    # The disable endpoint's body is optional ({"reason": ...}); one that is not an object is 400, never a 500.
    response = api.put(f"{users_url}/{user['id']}/disable", _DEEP_LIST, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith(PROBLEM)


def test_deep_nesting_within_a_valid_field(api, users_url):
    nested = {"x": 1}
    for _ in range(29):  # under the parser's depth limit (32): the serializer must refuse it, naming the field
        nested = {"a": nested}
    for field in ("given_name", "provider_details", "access_roles"):
        response = api.post(users_url, {"given_name": "A", "family_name": "B", "email": _unique_email(),
                                          field: nested}, format="json")
        problem = _assert_no_5xx_and_problem(response, field)
        assert problem is not None and response.status_code == 400
        _assert_names_field(problem, field, field)


def _nested_list(depth: int, inner='"x"') -> str:
    return "[" * depth + inner + "]" * depth


def _body_nested(depth: int) -> str:
    """A user body whose total nesting is `depth`: the object itself, then given_name's lists."""
    return '{"family_name": "B", "email": "deep@example.com", "given_name": ' + _nested_list(depth - 1) + "}"


def test_json_nested_more_than_32_deep_is_refused_by_the_parser(api, users_url):
    for body in (_body_nested(33), _body_nested(1000), _nested_list(33), '{"a":' * 33 + "1" + "}" * 33):
        response = api.post(users_url, body, content_type="application/json")
        problem = _assert_no_5xx_and_problem(response, body[:40])
        assert response.status_code == 400 and problem["code"] == "malformed_json", problem
        assert "32" in problem["detail"]


def test_json_nested_32_deep_reaches_the_serializer(api, users_url):
    response = api.post(users_url, _body_nested(32), content_type="application/json")
    problem = _assert_no_5xx_and_problem(response, "depth 32")
    assert response.status_code == 400 and problem["code"] == "validation_error", problem
    assert [e["field"] for e in problem["errors"]] == ["given_name"]


@pytest.mark.parametrize("value", [["Ann"], [[["Ann"]]], {"first": "Ann"}, [], {}])
def test_a_list_or_object_as_a_string_field_is_a_400_naming_it(api, users_url, value):
    body = {"given_name": value, "family_name": "Lee", "email": _unique_email()}
    response = api.post(users_url, body, format="json")
    problem = _assert_no_5xx_and_problem(response, value)
    assert response.status_code == 400, problem
    assert {"field": "given_name", "message": "Must be a string.", "code": "invalid"} in problem["errors"], problem


def test_the_strict_char_field_refuses_a_deep_list_without_recursing():
    from rest_framework.exceptions import ValidationError

    from core.api.fields import StrictCharField

    value = "x"
    for _ in range(5000):  # deeper than Python's recursion limit: str() of it would raise RecursionError
        value = [value]
    with pytest.raises(ValidationError) as refused:
        StrictCharField().run_validation(value)
    assert refused.value.detail == ["Must be a string."]
    assert StrictCharField().run_validation(" Ann ") == "Ann"


def test_the_depth_check_counts_like_json():
    from core.api.parsers import json_depth_exceeds

    assert not json_depth_exceeds("x")
    assert not json_depth_exceeds([])  # depth 1
    assert not json_depth_exceeds(orjson.loads(_nested_list(32)))
    assert json_depth_exceeds(orjson.loads(_nested_list(33)))
    assert not json_depth_exceeds({"a": [{"b": 1}] * 1000})  # wide is fine: depth 3


def test_token_endpoint_refuses_hostile_input():
    client = APIClient()
    bodies = [
        ("grant_type=client_credentials", "application/x-www-form-urlencoded", {"HTTP_AUTHORIZATION": "Basic !!!"}),
        ("grant_type=client_credentials", "application/x-www-form-urlencoded", {"HTTP_AUTHORIZATION": "Basic " + "A" * 5000}),
        ("grant_type=client_credentials", "application/x-www-form-urlencoded", {"HTTP_AUTHORIZATION": "Basic AHg6AHk="}),
        ("grant_type=%00", "application/x-www-form-urlencoded", {}),
        ("grant_type=client_credentials&client_id=%00&client_secret=%00", "application/x-www-form-urlencoded", {}),
        ("grant_type=client_credentials&client_id=' OR 1=1 --&client_secret=x", "application/x-www-form-urlencoded", {}),
        ("grant_type=client_credentials&client_id=%F0%9F%98%80&client_secret=%ED%A0%80", "application/x-www-form-urlencoded", {}),
        ('{"grant_type": "client_credentials"}', "application/json", {}),
        ("[" * 10_000, "application/json", {}),
    ]
    for body, content_type, headers in bodies:
        response = client.post("/v1/oauth/token", body, content_type=content_type, **headers)
        assert 400 <= response.status_code < 500, (body[:60], response.status_code, response.content[:200])


def test_query_strings_and_ids_are_never_a_500(api, users_url, organization):
    user = api.post(users_url, {"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com"},
                      format="json").json()
    hostile = ["%00", "a%00b", "%ED%A0%80", "' OR 1=1 --", "<script>", "%F0%9F%98%80", "A" * 5000, "%FF"]
    for value in hostile:
        for query in ("email", "search", "partner_user_id", "role", "status", "limit", "cursor"):
            response = api.get(f"{users_url}?{query}={value}")
            _assert_no_5xx_and_problem(response, (query, value))
        for query in ("user_id", "action", "since", "until", "cursor"):
            response = api.get(f"/v1/organizations/{organization.pk}/audit-events?{query}={value}")
            _assert_no_5xx_and_problem(response, (query, value))
        for path in (f"{users_url}/{value}", f"{users_url}/{value}/roles", f"/v1/organizations/{value}/users"):
            response = api.get(path)
            _assert_no_5xx_and_problem(response, path)
        response = api.get(f"{users_url}/{user['id']}/history?action={value}")
        _assert_no_5xx_and_problem(response, value)


VERBATIM = {
    "given_name": "Zoë 👩\u200d⚕️ O'Brien",
    "family_name": "<script>alert(1)</script>",
    "title": "Robert'); DROP TABLE accounts_user;--",
    "partner_user_id": "' OR '1'='1",
    "qualifications": "MBBS <b>FRACGP</b> & \"co\"",
    "hospital_provider_number": "e\u0301\u0301 مرحبا",
}


def test_stored_values_come_back_verbatim_and_escaped_in_the_admin(api, users_url, client):
    body = {"email": "obrien@example.com", **VERBATIM}
    response = api.post(users_url, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    fetched = api.get(f"{users_url}/{created['id']}").json()
    for document in (created, fetched):
        for field in ("given_name", "family_name", "title", "partner_user_id"):
            assert document[field] == VERBATIM[field]
        assert document["provider_details"]["qualifications"] == VERBATIM["qualifications"]
        assert document["provider_details"]["hospital_provider_number"] == VERBATIM["hospital_provider_number"]
    assert User.objects.get(pk=created["id"]).family_name == VERBATIM["family_name"]

    staff = User.objects.create_superuser(email="staff@platform.example", password="correct horse battery", given_name="S",
                                          family_name="T")
    client.force_login(staff)
    page = client.get(f"/admin/accounts/user/{created['id']}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Zoë 👩\u200d⚕️ O&#x27;Brien" in html
    listing = client.get("/admin/accounts/user/", {"q": "obrien"})
    assert listing.status_code == 200
    assert "<script>alert(1)</script>" not in listing.content.decode()

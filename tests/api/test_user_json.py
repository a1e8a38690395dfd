"""The users list renders in PostgreSQL (accounts/api/user_json.py); the detail, every write and the
list on SQLite render in Python (user_row_representation). Both must write the same document, key
order included, for every user the database can hold: not only the ones the services write."""

import datetime as dt
import json
import uuid

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.api import views
from accounts.api.serializers import USER_ROW_FIELDS, user_row_representation
from accounts.api.user_json import user_documents
from accounts.models import CognitoSync, ProviderDetails, User
from accounts.selectors import user_get

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the documents are built by PostgreSQL"),
]

# Identifier fields (phone, HPI-I, prescriber, provider and AHPRA numbers) normalise on every
# write, so those come from valid samples. The free-text fields take anything PostgreSQL text can
# hold: quotes, backslashes, control and bidi characters, emoji, zero-width joiners that some
# collations treat as empty. (The API refuses some of these; rows written by an import or by hand
# still have to render the same.)
PHONE = st.sampled_from(["", "+61412345678"])
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
MOMENT = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
) | st.datetimes(timezones=st.just(dt.UTC)).map(lambda moment: moment.replace(microsecond=0))
ROLES = st.lists(st.sampled_from(["member", "provider", "admin", "rx_reader", "receptionist", "Z", "é"]), max_size=5)
# member beside other roles, and member repeated: the two spellings normalize_roles folds.
ROLES = ROLES | st.lists(st.sampled_from(["member", "admin"]), min_size=2, max_size=4)

DETAILS = st.fixed_dictionaries(
    {
        "given_name": TEXT,
        "family_name": TEXT,
        "date_of_birth": st.none() | st.dates(),
        "sex": st.sampled_from(["", "F", "M", "X"]),
        "phone": PHONE,
        "hpii_number": st.none() | st.sampled_from(["", "8003614900000009"]),
        "prescriber_type": st.sampled_from(["", "M", "T", "D"]),
        "prescriber_number": st.sampled_from(["", "1234567"]),
        "qualifications": TEXT,
        "provider_number": st.sampled_from(["", "2123451T"]),
        "ahpra_number": st.sampled_from(["", "MED0001234567"]),
        "hospital_provider_number": TEXT,
    }
)

USERS = st.fixed_dictionaries(
    {
        "given_name": TEXT,
        "family_name": TEXT,
        "title": TEXT,
        "phone": PHONE,
        "partner_user_id": st.none() | TEXT,
        "roles": ROLES,
        "disabled_at": st.none() | MOMENT,  # and disabled with it (a check constraint)
        "access_expires_at": st.none() | MOMENT,
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "details": st.none() | DETAILS,
        "cognito": st.none() | st.sampled_from(["pending", "synced", "failed"]),
    }
)


def _store(organization, fields: dict) -> User:
    """Write the row as given: bulk_create runs no save() normalisation and no signals."""
    fields = dict(fields)
    details, cognito = fields.pop("details"), fields.pop("cognito")
    fields.setdefault("status", "active" if fields["disabled_at"] is None else "disabled")
    user_id = uuid.uuid4()
    (user,) = User.objects.bulk_create(
        [User(id=user_id, organization=organization, email=f"{user_id}@example.com", **fields)]
    )
    # auto_now(_add) overrides the timestamps on insert; put the generated ones back.
    User.objects.filter(pk=user_id).update(created_at=fields["created_at"], updated_at=fields["updated_at"])
    if details is not None:
        ProviderDetails.objects.bulk_create([ProviderDetails(user=user, organization=organization, **details)])
    if cognito is not None:
        CognitoSync.objects.bulk_create([CognitoSync(user=user, desired={}, state=cognito)])
    return user


def _python_document(organization, user) -> dict:
    return user_row_representation(user_get(organization_id=organization.pk, user_id=user.pk, fields=USER_ROW_FIELDS))


def _database_document(organization, user) -> dict:
    (text,) = user_documents(organization_id=organization.pk).filter(pk=user.pk).values_list("document", flat=True)
    return json.loads(text)


def _keys(document) -> list:
    """Every key path in order, so key order counts too."""
    paths = []
    for key, value in document.items():
        paths.append(key)
        if isinstance(value, dict):
            paths.extend(f"{key}.{inner}" for inner in _keys(value))
    return paths


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=USERS)
def test_postgresql_writes_the_document_python_writes(organization, fields):
    with transaction.atomic():  # each example in its own savepoint, rolled back
        user = _store(organization, fields)
        expected = _python_document(organization, user)
        document = _database_document(organization, user)
        transaction.set_rollback(True)

    assert document == expected
    assert _keys(document) == _keys(expected)


def test_timestamps_keep_python_isoformat_with_and_without_a_fraction(organization):
    whole = dt.datetime(2026, 11, 25, 12, 50, 16, tzinfo=dt.UTC)
    user = _store(
        organization,
        {
            "given_name": "A", "family_name": "B", "title": "", "phone": "", "partner_user_id": None,
            "roles": ["provider", "member", "provider"], "status": "disabled",
            "disabled_at": whole.replace(microsecond=120000), "created_at": whole, "updated_at": whole,
            "details": None, "cognito": None,
        },
    )

    document = _database_document(organization, user)

    assert document["created_at"] == "2026-11-25T12:50:16+00:00"
    assert document["disabled_at"] == "2026-11-25T12:50:16.120000+00:00"
    assert document["access_roles"] == ["provider"]  # member only alone (roles.normalize_roles)
    assert document["cognito"] == {"status": "pending"}
    assert document["can_prescribe"] is False


def test_the_list_renders_the_same_page_either_way(api, users_url, organization, monkeypatch):
    for index in range(3):
        _store(
            organization,
            {
                "given_name": f"G{index}", "family_name": "F", "title": "Dr", "phone": "", "partner_user_id": None,
                "roles": ["provider"], "status": "active", "disabled_at": None,
                "created_at": dt.datetime(2026, 1, 1, 0, 0, index, 1000 * index, tzinfo=dt.UTC),
                "updated_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                "details": {
                    "given_name": "G", "family_name": "F", "date_of_birth": dt.date(1970, 1, 1), "sex": "F",
                    "phone": "", "hpii_number": None, "prescriber_type": "T", "prescriber_number": "",
                    "qualifications": "MBBS", "provider_number": "", "ahpra_number": "",
                    "hospital_provider_number": "",
                } if index else None,
                "cognito": "synced",
            },
        )
    in_database = api.get(f"{users_url}?limit=2")

    monkeypatch.setattr(views, "renders_users", lambda alias: False)
    in_python = api.get(f"{users_url}?limit=2")

    assert in_database.status_code == in_python.status_code == 200
    assert in_database.json() == in_python.json()
    assert len(in_database.json()["results"]) == 2
    assert in_database.json()["next"]


COMPLETE_DETAILS = {
    "given_name": "Sarah", "family_name": "Johnson", "date_of_birth": dt.date(1980, 3, 15), "sex": "F",
    "phone": "", "hpii_number": "8003614900000009", "prescriber_type": "M", "prescriber_number": "1234567",
    "qualifications": "MBBS", "provider_number": "", "ahpra_number": "", "hospital_provider_number": "",
}


@pytest.mark.parametrize(
    ("changes", "can_prescribe"),
    [
        ({}, True),
        ({"prescriber_type": "T", "prescriber_number": ""}, True),  # T needs no prescriber number
        ({"prescriber_number": ""}, False),
        *(({field: None if field in ("date_of_birth", "hpii_number") else ""}, False)
          for field in ("given_name", "family_name", "date_of_birth", "sex", "hpii_number", "prescriber_type",
                        "qualifications")),
        ({"given_name": " "}, True),  # present, if odd: the rule is "not empty"
    ],
)
def test_can_prescribe_follows_the_one_rule_in_both_renderings(organization, changes, can_prescribe):
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    user = _store(
        organization,
        {
            "given_name": "Sarah", "family_name": "Johnson", "title": "", "phone": "", "partner_user_id": None,
            "roles": ["provider"], "disabled_at": None, "created_at": moment, "updated_at": moment,
            "details": {**COMPLETE_DETAILS, **changes}, "cognito": "synced",
        },
    )

    assert _python_document(organization, user)["can_prescribe"] is can_prescribe
    assert _database_document(organization, user)["can_prescribe"] is can_prescribe

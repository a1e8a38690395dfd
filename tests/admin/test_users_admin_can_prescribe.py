"""The users' admin says why a provider can't prescribe: what is missing from their details, in the
list and on the change page."""

import re

import pytest

from accounts.models import provider_details_missing
from tests.admin.conftest import PROVIDER_DETAILS, change_url

pytestmark = pytest.mark.django_db


def _upgrade(user):
    from accounts.services import user_roles_set
    from audit.context import Actor

    return user_roles_set(user=user, actor=Actor.system("test setup"), roles=[*user.roles, "provider"])


def _row(page: str, email: str) -> str:
    """The list's table row of one user."""
    [row] = [row for row in re.findall(r"<tr.*?</tr>", page, flags=re.S) if email in row]
    return row


@pytest.fixture
def users(make_user):
    return {
        "complete": make_user("full@practice.example", roles=["provider"], provider_details=PROVIDER_DETAILS),
        "partial": _upgrade(make_user("half@practice.example", roles=["rx_reader"],
                                      provider_details={"qualifications": "MBBS", "sex": "F"})),
        "none": _upgrade(make_user("none@practice.example", roles=["rx_reader"])),
        "reader": make_user("reader@practice.example", roles=["rx_reader"]),
    }


def test_the_list_says_what_a_provider_lacks_to_prescribe(staff_client, users):
    page = staff_client.get("/admin/accounts/user/").text

    partial = _row(page, "half@practice.example")
    assert "missing: date of birth, HPI-I, prescriber type, prescriber number" in partial
    assert 'title="Can&#x27;t prescribe: provider details lack date of birth, HPI-I, prescriber type, prescriber number."' in partial
    assert "icon-no.svg" in partial

    assert "no provider details" in _row(page, "none@practice.example")

    complete = _row(page, "full@practice.example")
    assert "icon-yes.svg" in complete and "missing" not in complete

    reader = _row(page, "reader@practice.example")  # not a provider: nothing is missing for them
    assert "icon-no.svg" in reader and "missing" not in reader and "no provider role" in reader


def test_the_change_page_says_what_is_missing(staff_client, users):
    page = staff_client.get(change_url(users["partial"])).text

    assert "Needed to prescribe, still missing: date of birth, HPI-I, prescriber type, prescriber number." in page
    assert "missing: date of birth, HPI-I, prescriber type, prescriber number" in page

    complete = staff_client.get(change_url(users["complete"])).text
    assert "still missing" not in complete

    # No details yet: saving them copies the user's name, so the name is not asked for.
    none = staff_client.get(change_url(users["none"])).text
    assert (
        "Needed to prescribe, still missing: date of birth, sex, HPI-I, prescriber type, qualifications, "
        "prescriber number." in none
    )


def test_a_prescriber_of_type_t_needs_no_prescriber_number():
    details = {**PROVIDER_DETAILS, "given_name": "A", "family_name": "B", "prescriber_type": "T",
               "prescriber_number": ""}
    assert provider_details_missing(details.get) == []
    assert provider_details_missing({**details, "prescriber_type": "M"}.get) == ["prescriber_number"]
    assert provider_details_missing({}.get)[-1] == "prescriber_number"

"""Each state of the register, asked through the real client over mutual TLS."""

import logging
from datetime import date

import pytest

from hi_service import fixtures
from hi_service.client import SearchResult, configured, get_client, hpii_status_kind, reset_client
from tests.hi_service.helpers import USER_ID, ask, search_for


@pytest.mark.parametrize(
    ("key", "status", "kind"),
    [("active", "Active", "active"), ("deactivated", "Deactivated", "inactive"), ("retired", "Retired", "inactive")],
)
def test_a_known_hpii_with_its_details_is_found_with_the_registers_status(hi_service, key, status, kind):
    practitioner = fixtures.PRACTITIONERS[key]
    result = ask(search_for(key, given_names=practitioner.given_names, date_of_birth=practitioner.date_of_birth,
                            sex=practitioner.sex))
    assert result.outcome == "found", result.reason
    assert (result.hpii, result.hpii_status, result.hpii_status_kind) == (practitioner.hpii, status, kind)
    assert result.registration_id == practitioner.registration_id
    assert (result.family_name, result.given_names) == (practitioner.family_name, practitioner.given_names)
    assert (result.date_of_birth, result.sex) == (practitioner.date_of_birth, practitioner.sex)
    assert result.message_id and result.message_id.startswith("urn:uuid:")
    assert result.duration_ms >= 0


def test_the_headers_reach_the_register(hi_service):
    ask(search_for("active"))
    (record,) = hi_service.received
    assert record["hpio"] == fixtures.FIXTURE_HPIO
    assert record["user_id"] == USER_ID
    assert record["hpii"] == fixtures.PRACTITIONERS["active"].hpii


def test_an_ahpra_number_and_family_name_find_the_hpii(hi_service):
    practitioner = fixtures.PRACTITIONERS["by_ahpra"]
    result = ask(search_for("by_ahpra", by="ahpra"))
    assert result.outcome == "found", result.reason
    assert result.hpii == practitioner.hpii
    assert result.hpii_status_kind == "active"
    assert hi_service.received[-1]["hpii"] is None
    assert hi_service.received[-1]["registration_id"] == practitioner.registration_id


@pytest.mark.parametrize(
    "changes",
    [{"family_name": "Someone-Else"}, {"given_names": ("Zed",)}, {"date_of_birth": date(1999, 9, 9)}, {"sex": "M"}],
)
def test_a_known_hpii_with_other_details_is_a_mismatch(hi_service, changes):
    result = ask(search_for("mismatch", **changes))
    assert result.outcome == "mismatch", result.reason
    assert result.hpii is None
    assert [m.code for m in result.service_messages] == [fixtures.MISMATCH_CODE]


def test_a_known_ahpra_number_with_another_family_name_is_a_mismatch(hi_service):
    assert ask(search_for("by_ahpra", by="ahpra", family_name="Wrong")).outcome == "mismatch"


@pytest.mark.parametrize("key", ["fault", "slow", "garbage", "retired"])
def test_any_fixture_searched_with_other_details_is_a_mismatch_whatever_its_behaviour(hi_service, key):
    result = ask(search_for(key, family_name="Someone-Else"), timeout=1.0)
    assert result.outcome == "mismatch", result.reason


def test_the_mismatch_codes_come_from_the_settings(hi_service, settings):
    settings.HI_MISMATCH_CODES = ["SOME-OTHER-CODE"]
    reset_client()
    assert ask(search_for("mismatch", family_name="Someone-Else")).outcome == "not_found"


@pytest.mark.parametrize("by", ["hpii", "ahpra"])
def test_an_identifier_the_register_does_not_hold_is_not_found(hi_service, by):
    result = ask(search_for("not_found", by=by))
    assert result.outcome == "not_found", result.reason
    assert result.hpii is None
    assert [m.code for m in result.service_messages] == [fixtures.NOT_FOUND_CODE]


def test_a_service_fault_is_a_fault_with_its_service_messages(hi_service):
    result = ask(search_for("fault"))
    assert result.outcome == "fault"
    assert [(m.code, m.severity) for m in result.service_messages] == [(fixtures.FAULT_CODE, "Fatal")]
    assert fixtures.FAULT_CODE in result.reason


def test_the_slow_practitioner_answers_when_the_caller_waits(hi_service):
    hi_service.slow_seconds = 0.3
    result = ask(search_for("slow"))
    assert result.outcome == "found", result.reason
    assert result.duration_ms >= 300


def test_no_identifier_value_reaches_the_logs(hi_service, caplog):
    caplog.set_level(logging.DEBUG, logger="hi_service")
    for key in ("active", "mismatch", "not_found", "fault", "other_hpii"):
        ask(search_for(key))
    text = caplog.text
    assert "outcome=found" in text
    for practitioner in fixtures.PRACTITIONERS.values():
        assert practitioner.hpii not in text and practitioner.family_name not in text
    assert fixtures.FIXTURE_HPIO not in text


def test_reasons_never_hold_identifier_values(hi_service):
    for key in fixtures.PRACTITIONERS:
        result = ask(search_for(key, family_name="Unrelated") if key == "mismatch" else search_for(key))
        values = {fixtures.PRACTITIONERS[key].hpii, fixtures.PRACTITIONERS["active"].hpii, fixtures.FIXTURE_HPIO}
        assert result.reason and not any(value in result.reason for value in values), (key, result.reason)


def test_hpii_status_kind_reads_the_registers_values():
    assert [hpii_status_kind(v) for v in ("Active", "ACTIVE", "Deactivated", "retired", "Suspended", None, "")] == [
        "active", "active", "inactive", "inactive", "unknown", "unknown", "unknown"]
    assert SearchResult("found", hpii_status="Retired").hpii_status_kind == "inactive"


def test_without_a_url_the_register_is_not_configured_and_every_search_is_an_error(settings):
    settings.HI_SERVICE_URL = ""
    reset_client()
    try:
        assert configured() is False
        result = get_client().search_provider_individual(
            hpio=fixtures.FIXTURE_HPIO, user_id=USER_ID, search=search_for("active"))
        assert result.outcome == "error" and "not configured" in result.reason
    finally:
        reset_client()

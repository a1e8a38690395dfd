"""The emulator's controls for the benchmarks: answering unknown HPI-Is as Active, counting the
searches per second, and a delay set over its own TLS."""

import json
import time

from hi_service import emulator as emulator_module
from hi_service import fixtures
from hi_service.client import ProviderSearch
from tests.hi_service.helpers import ask, search_for, tls_client

UNKNOWN_HPII = "8003610000099906"  # well formed, held by no fixture


def unknown_search() -> ProviderSearch:
    return ProviderSearch(hpii=UNKNOWN_HPII, registration_id=None, family_name="Bench", given_names=("Ada",))


def test_an_unknown_hpii_is_not_found_unless_unknown_active(hi_service):
    assert fixtures.by_hpii(UNKNOWN_HPII) is None
    assert ask(unknown_search()).outcome == "not_found"
    hi_service.unknown_active = True
    try:
        result = ask(unknown_search())
        retired = ask(search_for("retired"))
    finally:
        hi_service.unknown_active = False
    assert (result.outcome, result.hpii, result.hpii_status, result.family_name) == (
        "found", UNKNOWN_HPII, "Active", "Bench")
    assert retired.hpii_status == "Retired"  # the fixtures answer as before


def test_the_searches_are_counted_per_second_and_read_over_tls(hi_service):
    before = sum(hi_service.per_second().values())
    for _ in range(3):
        ask(search_for("active"))
    assert sum(hi_service.per_second().values()) == before + 3
    with tls_client(hi_service) as http:
        stats = http.get(f"https://127.0.0.1:{hi_service.port}{emulator_module.STATS_PATH}").json()
    assert sum(n for _second, n in stats["per_second"]) == before + 3
    assert all(second <= time.time() for second, _n in stats["per_second"])


def test_the_delay_is_set_over_tls_and_refuses_a_non_number(hi_service):
    url = f"https://127.0.0.1:{hi_service.port}{emulator_module.DELAY_PATH}"
    with tls_client(hi_service) as http:
        assert http.put(url, content=b"250").status_code == 204
        assert hi_service.delay_seconds == 0.25
        assert http.put(url, content=b"soon").status_code == 400
        assert hi_service.delay_seconds == 0.25
        stats = json.loads(http.get(f"https://127.0.0.1:{hi_service.port}{emulator_module.STATS_PATH}").content)
    assert stats["delay_seconds"] == 0.25

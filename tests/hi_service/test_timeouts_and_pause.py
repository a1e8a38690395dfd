"""Per-call timeouts, a hung register, and the pause after consecutive failures."""

import time

from hi_service.client import get_client, reset_client
from tests.hi_service.helpers import ask, search_for


def test_a_slow_answer_past_the_calls_timeout_is_an_error_quickly(hi_service):
    hi_service.slow_seconds = 3.0
    started = time.monotonic()
    result = ask(search_for("slow"), timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.outcome == "error"
    assert result.reason == "the HI Service did not answer in time"
    assert elapsed < 1.5
    assert 400 <= result.duration_ms < 1500


def test_the_configured_read_timeout_applies_without_a_per_call_timeout(hi_service, settings):
    hi_service.slow_seconds = 3.0
    settings.HI_READ_TIMEOUT = 0.5
    reset_client()
    started = time.monotonic()
    assert ask(search_for("slow")).reason == "the HI Service did not answer in time"
    assert time.monotonic() - started < 2.0


def test_a_hung_register_is_an_error_within_the_calls_timeout(hi_service_hung):
    started = time.monotonic()
    result = ask(search_for("active"), timeout=0.5)
    assert result.outcome == "error"
    assert result.reason == "the HI Service did not answer in time"
    assert time.monotonic() - started < 1.5


def test_after_consecutive_failures_the_client_pauses_without_calling(hi_service, settings):
    settings.HI_PAUSE_SECONDS = 30.0
    reset_client()
    hi_service.stop()
    reasons = [ask(search_for("active")).reason for _ in range(3)]
    assert all(reason.startswith("the HI Service could not be reached") for reason in reasons), reasons
    hi_service.start()
    started = time.monotonic()
    result = ask(search_for("active"))
    assert result.outcome == "error"
    assert result.reason.startswith("paused after failures")
    assert time.monotonic() - started < 0.1
    assert hi_service.received == []  # the register was up, and not asked
    assert 25 < get_client().paused_for() <= 30


def test_the_pause_ends_and_the_next_call_goes_through(hi_service, settings):
    settings.HI_PAUSE_SECONDS = 0.5
    reset_client()
    hi_service.stop()
    for _ in range(3):
        ask(search_for("active"))
    hi_service.start()
    assert ask(search_for("active")).reason.startswith("paused after failures")
    deadline = time.monotonic() + 5
    while get_client().paused_for() > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(search_for("active")).outcome == "found"


def test_an_answer_ends_the_run_of_failures(hi_service):
    hi_service.stop()
    ask(search_for("active")), ask(search_for("active"))
    hi_service.start()
    assert ask(search_for("active")).outcome == "found"
    hi_service.stop()
    ask(search_for("active")), ask(search_for("active"))
    assert get_client().paused_for() == 0.0


def test_faults_and_untrusted_replies_do_not_pause_the_client(hi_service):
    for key in ("fault", "garbage", "bad_signature", "fault", "oversized"):
        assert ask(search_for(key)).outcome in {"fault", "error"}
    assert get_client().paused_for() == 0.0
    assert ask(search_for("active")).outcome == "found"


def test_reset_client_forgets_the_pause(hi_service):
    hi_service.stop()
    for _ in range(3):
        ask(search_for("active"))
    assert get_client().paused_for() > 0
    reset_client()
    hi_service.start()
    assert ask(search_for("active")).outcome == "found"


def test_the_emulators_delay_applies_to_every_answer(hi_service):
    hi_service.delay_seconds = 0.2
    result = ask(search_for("active"))
    assert result.outcome == "found"
    assert result.duration_ms >= 200


def test_a_call_given_no_time_is_an_error_without_calling(hi_service):
    for timeout in (0, -1.0):
        result = ask(search_for("active"), timeout=timeout)
        assert result.outcome == "error" and result.reason == "no time was left for the call"
    assert hi_service.received == []

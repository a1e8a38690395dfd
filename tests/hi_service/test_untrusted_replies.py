"""Replies that can't be trusted are refused safely: outcome error with the reason, nothing read
from them, never an exception, and quickly (no entity expanded, no huge document built)."""

import time

import pytest

from hi_service.client import reset_client
from tests.hi_service.helpers import ask, search_for


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("bad_signature", "the reply can't be trusted: the signature does not verify"),
        ("unsigned_reply", "the reply can't be trusted: the message is not signed"),
        ("other_hpii", "the reply is about another HPI-I than asked"),
        ("oversized", "the reply is larger than allowed"),
        ("deep", "unusable reply"),
        ("entity_bomb", "unusable reply: the message declares a DTD"),
        ("garbage", "unusable reply: the message is not well-formed XML"),
        ("replayed", "the reply answers another request"),
    ],
)
def test_an_untrusted_reply_is_an_error_with_its_reason(hi_service, key, reason):
    started = time.monotonic()
    result = ask(search_for(key))
    assert result.outcome == "error"
    assert result.reason.startswith(reason), result.reason
    assert (result.hpii, result.hpii_status, result.family_name, result.service_messages) == (None, None, None, ())
    assert time.monotonic() - started < 3
    assert hi_service.received[-1]["answer"] == key  # the emulator did answer: the client refused it


def test_a_reply_signed_by_another_certificate_than_the_registers_is_refused(hi_service, settings):
    # Pinned to the platform's own signing certificate: the emulator's reply key does not match.
    settings.HI_SERVICE_REPLY_SIGNING_CERT = str(hi_service.files.signing_cert)
    reset_client()
    result = ask(search_for("active"))
    assert result.outcome == "error"
    assert result.reason.startswith("the reply can't be trusted")


def test_without_a_pinned_certificate_a_reply_signed_under_the_ca_bundle_is_trusted(hi_service, settings):
    settings.HI_SERVICE_REPLY_SIGNING_CERT = ""
    reset_client()
    assert ask(search_for("active")).outcome == "found"


def test_without_a_pinned_certificate_or_a_ca_bundle_nothing_is_trusted(hi_service, settings):
    settings.HI_SERVICE_REPLY_SIGNING_CERT = ""
    settings.HI_SERVICE_CA_BUNDLE = ""
    reset_client()
    result = ask(search_for("active"))
    assert result.outcome == "error" and "replies can't be verified" in result.reason
    assert hi_service.received == []


def test_a_wrapped_signature_is_refused(hi_service):
    # The signed answer (Retired) moved into a header, an unsigned Active in the body's place.
    result = ask(search_for("wrapped"))
    assert result.outcome == "error"
    assert result.reason == "the reply can't be trusted: the signed Body is not the one in its place"

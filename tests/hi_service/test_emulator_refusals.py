"""The emulator refuses what the real service refuses: unsigned, altered or badly headed
requests get a signed SOAP fault naming the problem; no client certificate, no connection."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hi_service import fixtures, soap
from tests.hi_service.helpers import post, read_reply, signed_request


def test_a_signed_request_is_answered(hi_service):
    response = post(hi_service, soap.serialize(signed_request(hi_service)))
    assert response.status_code == 200
    assert read_reply(hi_service, response) == ("answer", [])


def test_an_unsigned_request_is_refused_with_a_fault(hi_service):
    response = post(hi_service, soap.serialize(signed_request(hi_service, sign=False)))
    assert response.status_code == 500
    assert read_reply(hi_service, response) == ("fault", [fixtures.SIGNATURE_CODE])
    assert hi_service.received[-1]["answer"] == "refused"


@pytest.mark.parametrize(
    ("original", "altered"),
    [
        (b"Nguyen", b"Nguyem"),  # the body
        (b"8003620000000013", b"8003620000000021"),  # the hpio header
        (b"6f1c3c1e-4a57", b"7f1c3c1e-4a57"),  # the user header
        (b"User Management", b"User Managemenx"),  # the product header
    ],
)
def test_a_request_altered_after_signing_is_refused_with_a_fault(hi_service, original, altered):
    data = soap.serialize(signed_request(hi_service))
    assert original in data
    response = post(hi_service, data.replace(original, altered))
    assert response.status_code == 500
    assert read_reply(hi_service, response) == ("fault", [fixtures.SIGNATURE_CODE])


def test_a_request_signed_by_a_certificate_from_another_ca_is_refused(hi_service, tmp_path):
    from hi_service.emulator import HIServiceEmulator

    stranger = HIServiceEmulator(directory=tmp_path)
    stranger._make_certificates()
    envelope = signed_request(hi_service, sign=False)
    soap.sign_request(envelope, key_pem=stranger.files.signing_key.read_bytes(),
                      cert_pem=stranger.files.signing_cert.read_bytes())
    response = post(hi_service, soap.serialize(envelope))
    assert read_reply(hi_service, response) == ("fault", [fixtures.SIGNATURE_CODE])


def test_a_signature_that_leaves_a_header_out_is_refused(hi_service):
    envelope = signed_request(hi_service, sign=False)
    header = envelope.find(soap.q(soap.SOAP, "Header"))
    soap.sign(envelope, key_pem=hi_service.files.signing_key.read_bytes(),
              cert_pem=hi_service.files.signing_cert.read_bytes(),
              elements=[envelope.find(soap.q(soap.SOAP, "Body")), header.find(soap.q(soap.CCE, "product"))])
    response = post(hi_service, soap.serialize(envelope))
    assert read_reply(hi_service, response) == ("fault", [fixtures.SIGNATURE_CODE])


@pytest.mark.parametrize(
    "build",
    [
        {"now": datetime.now(UTC) - timedelta(hours=1)},  # an old (replayed) message
        {"hpio": "8003620000000014"},  # fails the HPI-O check digit
        {"user_id": ""},
        {"product": {"vendor_qualifier": "", "vendor_id": "", "name": "x", "version": "1", "platform": "p"}},
    ],
)
def test_a_signed_request_with_a_bad_header_is_refused(hi_service, build):
    response = post(hi_service, soap.serialize(signed_request(hi_service, **build)))
    assert response.status_code == 500
    assert read_reply(hi_service, response) == ("fault", [fixtures.HEADER_CODE])


def test_a_search_without_a_family_name_is_refused(hi_service):
    envelope = signed_request(hi_service, search=soap.Search("8003610000000105", None, ""))
    assert read_reply(hi_service, post(hi_service, soap.serialize(envelope))) == ("fault", [fixtures.REQUEST_CODE])


def test_an_entity_bomb_in_a_request_is_refused_without_expanding_it(hi_service):
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            f'<soap:Envelope xmlns:soap="{soap.SOAP}"><soap:Body>&b;</soap:Body></soap:Envelope>').encode()
    response = post(hi_service, bomb)
    assert read_reply(hi_service, response) == ("fault", [fixtures.REQUEST_CODE])


def test_a_connection_without_a_client_certificate_is_refused(hi_service):
    data = soap.serialize(signed_request(hi_service))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        post(hi_service, data, cert=False)
    assert hi_service.received == []


def test_an_expired_client_certificate_is_refused_by_the_tls_handshake(hi_service):
    cert, key = hi_service.issue_client_certificate(name="expired handshake", expired=True)
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        post(hi_service, soap.serialize(signed_request(hi_service)), cert=cert, key=key)
    assert hi_service.received == []

"""Helpers for the HI Service tests: a search for a fixture practitioner, and raw requests
sent to the emulator over its TLS without the client (to send what the client never would)."""

from __future__ import annotations

import ssl

import httpx

from hi_service import fixtures, soap
from hi_service.client import ProviderSearch, get_client
from hi_service.emulator import PRODUCT

USER_ID = "6f1c3c1e-4a57-4d0e-9a43-2f3f8f6f0a01"


def search_for(key: str, *, by: str = "hpii", **changes) -> ProviderSearch:
    practitioner = fixtures.PRACTITIONERS[key]
    fields = {
        "hpii": practitioner.hpii if by == "hpii" else None,
        "registration_id": practitioner.registration_id if by == "ahpra" else None,
        "family_name": practitioner.family_name,
    }
    fields.update(changes)
    return ProviderSearch(**fields)


def ask(search: ProviderSearch, *, timeout: float | None = None):
    return get_client().search_provider_individual(
        hpio=fixtures.FIXTURE_HPIO, user_id=USER_ID, search=search, timeout=timeout
    )


def tls_client(emulator, *, cert=None, key=None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(emulator.files.ca_cert))
    if cert is not False:
        context.load_cert_chain(cert or emulator.files.client_cert, key or emulator.files.client_key)
    return httpx.Client(verify=context, timeout=5.0, trust_env=False)


def signed_request(emulator, key: str = "active", *, sign: bool = True, **build):
    practitioner = fixtures.PRACTITIONERS[key]
    arguments = {
        "to": emulator.url,
        "search": soap.Search(practitioner.hpii, None, practitioner.family_name),
        "hpio": fixtures.FIXTURE_HPIO,
        "user_id": USER_ID,
        "user_qualifier": "http://ns.example.invalid/id/usermanagement/userid/1.0",
        "product": {"vendor_qualifier": "http://ns.example.invalid/vendor", "vendor_id": "PCIN-1",
                    "name": "User Management", "version": "1.0", "platform": "Linux"},
    }
    arguments.update(build)
    envelope, _ = soap.build_request(**arguments)
    if sign:
        soap.sign_request(envelope, key_pem=emulator.files.signing_key.read_bytes(),
                          cert_pem=emulator.files.signing_cert.read_bytes())
    return envelope


def post(emulator, data: bytes, **client):
    with tls_client(emulator, **client) as http:
        return http.post(emulator.url, content=data, headers={"Content-Type": soap.CONTENT_TYPE})


def read_reply(emulator, response):
    """(outcome, service-message codes) of a reply the emulator signed: 'fault' or 'answer'."""
    envelope = soap.parse(response.content)
    parts = soap.verified_parts(envelope, x509_cert=emulator.files.reply_signing_cert.read_bytes())
    fault = parts["Body"].find(soap.q(soap.SOAP, "Fault"))
    if fault is not None:
        detail = fault.find(f"{soap.q(soap.SOAP, 'Detail')}/{soap.q(soap.CCE, 'serviceMessages')}")
        return "fault", [m[0] for m in soap.read_service_messages(detail)]
    return "answer", []


__all__ = ["PRODUCT", "USER_ID", "ask", "post", "read_reply", "search_for", "signed_request", "tls_client"]

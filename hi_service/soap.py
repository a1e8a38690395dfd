"""The SOAP messages of the provider-individual search: building, signing, safe parsing, verifying.

Shared by the client and the emulator, so both speak the same shapes (TECH.SIS.HI.31 v5.0.0, as
the Agency's vendor library sends them: SOAP 1.2 with WS-Addressing 1.0). Signatures are made
and checked by signxml (exclusive canonicalisation, one reference per signed element, each
element named by an ``xml:id``); nothing here canonicalises or signs by hand.

Parsing never resolves entities, never touches the network, refuses a DOCTYPE (entity bombs),
a document over ``max_bytes`` or nested deeper than ``max_depth``.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod, XMLSigner, XMLVerifier
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
DS = "http://www.w3.org/2000/09/xmldsig#"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
CCE = "http://ns.electronichealth.net.au/hi/xsd/common/CommonCoreElements/3.0"
QID = "http://ns.electronichealth.net.au/hi/xsd/common/QualifiedIdentifier/3.0"
SVC = "http://ns.electronichealth.net.au/hi/svc/ProviderSearchForProviderIndividual/5.0.0"
PCE = "http://ns.electronichealth.net.au/hi/xsd/providercore/ProviderCoreElements/5.0.0"
PT = "http://ns.electronichealth.net.au/hi/xsd/providercore/ProviderType/5.0.0"
INC = "http://ns.electronichealth.net.au/hi/xsd/common/IndividualNameCore/3.0"
IN = "http://ns.electronichealth.net.au/hi/xsd/providercore/IndividualName/5.0.0"
PD = "http://ns.electronichealth.net.au/hi/xsd/providercore/PersonalDetails/5.0.0"
SI = "http://ns.electronichealth.net.au/hi/xsd/providermessages/SearchIndividual/5.0.0"

HPII_URI_PREFIX = "http://ns.electronichealth.net.au/id/hi/hpii/1.0/"
HPIO_QUALIFIER = "http://ns.electronichealth.net.au/id/hi/hpio/1.0"
_PORT = f"{SVC}/ProviderSearchForProviderIndividualPortType"
REQUEST_ACTION = f"{_PORT}/searchForProviderIndividualRequest"
RESPONSE_ACTION = f"{_PORT}/searchForProviderIndividualResponse"
FAULT_ACTION = f"{_PORT}/searchForProviderIndividual/Fault/standardError"
CONTENT_TYPE = f'application/soap+xml; charset=utf-8; action="{REQUEST_ACTION}"'

NSMAP = {"soap": SOAP, "wsa": WSA, "h": CCE, "qid": QID, "svc": SVC, "pce": PCE, "pt": PT, "inc": INC,
         "in": IN, "pd": PD, "si": SI}

# The request's headers that the signature must cover, besides the body.
SIGNED_REQUEST_HEADERS = ("product", "user", "hpio", "timestamp")
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 40


class UnsafeXML(ValueError):
    """Not parsed: too large, too deep, a DOCTYPE, or not well-formed XML."""


class BadSignature(ValueError):
    """No signature where one belongs, or one that does not verify or does not cover what it must."""


def q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _sub(parent, namespace: str, name: str, text: str | None = None):
    element = etree.SubElement(parent, q(namespace, name))
    if text is not None:
        element.text = text
    return element


# --- parsing ---------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False,
        remove_comments=True, remove_pis=True, collect_ids=False,
    )


def parse(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """The document's root element, or :class:`UnsafeXML` (never an entity expanded)."""
    if len(data) > max_bytes:
        raise UnsafeXML("the message is larger than allowed")
    # A DTD is never part of a SOAP message (SOAP 1.2 part 1, 5); refusing it refuses every
    # entity expansion before the parser sees it.
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise UnsafeXML("the message declares a DTD")
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError):
        raise UnsafeXML("the message is not well-formed XML") from None
    if root.getroottree().docinfo.doctype:
        raise UnsafeXML("the message declares a DTD")
    depth, stack = 0, [(root, 1)]
    while stack:
        element, level = stack.pop()
        depth = max(depth, level)
        if depth > max_depth:
            raise UnsafeXML("the message is nested deeper than allowed")
        stack.extend((child, level + 1) for child in element)
    return root


# --- signing and verifying -------------------------------------------------------------------


def _mark(element, prefix: str) -> str:
    identifier = f"{prefix}-{uuid.uuid4()}"
    element.set(XML_ID, identifier)
    return identifier


@functools.lru_cache(maxsize=8)
def _private_key(key_pem: bytes):
    # Loading checks the RSA key's consistency: about 45 ms of CPU, more than the rest of a call.
    return serialization.load_pem_private_key(key_pem, password=None)


def sign(envelope, *, key_pem: bytes, cert_pem: bytes, elements) -> None:
    """Sign ``elements`` of ``envelope`` (marking each with an ``xml:id``) into ``h:signature``."""
    references = [_mark(element, etree.QName(element).localname) for element in elements]
    signer = XMLSigner(
        method=SignatureConstructionMethod.detached,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signature = signer.sign(
        envelope, key=_private_key(key_pem), cert=cert_pem, reference_uri=references, id_attribute="id"
    )
    container = envelope.find(f"{q(SOAP, 'Header')}/{q(CCE, 'signature')}")
    if container is None:
        container = _sub(envelope.find(q(SOAP, "Header")), CCE, "signature")
    container.append(signature)


def verified_parts(envelope, *, x509_cert: bytes | None = None, ca_pem_file: str | None = None) -> dict[str, object]:
    """The signed elements of ``envelope`` by local name (``Body``, ``product``, ...), as signed.

    Only what the signature covers comes back, re-read from its canonical form, so a wrapped or
    moved element can't be mistaken for a signed one. :class:`BadSignature` when the
    ``h:signature`` header has no signature or it does not verify against ``x509_cert`` (pinned)
    or a certificate chaining to ``ca_pem_file``."""
    location = f"./{q(SOAP, 'Header')}/{q(CCE, 'signature')}/"
    if envelope.find(f"{location}{q(DS, 'Signature')}") is None:
        raise BadSignature("the message is not signed")
    config = SignatureConfiguration(location=location, expect_references=True)
    try:
        results = XMLVerifier().verify(
            envelope, x509_cert=x509_cert, ca_pem_file=ca_pem_file, id_attribute="id", expect_config=config,
        )
    except (InvalidSignature, InvalidInput, ValueError) as exc:
        # signxml's messages name algorithms and references, never the message's values.
        raise BadSignature(f"the signature does not verify ({type(exc).__name__})") from None
    parts: dict[str, object] = {}
    for result in results if isinstance(results, list) else [results]:
        element = result.signed_xml
        if element is None:
            continue
        name = etree.QName(element).localname
        if name in parts:
            raise BadSignature("the signature covers one element twice")
        parts[name] = element
    # Each signed element must be the one in its place (the body, or a direct child of the
    # header): a signed element moved aside for an unsigned one is signature wrapping.
    header = envelope.find(q(SOAP, "Header"))
    for name, element in parts.items():
        in_place = envelope.find(q(SOAP, "Body")) if name == "Body" else (
            header.find(etree.QName(element).text) if header is not None else None)
        if in_place is None or in_place.get(XML_ID) != element.get(XML_ID):
            raise BadSignature(f"the signed {name} is not the one in its place")
    return parts


# --- the request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """What is searched for (the client's ``ProviderSearch``): an HPI-I or an AHPRA registration
    number, with the family name.

    With ``hpii`` the register is asked whether that HPI-I belongs to this person; with
    ``registration_id`` only (the Agency's recommended search) it answers the HPI-I it holds for
    that registration. ``sex`` is one of F, I, M, N. ``given_names`` and ``date_of_birth`` narrow
    the match when given."""

    hpii: str | None
    registration_id: str | None
    family_name: str
    given_names: tuple[str, ...] = ()
    date_of_birth: date | None = None
    sex: str | None = None


def _product(header, product: dict):
    """The `product` header: who made the software that sends the message."""
    element = _sub(header, CCE, "product")
    _qualified(element, CCE, "vendor", product.get("vendor_qualifier", ""), product.get("vendor_id", ""))
    _sub(element, CCE, "productName", product.get("name", ""))
    _sub(element, CCE, "productVersion", product.get("version", ""))
    _sub(element, CCE, "platform", product.get("platform", ""))
    return element


def _qualified(parent, namespace: str, name: str, qualifier: str, identifier: str):
    element = _sub(parent, namespace, name)
    _sub(element, QID, "qualifier", qualifier)
    _sub(element, QID, "id", identifier)
    return element


def _xs_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_request(*, to: str, search: Search, hpio: str, user_id: str, user_qualifier: str,
                  product: dict[str, str], now: datetime | None = None):
    """An unsigned request envelope (sign it with :func:`sign_request`); returns (envelope, message id)."""
    now = now or datetime.now(UTC)
    message_id = f"urn:uuid:{uuid.uuid4()}"
    envelope = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP, "wsa": WSA, "h": CCE, "qid": QID})
    header = _sub(envelope, SOAP, "Header")
    _sub(header, WSA, "Action", REQUEST_ACTION)
    _sub(header, WSA, "MessageID", message_id)
    _sub(header, WSA, "To", to)
    _product(header, product)
    _qualified(header, CCE, "user", user_qualifier, user_id)
    _qualified(header, CCE, "hpio", HPIO_QUALIFIER, hpio)
    timestamp = _sub(header, CCE, "timestamp")
    _sub(timestamp, CCE, "created", _xs_datetime(now))
    _sub(timestamp, CCE, "expires", _xs_datetime(now + timedelta(minutes=5)))
    _sub(header, CCE, "signature")
    body = _sub(envelope, SOAP, "Body")
    request = etree.SubElement(body, q(SVC, "searchForProviderIndividual"), nsmap={
        "svc": SVC, "pce": PCE, "pt": PT, "inc": INC, "in": IN, "pd": PD})
    if search.hpii:
        _sub(request, PCE, "hpiiNumber", HPII_URI_PREFIX + search.hpii)
    if search.registration_id:
        _sub(request, PT, "registrationId", search.registration_id)
    _sub(request, INC, "familyName", search.family_name)
    for given in search.given_names:
        _sub(request, INC, "givenName", given)
    if search.date_of_birth:
        _sub(request, PD, "dateOfBirth", search.date_of_birth.isoformat())
    if search.sex:
        _sub(request, CCE, "sex", search.sex)
    return envelope, message_id


def sign_request(envelope, *, key_pem: bytes, cert_pem: bytes) -> None:
    header = envelope.find(q(SOAP, "Header"))
    elements = [header.find(q(CCE, name)) for name in SIGNED_REQUEST_HEADERS] + [envelope.find(q(SOAP, "Body"))]
    sign(envelope, key_pem=key_pem, cert_pem=cert_pem, elements=elements)


def text(element, namespace: str, name: str) -> str | None:
    if element is None:
        return None
    found = element.find(q(namespace, name))
    return found.text.strip() if found is not None and found.text is not None else None


def qualified_id(element) -> tuple[str | None, str | None]:
    return text(element, QID, "qualifier"), text(element, QID, "id")


def read_search(request) -> Search:
    """The search fields of a ``searchForProviderIndividual`` element (the emulator's side)."""
    hpii_uri = text(request, PCE, "hpiiNumber")
    hpii = hpii_uri[len(HPII_URI_PREFIX):] if hpii_uri and hpii_uri.startswith(HPII_URI_PREFIX) else hpii_uri
    born = text(request, PD, "dateOfBirth")
    return Search(
        hpii=hpii,
        registration_id=text(request, PT, "registrationId"),
        family_name=text(request, INC, "familyName") or "",
        given_names=tuple((g.text or "").strip() for g in request.findall(q(INC, "givenName"))),
        date_of_birth=date.fromisoformat(born) if born else None,
        sex=text(request, CCE, "sex"),
    )


# --- the reply -------------------------------------------------------------------------------


def _reply_envelope(*, action: str, relates_to: str | None, product: dict[str, str]):
    envelope = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP, "wsa": WSA, "h": CCE, "qid": QID})
    header = _sub(envelope, SOAP, "Header")
    _sub(header, WSA, "Action", action)
    message_id = _sub(header, WSA, "MessageID", f"urn:uuid:{uuid.uuid4()}")
    if relates_to:
        _sub(header, WSA, "RelatesTo", relates_to)
    _product(header, product)
    _sub(header, CCE, "signature")
    body = _sub(envelope, SOAP, "Body")
    return envelope, header, body, message_id


def _service_messages(parent, messages) -> None:
    container = etree.SubElement(parent, q(CCE, "serviceMessages"), nsmap={"h": CCE})
    order = ["Informational", "Warning", "Error", "Fatal"]
    highest = max((m[1] for m in messages), key=order.index, default="Informational")
    _sub(container, CCE, "highestSeverity", highest)
    for code, severity, reason, *details in messages:
        item = _sub(container, CCE, "serviceMessage")
        _sub(item, CCE, "code", code)
        _sub(item, CCE, "severity", severity)
        _sub(item, CCE, "reason", reason)
        if details and details[0]:
            _sub(item, CCE, "details", details[0])


def build_response(*, relates_to: str | None, product: dict[str, str], found: dict | None = None,
                   messages=()):
    """An unsigned reply: ``found`` (hpii, registration_id, status, family_name, given_names,
    date_of_birth, sex) or none, with ``messages`` as (code, severity, reason[, details])."""
    envelope, _header, body, _ = _reply_envelope(action=RESPONSE_ACTION, relates_to=relates_to, product=product)
    response = etree.SubElement(body, q(SVC, "searchForProviderIndividualResponse"), nsmap={"svc": SVC})
    result = etree.SubElement(response, q(SI, "searchForProviderIndividualResult"), nsmap={
        "si": SI, "pce": PCE, "pt": PT, "inc": INC, "pd": PD})
    if found:
        _sub(result, PCE, "hpiiNumber", HPII_URI_PREFIX + found["hpii"])
        if found.get("registration_id"):
            _sub(result, PT, "registrationId", found["registration_id"])
        _sub(result, PCE, "status", found["status"])
        _sub(result, INC, "familyName", found["family_name"])
        for given in found.get("given_names", ()):
            _sub(result, INC, "givenName", given)
        if found.get("date_of_birth"):
            _sub(result, PD, "dateOfBirth", found["date_of_birth"].isoformat())
        if found.get("sex"):
            _sub(result, CCE, "sex", found["sex"])
    if messages:
        _service_messages(result, messages)
    return envelope


def build_fault(*, relates_to: str | None, product: dict[str, str], messages, sender: bool = True):
    """An unsigned SOAP 1.2 fault whose detail is a ``serviceMessages``."""
    envelope, _header, body, _ = _reply_envelope(action=FAULT_ACTION, relates_to=relates_to, product=product)
    fault = _sub(body, SOAP, "Fault")
    code = _sub(fault, SOAP, "Code")
    _sub(code, SOAP, "Value", "soap:Sender" if sender else "soap:Receiver")
    reason = _sub(fault, SOAP, "Reason")
    reason_text = _sub(reason, SOAP, "Text", messages[0][2] if messages else "Request refused")
    reason_text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    detail = _sub(fault, SOAP, "Detail")
    _service_messages(detail, messages)
    return envelope


def sign_reply(envelope, *, key_pem: bytes, cert_pem: bytes) -> None:
    header = envelope.find(q(SOAP, "Header"))
    elements = [header.find(q(WSA, "Action")), header.find(q(WSA, "MessageID")), header.find(q(CCE, "product"))]
    relates = header.find(q(WSA, "RelatesTo"))
    if relates is not None:
        elements.append(relates)
    elements.append(envelope.find(q(SOAP, "Body")))
    sign(envelope, key_pem=key_pem, cert_pem=cert_pem, elements=elements)


def serialize(envelope) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def read_service_messages(container) -> list[tuple[str, str, str, str]]:
    if container is None:
        return []
    messages = []
    for item in container.findall(q(CCE, "serviceMessage")):
        details = item.find(q(CCE, "details"))
        detail_text = "".join(details.itertext()).strip() if details is not None else ""
        messages.append((text(item, CCE, "code") or "", text(item, CCE, "severity") or "",
                         text(item, CCE, "reason") or "", detail_text))
    return messages

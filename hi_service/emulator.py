"""A local stand-in for the HI Service's provider-individual search, for `make run` and the tests.

At start it makes a throwaway CA with ``cryptography`` and, from it, the server's TLS certificate
(127.0.0.1 and localhost), a TLS client pair and a signing pair for the platform, and the
emulator's own reply-signing pair; it writes the PEMs into its directory. It serves HTTPS that
requires a client certificate from that CA, checks each request's XML Signature (over the body
and every header) and its headers, refuses an unsigned or altered request with a SOAP fault whose
detail is a ``serviceMessages``, as the real service does, and answers from the fixture
practitioners of :mod:`hi_service.fixtures`, its replies signed.

Not for production: the CA's key sits in the process and its files; nothing here is a secret.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import shlex
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from hi_service import fixtures, soap
from identifiers.checks import IdentifierError, validate_hpio

logger = logging.getLogger(__name__)

PATH = "/ProviderSearchForProviderIndividual/5.0.0"
# The benchmarks' controls (same TLS and client certificate): GET the requests counted per second,
# PUT a delay for every answer. Not part of the HI Service's interface.
STATS_PATH = "/emulator/stats"
DELAY_PATH = "/emulator/delay"
# Seconds of per-second counts kept (a bench reads the last minutes).
_COUNTED_SECONDS = 3600
PRODUCT = {"vendor_qualifier": "http://ns.electronichealth.net.au/id/hi/vendor/1.0", "vendor_id": "HI-EMULATOR",
           "name": "HI Service emulator", "version": "5.0.0", "platform": "Python"}
# The real service accepts a request's timestamp within a few minutes of its own clock.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class EmulatorFiles:
    """PEM paths written at start."""

    ca_cert: Path
    client_cert: Path
    client_key: Path
    signing_cert: Path
    signing_key: Path
    reply_signing_cert: Path
    env_file: Path


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _usage(*, sign: bool = False, encipher: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign or not ca, content_commitment=False, key_encipherment=encipher,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False,
        decipher_only=False,
    )


class _CA:
    def __init__(self) -> None:
        self.key = _key()
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HI Service emulator throwaway CA")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, common_name: str, *, usage: ExtendedKeyUsageOID | None = None, san=None,
              expired: bool = False, valid_days: int = 365):
        key = _key()
        now = dt.datetime.now(dt.UTC)
        start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else (
            now - dt.timedelta(days=1), now + dt.timedelta(days=valid_days))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=True, encipher=usage == ExtendedKeyUsageOID.SERVER_AUTH), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class HIServiceEmulator:
    """The emulator on ``host``:``port`` (0: a free port), its files under ``directory``.

    ``slow_seconds``: how long the ``slow`` fixture takes to answer; ``delay_seconds``: how long
    every answer takes (0: at once; the benchmarks set a register's latency, or hang it).
    ``unknown_active``: a well-formed HPI-I that no fixture holds is found, Active, with the details
    searched for (the benchmarks' many providers) instead of not found. ``received`` lists, per
    request that reached the handler, a dict of what it asked and how it was answered (``hpio``,
    ``user_id``, ``hpii``, ``registration_id``, ``answer``): the tests read it. ``per_second()``
    counts the searches that reached the handler in each second (wall clock)."""

    def __init__(self, *, directory: Path | str, host: str = "127.0.0.1", port: int = 0,
                 slow_seconds: float = 5.0, delay_seconds: float = 0.0, unknown_active: bool = False) -> None:
        self.directory = Path(directory).resolve()
        self.delay_seconds = delay_seconds
        self.unknown_active = unknown_active
        self._counts: collections.Counter[int] = collections.Counter()
        self._counts_lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0  # the most searches answered at once (a bench or a test resets it)
        self.host = host
        self.port = port
        self.slow_seconds = slow_seconds
        self.received: list[dict] = []
        self._ca: _CA | None = None
        self.files: EmulatorFiles | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The endpoint, ``https://127.0.0.1:<port>/ProviderSearchForProviderIndividual/5.0.0``."""
        return f"https://{self.host}:{self.port}{PATH}"

    # -- certificates -------------------------------------------------------------------------

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path

    def _make_certificates(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca = ca = _CA()
        server_key, server_cert = ca.issue(
            "HI Service emulator", usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=[x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))])
        client_key, client_cert = ca.issue("Platform TLS client (CSP)", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        signing_key, signing_cert = ca.issue("Platform signing certificate")
        reply_key, reply_cert = ca.issue("HI Service emulator reply signing")
        self._reply_key_pem, self._reply_cert_pem = _key_pem(reply_key), _cert_pem(reply_cert)
        self._write("server.pem", _cert_pem(server_cert) + _cert_pem(ca.cert))
        self._write("server.key", _key_pem(server_key))
        self.files = EmulatorFiles(
            ca_cert=self._write("ca.pem", _cert_pem(ca.cert)),
            client_cert=self._write("client.pem", _cert_pem(client_cert)),
            client_key=self._write("client.key", _key_pem(client_key)),
            signing_cert=self._write("signing.pem", _cert_pem(signing_cert)),
            signing_key=self._write("signing.key", _key_pem(signing_key)),
            reply_signing_cert=self._write("reply-signing.pem", self._reply_cert_pem),
            env_file=self.directory / "hi.env",
        )

    def issue_client_certificate(self, *, name: str, expired: bool = False) -> tuple[Path, Path]:
        """Another client pair from the emulator's CA (``expired``: its validity ended yesterday)."""
        if self._ca is None:
            self._make_certificates()
        key, cert = self._ca.issue(name, usage=ExtendedKeyUsageOID.CLIENT_AUTH, expired=expired)
        slug = "".join(c if c.isalnum() else "-" for c in name)
        return self._write(f"{slug}.pem", _cert_pem(cert)), self._write(f"{slug}.key", _key_pem(key))

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> str:
        """Make the certificates (first start only), serve in a thread; return :attr:`url`."""
        with self._lock:
            if self._server is not None:
                return self.url
            if self.files is None:
                self._make_certificates()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.directory / "server.pem", self.directory / "server.key")
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.files.ca_cert)
            handler = type("Handler", (_Handler,), {"emulator": self})
            server = _TLSServer((self.host, self.port), handler, context)
            self.port = server.server_address[1]
            self._stopping.clear()
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="hi-emulator", daemon=True)
            self._thread.start()
            # Shell-quoted: `make run` loads it with `set -a; . var/hi/hi.env`.
            self.files.env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in self.settings().items()))
        return self.url

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._stopping.set()
            if server is not None:
                server.shutdown()
                server.server_close()

    def settings(self) -> dict[str, str]:
        """The ``HI_*`` settings (as environment strings) that point the client at this emulator."""
        files = self.files
        return {
            "HI_SERVICE_URL": self.url,
            "HI_SERVICE_CLIENT_CERT": str(files.client_cert),
            "HI_SERVICE_CLIENT_KEY": str(files.client_key),
            "HI_SERVICE_SIGNING_CERT": str(files.signing_cert),
            "HI_SERVICE_SIGNING_KEY": str(files.signing_key),
            "HI_SERVICE_CA_BUNDLE": str(files.ca_cert),
            "HI_SERVICE_REPLY_SIGNING_CERT": str(files.reply_signing_cert),
            "HI_PRODUCT_VENDOR_QUALIFIER": "http://ns.electronichealth.net.au/id/hi/vendor/1.0",
            "HI_PRODUCT_VENDOR_ID": "EMULATOR-PCIN",
            "HI_PRODUCT_NAME": "User Management",
            "HI_PRODUCT_VERSION": "1.0",
            "HI_PRODUCT_PLATFORM": "Linux",
            "HI_USER_QUALIFIER": "http://ns.example.invalid/id/usermanagement/userid/1.0",
        }

    def __enter__(self) -> HIServiceEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- counting -----------------------------------------------------------------------------

    def _count(self) -> None:
        second = int(time.time())
        with self._counts_lock:
            self._counts[second] += 1
            if len(self._counts) > _COUNTED_SECONDS:
                for old in sorted(self._counts)[: len(self._counts) - _COUNTED_SECONDS]:
                    del self._counts[old]

    def per_second(self) -> dict[int, int]:
        """{unix second: searches that reached the handler in it}, oldest first."""
        with self._counts_lock:
            return dict(sorted(self._counts.items()))

    # -- answering ----------------------------------------------------------------------------

    def _signed(self, envelope) -> bytes:
        soap.sign_reply(envelope, key_pem=self._reply_key_pem, cert_pem=self._reply_cert_pem)
        return soap.serialize(envelope)

    def _fault(self, relates_to: str | None, code: str, reason: str) -> bytes:
        envelope = soap.build_fault(relates_to=relates_to, product=PRODUCT, messages=[(code, "Fatal", reason)])
        return self._signed(envelope)

    def answer(self, data: bytes) -> tuple[int, bytes]:
        """(HTTP status, body) for one request body."""
        self._count()
        record: dict = {"answer": None}
        self.received.append(record)
        if len(self.received) > 1000:  # `make run` runs for days; the tests read the last few
            del self.received[:500]
        relates_to = None
        try:
            envelope = soap.parse(data)
            relates_to = soap.text(envelope.find(soap.q(soap.SOAP, "Header")), soap.WSA, "MessageID")
            try:
                parts = soap.verified_parts(envelope, ca_pem_file=str(self.files.ca_cert))
            except soap.BadSignature as exc:
                raise _Refused(fixtures.SIGNATURE_CODE, f"The message signature is invalid: {exc}.") from None
            missing = {"Body", *soap.SIGNED_REQUEST_HEADERS} - set(parts)
            if missing:
                raise _Refused(fixtures.SIGNATURE_CODE,
                               f"The signature does not cover {', '.join(sorted(missing))}.")
            self._check_headers(parts, record)
            request = parts["Body"].find(soap.q(soap.SVC, "searchForProviderIndividual"))
            if request is None:
                raise _Refused(fixtures.REQUEST_CODE, "The body is not a provider individual search.")
            search = soap.read_search(request)
        except soap.UnsafeXML as exc:
            record["answer"] = "refused"
            return 500, self._fault(None, fixtures.REQUEST_CODE, f"The message could not be read: {exc}.")
        except _Refused as refused:
            record["answer"] = "refused"
            record["refused_code"] = refused.code
            return 500, self._fault(relates_to, refused.code, refused.reason)
        except ValueError:
            record["answer"] = "refused"
            return 500, self._fault(relates_to, fixtures.REQUEST_CODE, "A field of the search is malformed.")
        record.update(hpii=search.hpii, registration_id=search.registration_id)
        with self._counts_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            self._wait_delay()
            return self._search(search, relates_to, record)
        finally:
            with self._counts_lock:
                self._in_flight -= 1

    def _wait_delay(self) -> None:
        """Wait out the delay, as it is meanwhile: a hung register that is set to answer again
        answers the searches it was holding."""
        started = time.monotonic()
        while not self._stopping.is_set():
            left = started + self.delay_seconds - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 0.05))

    def _check_headers(self, parts: dict, record: dict) -> None:
        product = parts["product"]
        vendor = product.find(soap.q(soap.CCE, "vendor"))
        if not all(soap.qualified_id(vendor)) or not all(
                soap.text(product, soap.CCE, name) for name in ("productName", "productVersion", "platform")):
            raise _Refused(fixtures.HEADER_CODE, "The product header is incomplete.")
        user_qualifier, user_id = soap.qualified_id(parts["user"])
        if not user_qualifier or not user_id:
            raise _Refused(fixtures.HEADER_CODE, "The user header is incomplete.")
        hpio_qualifier, hpio = soap.qualified_id(parts["hpio"])
        if hpio_qualifier != soap.HPIO_QUALIFIER:
            raise _Refused(fixtures.HEADER_CODE, "The hpio header's qualifier is not the HPI-O's.")
        try:
            validate_hpio(hpio)
        except IdentifierError:
            raise _Refused(fixtures.HEADER_CODE, "The hpio header is not a valid HPI-O.") from None
        record.update(hpio=hpio, user_id=user_id)
        timestamp = parts["timestamp"]
        try:
            created = dt.datetime.fromisoformat(soap.text(timestamp, soap.CCE, "created"))
            expires_text = soap.text(timestamp, soap.CCE, "expires")
            expires = dt.datetime.fromisoformat(expires_text) if expires_text else None
        except (TypeError, ValueError):
            raise _Refused(fixtures.HEADER_CODE, "The timestamp header is malformed.") from None
        now = dt.datetime.now(dt.UTC)
        if created.tzinfo is None or abs(now - created) > CLOCK_SKEW or (expires is not None and expires < now):
            raise _Refused(fixtures.HEADER_CODE, "The message has expired or its timestamp is out of range.")

    def _search(self, search: soap.Search, relates_to: str | None, record: dict) -> tuple[int, bytes]:
        if not search.family_name or not (search.hpii or search.registration_id):
            record["answer"] = "refused"
            return 500, self._fault(relates_to, fixtures.REQUEST_CODE,
                                    "A search needs an HPI-I or a registration number, and a family name.")
        practitioner = fixtures.by_hpii(search.hpii) if search.hpii else fixtures.by_registration_id(
            search.registration_id)
        if practitioner is None and search.hpii and self.unknown_active:
            record["answer"] = "answer"
            envelope = soap.build_response(relates_to=relates_to, product=PRODUCT, found={
                "hpii": search.hpii, "registration_id": search.registration_id, "status": "Active",
                "family_name": search.family_name, "given_names": tuple(search.given_names),
                "date_of_birth": search.date_of_birth, "sex": search.sex})
            return 200, self._signed(envelope)
        if practitioner is None or (search.hpii and search.registration_id
                                    and practitioner.registration_id != search.registration_id.upper()):
            record["answer"] = "not_found"
            envelope = soap.build_response(relates_to=relates_to, product=PRODUCT, messages=[
                (fixtures.NOT_FOUND_CODE, "Error", "No provider was found for the search details.")])
            return 200, self._signed(envelope)
        if not _details_match(practitioner, search):
            record["answer"] = "mismatch"
            envelope = soap.build_response(relates_to=relates_to, product=PRODUCT, messages=[
                (fixtures.MISMATCH_CODE, "Error", "The identifier is known but the details do not match.")])
            return 200, self._signed(envelope)
        behaviour = practitioner.behaviour
        record["answer"] = behaviour
        if behaviour == fixtures.FAULT:
            return 500, self._fault(relates_to, fixtures.FAULT_CODE, "The service is unable to process the request.")
        if behaviour in _ADVERSARIAL_BODIES:
            return 200, _ADVERSARIAL_BODIES[behaviour](self, practitioner, relates_to)
        if behaviour == fixtures.SLOW:
            self._stopping.wait(self.slow_seconds)
        answered = practitioner
        if behaviour == "replayed":
            relates_to = "urn:uuid:00000000-0000-4000-8000-000000000000"
        if behaviour == "other_hpii":
            answered = fixtures.PRACTITIONERS["active"]
        envelope = soap.build_response(relates_to=relates_to, product=PRODUCT, found=_found(answered))
        if behaviour == "wrapped":
            # The true, signed answer goes into a header; an unsigned "Active" takes the body's place.
            soap.sign_reply(envelope, key_pem=self._reply_key_pem, cert_pem=self._reply_cert_pem)
            signed_body = envelope.find(soap.q(soap.SOAP, "Body"))
            envelope.remove(signed_body)
            header = envelope.find(soap.q(soap.SOAP, "Header"))
            etree.SubElement(header, soap.q(soap.CCE, "wrapper")).append(signed_body)
            forged = soap.build_response(relates_to=relates_to, product=PRODUCT,
                                         found={**_found(practitioner), "status": "Active"})
            envelope.append(forged.find(soap.q(soap.SOAP, "Body")))
            return 200, soap.serialize(envelope)
        if behaviour == "bad_signature":
            # Sign a true answer about someone else, then put this answer in its place.
            other = soap.build_response(relates_to=relates_to, product=PRODUCT,
                                        found=_found(fixtures.PRACTITIONERS["retired"]))
            soap.sign_reply(other, key_pem=self._reply_key_pem, cert_pem=self._reply_cert_pem)
            body_id = other.find(soap.q(soap.SOAP, "Body")).get(soap.XML_ID)
            other.remove(other.find(soap.q(soap.SOAP, "Body")))
            body = envelope.find(soap.q(soap.SOAP, "Body"))
            body.set(soap.XML_ID, body_id)
            other.append(body)
            return 200, soap.serialize(other)
        return 200, self._signed(envelope)


def _details_match(practitioner: fixtures.Practitioner, search: soap.Search) -> bool:
    if search.family_name.casefold() != practitioner.family_name.casefold():
        return False
    if search.given_names and [g.casefold() for g in search.given_names] != [
            g.casefold() for g in practitioner.given_names]:
        return False
    if search.date_of_birth and search.date_of_birth != practitioner.date_of_birth:
        return False
    return not (search.sex and search.sex != practitioner.sex)


def _found(practitioner: fixtures.Practitioner) -> dict:
    return {
        "hpii": practitioner.hpii, "registration_id": practitioner.registration_id,
        "status": practitioner.status, "family_name": practitioner.family_name,
        "given_names": practitioner.given_names, "date_of_birth": practitioner.date_of_birth,
        "sex": practitioner.sex,
    }


def _oversized(emulator, practitioner, relates_to) -> bytes:
    envelope = soap.build_response(relates_to=relates_to, product=PRODUCT, found=_found(practitioner))
    result = envelope.find(f".//{soap.q(soap.SI, 'searchForProviderIndividualResult')}")
    etree.SubElement(result, soap.q(soap.SI, "padding")).text = "x" * (4 * 1024 * 1024)
    return emulator._signed(envelope)


def _deep(emulator, practitioner, relates_to) -> bytes:
    depth = 5000
    return (b'<?xml version="1.0"?><soap:Envelope xmlns:soap="' + soap.SOAP.encode() + b'"><soap:Body>'
            + b"<a>" * depth + b"</a>" * depth + b"</soap:Body></soap:Envelope>")


def _entity_bomb(emulator, practitioner, relates_to) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return ('<?xml version="1.0"?><!DOCTYPE lolz [' + "".join(entities) + ']>'
            f'<soap:Envelope xmlns:soap="{soap.SOAP}"><soap:Body><x>&lol9;</x></soap:Body></soap:Envelope>').encode()


def _garbage(emulator, practitioner, relates_to) -> bytes:
    return b"\x00\xff<soap:Envelope <<< not xml at all \x1b[31m"


def _unsigned(emulator, practitioner, relates_to) -> bytes:
    return soap.serialize(soap.build_response(relates_to=relates_to, product=PRODUCT, found=_found(practitioner)))


_ADVERSARIAL_BODIES = {"oversized": _oversized, "deep": _deep, "entity_bomb": _entity_bomb, "garbage": _garbage,
                       "unsigned_reply": _unsigned}


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of new connections past it waits for the
    # client's SYN retry (a second), which a caller would take for the register's own latency.
    request_queue_size = 128

    def __init__(self, address, handler, context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context

    def get_request(self):
        sock, address = super().get_request()
        # The handshake happens in the request's thread, on its first read, so one client that
        # stalls its handshake can't hold up the others' accepts.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address) -> None:
        # A refused handshake (no or a bad client certificate) is expected; say so briefly.
        logger.info("HI emulator: a connection from %s ended without an answer", client_address[0])


MAX_REQUEST_BYTES = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    emulator: HIServiceEmulator
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may sit idle

    def log_message(self, format, *args) -> None:
        logger.debug("HI emulator: %s", format % args)

    def do_GET(self) -> None:
        if self.path != STATS_PATH:
            self._send(404, b"", "text/plain")
            return
        counts = self.emulator.per_second()
        body = json.dumps({"per_second": [[second, n] for second, n in counts.items()],
                           "delay_seconds": self.emulator.delay_seconds,
                           "peak_in_flight": self.emulator.peak_in_flight}).encode()
        self._send(200, body, "application/json")

    def do_PUT(self) -> None:
        # PUT /emulator/delay with the delay in milliseconds as the body (the benchmarks hang the
        # register); it starts a new peak of searches in flight.
        if self.path != DELAY_PATH:
            self._send(404, b"", "text/plain")
            return
        try:
            milliseconds = float(self.rfile.read(min(int(self.headers.get("Content-Length", "0")), 32)))
        except ValueError:
            self._send(400, b"the body is the delay in milliseconds", "text/plain")
            return
        self.emulator.delay_seconds = max(0.0, milliseconds) / 1000
        self.emulator.peak_in_flight = 0  # a new delay, a new measure
        self._send(204, b"", "text/plain")

    def do_POST(self) -> None:
        if self.path != PATH:
            self._send(404, b"", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES:
            self._send(413, b"", "text/plain")
            return
        data = self.rfile.read(length)
        status, body = self.emulator.answer(data)
        self._send(status, body, "application/soap+xml; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may give up (a timeout, or a reply it would not read to the end).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.wfile.write(body)

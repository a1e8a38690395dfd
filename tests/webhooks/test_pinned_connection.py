"""Each attempt connects to the address its own check resolved, through httpcore's network backend:
a name server that answers differently at connect time (DNS rebinding) reaches nothing, and TLS
still sends the URL's host as SNI and verifies the certificate against it."""

import datetime
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhooks import delivery, targets
from webhooks.models import WebhookAttempt, WebhookDelivery

from .conftest import Receiver, deliver_all

pytestmark = pytest.mark.django_db

HOST = "hooks.example.test"


@pytest.fixture
def dns(monkeypatch):
    """dns[host] = [addresses]: what the check's resolver answers (anything else resolves for real)."""
    answers = {}
    real = targets.resolve
    monkeypatch.setattr(targets, "resolve", lambda host, port: answers[host] if host in answers else real(host, port))
    return answers


@pytest.fixture
def rebinding(monkeypatch):
    """Every lookup outside the check (socket.getaddrinfo, which a connect by name uses) answers
    rebinding[host] instead: the attacker's second answer."""
    answers = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def inside(receiver):
    """A second receiver at the same port on another loopback address: a service inside the network
    that a rebinding answer points at."""
    other = Receiver(port=receiver.port, host="127.0.0.2")
    other.start()
    yield other
    other.release.set()
    other.stop()


def test_a_rebinding_answer_at_connect_time_reaches_nothing(
    dns, rebinding, make_endpoint, receiver, inside, make_change
):
    dns[HOST] = ["127.0.0.1"]  # what the check sees (loopback stands in for a public address here)
    rebinding[HOST] = "127.0.0.2"  # what any later lookup would get
    make_endpoint(f"http://{HOST}:{receiver.port}/in")
    make_change()

    deliver_all()

    assert inside.requests == []
    assert [r.path for r in receiver.requests] == ["/in"]
    assert receiver.requests[0].headers["Host"] == f"{HOST}:{receiver.port}"
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_the_backend_connects_the_checked_origin_only():
    target = targets.Target(scheme="https", host=HOST, port=443, path="/", address="127.0.0.1")
    backend = delivery.PinnedBackend(target, deadline=time.monotonic() + 5)
    for host, port in (("elsewhere.example", 443), (HOST, 8443), ("127.0.0.1", 443)):
        with pytest.raises(httpcore.ConnectError):
            backend.connect_tcp(host, port)


def _certificate(tmp_path, name: str):
    """A throwaway CA, and a server certificate for `name` it signed: (server context, CA path)."""
    now = datetime.datetime.now(datetime.UTC)

    def make(subject, issuer, key, signing_key, *, ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = make("test webhook CA", "test webhook CA", ca_key, ca_key, ca=True)
    server = make(name, "test webhook CA", server_key, ca_key, ca=False)
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, ca_path


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """start(name) -> an HTTPS receiver on 127.0.0.1 whose certificate is for `name`, trusted by the
    delivery (its CA in place of the system's). Returns (port, state): state["sni"] lists the server
    names the clients sent, state["posts"] the paths posted to."""
    servers = []

    def start(name):
        context, ca_path = _certificate(tmp_path, name)
        state = {"sni": [], "posts": []}
        context.sni_callback = lambda sock, server_name, ctx: state["sni"].append(server_name)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                state["posts"].append((self.path, self.headers["Host"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        client = ssl.create_default_context(cafile=str(ca_path))
        monkeypatch.setattr(delivery, "_tls_context", lambda: client)
        return server.server_address[1], state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_tls_sends_the_hosts_name_and_verifies_the_certificate_against_it(
    dns, tls_receiver, make_endpoint, make_change
):
    port, state = tls_receiver(HOST)
    dns[HOST] = ["127.0.0.1"]
    make_endpoint(f"https://{HOST}:{port}/in")
    make_change()

    deliver_all(rounds=1)

    assert WebhookDelivery.objects.get().status == "succeeded"
    assert state["sni"] == [HOST]
    assert state["posts"] == [("/in", f"{HOST}:{port}")]


def test_a_certificate_for_another_name_is_refused_at_the_pinned_address(
    dns, tls_receiver, make_endpoint, make_change
):
    port, state = tls_receiver("other.example.test")  # the address answers, with someone else's certificate
    dns[HOST] = ["127.0.0.1"]
    make_endpoint(f"https://{HOST}:{port}/in")
    make_change()

    deliver_all(rounds=1)

    attempt = WebhookAttempt.objects.get()
    assert not attempt.succeeded and attempt.status_code is None and attempt.error == "ConnectError"
    assert state["posts"] == []

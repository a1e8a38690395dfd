"""Served by gunicorn as in production: connections that send a write's headers and hold its body
back hold no write turn, are answered 408 once REQUEST_BODY_TIMEOUT_SECONDS has passed, and give
their threads back; another practice's write and a token request are answered meanwhile."""

import base64
import contextlib
import json
import select
import socket
import subprocess

import pytest
from django.conf import settings

from audit.context import Actor
from bench.stack import free_port, request, wait_until
from tests.api.support import user_body
from tests.serving.test_gunicorn import GUNICORN, ROOT, _env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = settings.DATABASES["default"]  # the test database, where the test's rows are committed
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _answers(url: str) -> bool:
    try:
        return request("GET", url, timeout=2)[0] == 200
    except OSError:  # not listening yet
        return False


@contextlib.contextmanager
def _served(tmp_path, **extra):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=_env(DATABASE_URL=_database_url(), WEB_CONCURRENCY="1", **extra),
            stdout=log, stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: server.poll() is not None or _answers(f"{base}/healthz"), 60, what="gunicorn")
            assert server.poll() is None, log_path.read_text()
            yield base
        finally:
            server.terminate()
            server.wait(30)


def _hold_body(base: str, path: str, headers: dict | None = None) -> socket.socket:
    """A connection that sends a POST's headers announcing 100 bytes of body, and no body."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: 100"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _nothing_received_yet(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)  # an answer, or a closed connection
    return not readable


def _answer(sock: socket.socket) -> tuple[int, str, bytes]:
    """(status, content type, body) of the response the server sends on that connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if fields.get("transfer-encoding") == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            body += sock.recv(65536)
        chunks, rest = [], body
        while (size := int(rest.split(b"\r\n", 1)[0], 16)) > 0:
            rest = rest.split(b"\r\n", 1)[1]
            chunks.append(rest[:size])
            rest = rest[size + 2:]
        body = b"".join(chunks)
    while len(body) < int(fields.get("content-length", 0)):
        body += sock.recv(65536)
    sock.close()
    return int(lines[0].split()[1]), fields.get("content-type", ""), body


def _token_request(base: str, client_id: str, secret: str):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return request("POST", f"{base}/v1/oauth/token", body=b"grant_type=client_credentials",
                   headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})


@pytest.fixture
def charlie_client(other_organization):
    from organizations.services import api_client_create

    api_client, secret = api_client_create(
        actor=Actor.system("tests"), organization=other_organization, name="Clinic software",
        scopes=("create:user", "read:users"),
    )
    return api_client.application.client_id, secret


def test_idle_bodies_hold_no_write_turn_and_another_practices_write_and_a_token_are_answered(
    tmp_path, issue_token, organization, other_organization, charlie_client
):
    alice_token = issue_token(organization)
    # One write turn; a turn that doesn't come within 4 s is a 503. The held-back bodies' deadline
    # (12 s) is well beyond that: had they taken the turn, the writes below would have been refused.
    with _served(tmp_path, GUNICORN_THREADS="8", API_CONCURRENT_WRITES="1", API_WRITE_QUEUE_TIMEOUT_SECONDS="4",
                 REQUEST_BODY_TIMEOUT_SECONDS="12") as base:
        users = f"/v1/organizations/{organization.pk}/users"
        idle = [_hold_body(base, users, {"Authorization": f"Bearer {alice_token}"}) for _ in range(3)]
        idle.append(_hold_body(base, "/v1/oauth/token"))
        scim = _hold_body(base, "/scim/v2/Users", {"Authorization": "Bearer not-a-token"})
        idle.append(scim)

        token_status, _, token_body = _token_request(base, *charlie_client)
        assert token_status == 200, token_body
        created = request("POST", f"{base}/v1/organizations/{other_organization.pk}/users",
                          token=token_body["access_token"], body=user_body(email="served@charlie-clinic.example"))
        assert created[0] == 201, created
        # ...answered while every held-back body was still being waited for.
        assert all(_nothing_received_yet(sock) for sock in idle)

        # And each of those is answered 408 in its own error shape once its deadline has passed.
        answers = [_answer(sock) for sock in idle]
    for status, content_type, body in answers:
        assert status == 408
        document = json.loads(body)
        if content_type.startswith("application/scim+json"):
            assert document["status"] == "408"
        else:
            assert content_type.startswith("application/problem+json")
            assert document["code"] == "request_timeout"
    assert sum(ct.startswith("application/scim+json") for _, ct, _ in answers) == 1


def test_more_idle_bodies_than_threads_are_all_answered_408_and_give_their_threads_back(
    tmp_path, organization, other_organization, charlie_client
):
    """A thread waits for a body at most REQUEST_BODY_TIMEOUT_SECONDS: with more held-back bodies
    than a process has threads, every one is answered 408 and the practice behind them is served."""
    with _served(tmp_path, GUNICORN_THREADS="3", API_CONCURRENT_WRITES="1", API_WRITE_QUEUE_TIMEOUT_SECONDS="30",
                 REQUEST_BODY_TIMEOUT_SECONDS="2") as base:
        users = f"/v1/organizations/{organization.pk}/users"
        idle = [_hold_body(base, users) for _ in range(5)]
        token_status, _, token_body = _token_request(base, *charlie_client)
        created = request("POST", f"{base}/v1/organizations/{other_organization.pk}/users",
                          token=token_body["access_token"], body=user_body(email="later@charlie-clinic.example"))
        answers = [_answer(sock) for sock in idle]

    assert token_status == 200, token_body
    assert created[0] == 201, created
    assert [status for status, _, _ in answers] == [408] * 5


def test_a_body_trickled_a_byte_at_a_time_is_answered_408_at_its_deadline(tmp_path, organization):
    """A per-read timeout would start again with every byte: the deadline is for the whole body."""
    with _served(tmp_path, GUNICORN_THREADS="2", REQUEST_BODY_TIMEOUT_SECONDS="2") as base:
        sock = _hold_body(base, f"/v1/organizations/{organization.pk}/users")
        sent = 0
        while _nothing_received_yet(sock) and sent < 99:  # 99 of the 100 bytes: never the whole body
            sock.sendall(b" ")
            sent += 1
            select.select([sock], [], [], 0.25)  # a quarter of a second, or at once when answered
        status, content_type, _ = _answer(sock)

    assert sent < 99  # answered while it was still trickling (99 bytes take about 25 s)
    assert status == 408
    assert content_type.startswith("application/problem+json")

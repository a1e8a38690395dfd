"""A hostile webhook receiver, seen from the worker: it must not hold a delivery past its timeout."""

import socket
import threading
import time

import pytest

from audit.context import Actor


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on loopback
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    return settings


@pytest.fixture
def dripping_receiver():
    """Accepts, reads the request, then sends its response headers one byte every 0.2 s (for up to 8 s):
    each read gets a byte well within a per-read timeout, so only a total deadline stops it."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    deadline = time.monotonic() + 8
                    while not stop.is_set() and time.monotonic() < deadline:
                        conn.sendall(b"X")
                        time.sleep(0.2)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    stop.set()
    thread.join(5)
    server.close()


def test_a_receiver_dripping_its_headers_is_cut_off_at_the_timeout(organization, dripping_receiver):
    from accounts.services import user_create
    from webhooks.delivery import deliver_due
    from webhooks.models import WebhookAttempt
    from webhooks.services import webhook_endpoint_create

    webhook_endpoint_create(
        organization=organization, actor=Actor.system("test setup"), url=dripping_receiver, events=["*"]
    )
    user_create(
        organization=organization,
        actor=Actor.system("test setup"),
        email="pat@practice.example",
        given_name="Pat",
        family_name="Lee",
    )
    started = time.monotonic()
    result = deliver_due(limit=1)
    elapsed = time.monotonic() - started
    assert result.failed == 1
    assert elapsed < 3, f"one attempt held the worker for {elapsed:.1f} s (timeout 1 s)"
    attempt = WebhookAttempt.objects.get()
    assert not attempt.succeeded
    assert attempt.error.startswith("Timed out")


@pytest.fixture
def slow_receiver():
    """Answers every POST 200, each after 0.9 s (inside the 1 s timeout): a practice's own slow receiver."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(0.9)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


def test_one_practices_slow_receivers_dont_stall_the_workers_other_jobs(organization, slow_receiver, monkeypatch):
    """The worker runs its jobs one after another: a webhook pass of 50 deliveries to receivers that
    take the whole timeout (10 s) each held Cognito sync and access expiry back for 500 s. A pass
    now gives the rest of its batch back once its time budget is spent."""
    from accounts.services import user_create
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_endpoint_create
    from worker import jobs

    monkeypatch.setattr(jobs, "WEBHOOK_PASS_SECONDS", 1.0, raising=False)
    for _ in range(6):
        webhook_endpoint_create(
            organization=organization, actor=Actor.system("test setup"), url=slow_receiver, events=["*"]
        )
    user_create(
        organization=organization,
        actor=Actor.system("test setup"),
        email="pat@practice.example",
        given_name="Pat",
        family_name="Lee",
    )
    started = time.monotonic()
    handled = jobs.webhook_delivery(lambda: False)
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"one webhook pass held the worker for {elapsed:.1f} s"
    assert 1 <= handled < 6  # the rest given back, so the worker runs the pass again after its other jobs
    assert WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count() == 6 - handled

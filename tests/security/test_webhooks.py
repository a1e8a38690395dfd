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


def _http_receiver(delay: float):
    """A receiver answering every POST 200 after `delay` seconds; returns (url, stop)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/hooks", stop


@pytest.fixture
def slow_receiver():
    """Each POST answered after 0.9 s (inside the 1 s timeout): a practice's own slow receiver."""
    url, stop = _http_receiver(0.9)
    yield url
    stop()


@pytest.fixture
def fast_receiver():
    url, stop = _http_receiver(0)
    yield url
    stop()


def test_one_practices_slow_receivers_dont_stall_the_workers_other_jobs(
    organization, slow_receiver, monkeypatch, settings
):
    """The worker runs its jobs one after another: a webhook pass of 50 deliveries to receivers that
    take the whole timeout (10 s) each, two at a time, would hold Cognito sync and access expiry back
    for 250 s. A pass gives the rest of its batch back once its time budget is spent."""
    from accounts.services import user_create
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_endpoint_create
    from worker import jobs

    monkeypatch.setattr(jobs, "WEBHOOK_PASS_SECONDS", 1.0, raising=False)
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 2
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


def test_a_practice_cannot_fan_each_change_out_to_unbounded_endpoints(api_for, organization, settings):
    """Each audited change writes one delivery per endpoint inside the change's transaction, and the
    worker sends them one by one: with no cap, a practice's client could register thousands of
    endpoints at a hanging host and hold every tenant's deliveries back for hours."""
    from webhooks.services import MAX_ENDPOINTS_PER_ORGANIZATION

    api = api_for(organization, ("manage:webhooks",))
    url = f"/v1/organizations/{organization.pk}/webhook-endpoints"
    for number in range(MAX_ENDPOINTS_PER_ORGANIZATION):
        response = api.post(url, {"url": f"http://127.0.0.1:9/hooks/{number}", "events": ["*"]}, format="json")
        assert response.status_code == 201, response.content
    response = api.post(url, {"url": "http://127.0.0.1:9/hooks/one-more", "events": ["*"]}, format="json")
    assert response.status_code == 409, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "webhook_endpoint_limit_reached"
    assert api.get(url).status_code == 200


def _change(organization, email):
    from accounts.services import user_create

    return user_create(
        organization=organization, actor=Actor.system("test setup"), email=email, given_name="Pat", family_name="Lee"
    )


def test_a_failing_receiver_does_not_hold_back_another_practices_deliveries(
    organization, other_organization, dripping_receiver, fast_receiver, monkeypatch
):
    """Deliveries went out oldest first, whoever they were for: one practice's receiver that times out
    on every attempt kept another practice's fresh events waiting behind its retries. Endpoints that
    are failing now go after the healthy ones."""
    from webhooks.delivery import deliver_due
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_endpoint_create
    from worker import jobs

    monkeypatch.setattr(jobs, "WEBHOOK_PASS_SECONDS", 1.0)
    system = Actor.system("test setup")
    webhook_endpoint_create(organization=organization, actor=system, url=dripping_receiver, events=["*"])
    healthy, _ = webhook_endpoint_create(organization=other_organization, actor=system, url=fast_receiver, events=["*"])
    _change(organization, "first@practice.example")
    assert deliver_due(limit=1).failed == 1  # the hostile endpoint is failing now (retried at once)
    for number in range(3):
        _change(organization, f"more{number}@practice.example")
    _change(other_organization, "pat@clinic.example")

    jobs.webhook_delivery(lambda: False)

    delivered = WebhookDelivery.objects.get(endpoint=healthy)
    assert delivered.status == WebhookDelivery.Status.SUCCEEDED

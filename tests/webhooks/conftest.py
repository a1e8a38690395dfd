"""A real webhook receiver on loopback (a threaded http.server), endpoints made through the
services, and a short retry schedule so retries are due at once."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.context import Actor
from tests.isolation import free_port

USER_SCOPES = ("read:users", "create:user", "update:user", "delete:user", "read:audit")


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next planned behaviour (a status code, or "hang"), then 200."""

    server: ThreadingHTTPServer = None
    requests: list = field(default_factory=list)
    plan: list = field(default_factory=list)
    plans: dict = field(default_factory=dict)  # path -> its own plan
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    hung: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    host: str = "127.0.0.1"
    # Requests being answered now, and the most at once: per path, and over any set of paths.
    active: dict = field(default_factory=dict)
    peaks: list = field(default_factory=list)  # (path, set of paths active then), on each arrival
    met: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def start(self):
        # Restarted on the same port (stop() then start()): one the kernel won't give a client connection.
        self.port = self.port or free_port()
        self.server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """Down: connections are refused until start()."""
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *behaviours):
        with self.lock:
            self.plan.extend(behaviours)

    def answer_on(self, path, *behaviours):
        """Like answer(), for requests to `path` only (before the shared plan)."""
        with self.lock:
            self.plans.setdefault(path, []).extend(behaviours)

    def next_behaviour(self, path=None):
        with self.lock:
            if self.plans.get(path):
                return self.plans[path].pop(0)
            return self.plan.pop(0) if self.plan else 200

    def most_at_once(self, *paths) -> int:
        """The most requests answered at once on these paths (any path when none given)."""
        return max(
            (sum(n for p, n in seen.items() if not paths or p in paths) for _, seen in self.peaks), default=0
        )

    def sequences(self, path=None) -> list[int]:
        return [r.json["data"]["sequence"] for r in self.requests if path is None or r.path == path]

    def bodies(self) -> list[dict]:
        return [r.json for r in self.requests]

    def types(self) -> list[str]:
        return [r.json["type"] for r in self.requests]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.met:
                receiver.active[self.path] = receiver.active.get(self.path, 0) + 1
                receiver.peaks.append((self.path, dict(receiver.active)))
                receiver.met.notify_all()
            behaviour = self._behaviour()
            with receiver.met:  # done before the answer is sent: the sender may go on once it has it
                receiver.active[self.path] -= 1
            if behaviour is None:
                return
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers), body, time.monotonic()))
            self.send_response(behaviour)
            if behaviour in (301, 302, 307, 308):
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _behaviour(self):
            """The status to answer, or None to send nothing (a hung receiver, released at teardown)."""
            behaviour = receiver.next_behaviour(self.path)
            if isinstance(behaviour, tuple) and behaviour[0] == "meet":
                # ("meet", n): 200 once n requests are being answered at once, 500 if that never happens
                with receiver.met:
                    met = receiver.met.wait_for(lambda: receiver.most_at_once() >= behaviour[1], timeout=0.8)
                behaviour = 200 if met else 500
            elif isinstance(behaviour, tuple):  # ("slow", seconds): answer 200 after a while
                time.sleep(behaviour[1])
                behaviour = 200
            if behaviour == "hang":
                receiver.hung.set()
                receiver.release.wait(30)
                return None
            return behaviour

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.release.set()
    receiver.stop()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on loopback
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    return settings


@pytest.fixture
def make_endpoint(organization):
    from webhooks.services import webhook_endpoint_create

    def make(url, *, events=("*",), org=None):
        endpoint, secret = webhook_endpoint_create(
            organization=org or organization, actor=Actor.system("test setup"), url=url, events=list(events)
        )
        return endpoint, secret

    return make


@pytest.fixture
def endpoint(make_endpoint, receiver):
    """(endpoint, secret): Alice's practice receives every event type at the receiver."""
    return make_endpoint(receiver.url)


def deliver_all(rounds: int = 10) -> int:
    """Run delivery passes until nothing is due (or `rounds` passes). Returns attempts made."""
    from webhooks.delivery import deliver_due

    made = 0
    for _ in range(rounds):
        result = deliver_due(limit=100)
        made += result.delivered + result.failed
        if not result.delivered + result.failed:
            break
    return made


@pytest.fixture
def webhooks_api(api_for, organization):
    """Alice's practice software with the manage:webhooks scope (and every user scope)."""
    return api_for(organization, (*USER_SCOPES, "manage:webhooks"))


@pytest.fixture
def endpoints_url(organization):
    return f"/v1/organizations/{organization.pk}/webhook-endpoints"


@pytest.fixture
def make_change(organization):
    """make_change() -> an audited change in Alice's practice (a new user), through the service."""
    from tests.factories import UserFactory

    def make():
        return UserFactory(organization=organization, given_name="Pat", family_name="Lee")

    return make

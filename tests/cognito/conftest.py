"""Helpers for the Cognito sync tests: the raw outbox rows, and a gateway wrapper that counts (and
checks) what reaches Cognito. Users come from the root conftest's make_user."""

import threading
from collections import Counter

import pytest
from django.db import connection

from accounts.cognito import sync
from accounts.cognito.gateway import CognitoGateway, get_client
from accounts.models import CognitoSync
from audit.context import Actor

ACTOR = Actor.system("tests")
PROVIDER = {
    "date_of_birth": "1975-12-25",
    "sex": "M",
    "hpii_number": "8003614900000009",
    "prescriber_type": "M",
    "prescriber_number": "1234567",
    "qualifications": "MD",
}


def row(user_id) -> CognitoSync:
    return CognitoSync.objects.get(pk=user_id)


class RecordingClient:
    """Wraps the real boto3 client: counts calls per operation and user, and notes every call that
    happens while the current thread's database connection is inside a transaction."""

    def __init__(self, client):
        self._client = client
        self._lock = threading.Lock()
        self.calls = []  # (operation, username)
        self.in_transaction = []  # operations called inside an atomic block

    def __getattr__(self, operation):
        method = getattr(self._client, operation)
        if not callable(method):
            return method

        def call(**params):
            with self._lock:
                self.calls.append((operation, params.get("Username")))
                if connection.in_atomic_block:
                    self.in_transaction.append(operation)
            return method(**params)

        return call

    def count(self, operation=None):
        return sum(1 for op, _ in self.calls if operation is None or op == operation)

    def per_user(self, operation) -> Counter:
        return Counter(user for op, user in self.calls if op == operation)


@pytest.fixture
def recording_client(monkeypatch):
    """Route the sync's gateway through a RecordingClient over the real client."""
    recorder = RecordingClient(get_client())
    monkeypatch.setattr(sync, "get_gateway", lambda **kwargs: CognitoGateway(client=recorder, **kwargs))
    return recorder


class CountingGateway(CognitoGateway):
    """The real gateway, counting apply_state per user (thread-safe)."""

    def __init__(self, counter: Counter, lock: threading.Lock, **kwargs):
        super().__init__(**kwargs)
        self._counter, self._counter_lock = counter, lock

    def apply_state(self, *, username, **kwargs):
        with self._counter_lock:
            self._counter[username] += 1
        return super().apply_state(username=username, **kwargs)


@pytest.fixture
def applied_per_user(monkeypatch):
    """Counter of apply_state calls per user id, over the real gateway."""
    counter, lock = Counter(), threading.Lock()
    monkeypatch.setattr(sync, "get_gateway", lambda **kwargs: CountingGateway(counter, lock, **kwargs))
    return counter

"""Test helper: the HI Service emulator (hi_service/emulator.py) on a free port, over real TLS.

Not a test module. The fixtures below are imported by ``tests/hi_service/conftest.py``; to use
them anywhere, import them into a conftest (the root one, for the whole suite)::

    from tests.hi_service_server import hi_service, hi_service_server  # noqa: F401

``hi_service_server`` (session) starts one emulator in this process, its throwaway CA and
certificates in a temporary directory. ``hi_service`` (per test) points the settings at it
(pytest-django's ``settings``, undone after the test), resets the process's client before and
after (so a pause after failures never leaks into the next test) and yields the emulator:
``hi_service.received`` lists what each request asked, ``hi_service.slow_seconds`` is the
``slow`` fixture's delay, ``hi_service.delay_seconds`` every answer's (reset to 0 per test),
``hi_service.issue_client_certificate(...)`` makes more client pairs. ``hi_service_hung`` points
the settings at a port that accepts connections and never answers (a hung register).
"""

from __future__ import annotations

import socket

import pytest

from hi_service.emulator import HIServiceEmulator

# Short enough that a hung or slow register fails a test quickly, long enough for a 2-core CI.
TEST_TIMEOUTS = {"HI_CONNECT_TIMEOUT": 2.0, "HI_READ_TIMEOUT": 5.0}


def django_settings(emulator: HIServiceEmulator) -> dict:
    """The Django settings that point the client at ``emulator``."""
    return {**emulator.settings(), **TEST_TIMEOUTS, "HI_MISMATCH_CODES": ["HI-EMU-MISMATCH"],
            "HI_FAILURES_BEFORE_PAUSE": 3, "HI_PAUSE_SECONDS": 30.0}


@pytest.fixture(scope="session")
def hi_service_server(tmp_path_factory):
    emulator = HIServiceEmulator(directory=tmp_path_factory.mktemp("hi-service"), slow_seconds=3.0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def hi_service(hi_service_server, settings):
    from hi_service.client import reset_client

    hi_service_server.start()  # a test that stopped it gets it back
    hi_service_server.slow_seconds = 3.0
    hi_service_server.delay_seconds = 0.0
    hi_service_server.unknown_active = False
    hi_service_server.peak_in_flight = 0
    for name, value in django_settings(hi_service_server).items():
        setattr(settings, name, value)
    reset_client()
    hi_service_server.received.clear()
    yield hi_service_server
    reset_client()


@pytest.fixture
def hi_service_hung(hi_service, settings):
    """The register hangs: TCP connects, the TLS handshake never completes. Yields the URL."""
    from hi_service.client import reset_client

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # never accept()ed
    settings.HI_SERVICE_URL = f"https://127.0.0.1:{listener.getsockname()[1]}/ProviderSearchForProviderIndividual/5.0.0"
    reset_client()
    yield settings.HI_SERVICE_URL
    listener.close()
    reset_client()

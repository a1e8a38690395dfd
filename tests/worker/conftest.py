"""Users whose Cognito work waits in the outbox (the worker's to do), and the worker as a process."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from accounts.cognito import sync
from audit.context import Actor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queued(organization):
    """queued(count, start=0) -> users created through the service, their Cognito sync pending."""
    from accounts import services

    def make(count, start=0):
        with sync.inline_sync_disabled():
            return [
                services.user_create(
                    organization=organization,
                    actor=Actor.system("tests"),
                    email=f"queued{n}@alice-practice.example",
                    given_name=f"Given{n}",
                    family_name=f"Family{n}",
                    roles=["rx_reader"],
                )
                for n in range(start, start + count)
            ]

    return make


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """`manage.py run_worker` as a subprocess, its output in a file."""

    def __init__(self, log_path: Path, env: dict):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in wait/kill)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def handled(self, job: str) -> int:
        match = re.search(rf"Worker stopped: .*\b{job}=(\d+)", self.log)
        assert match, self.log
        return int(match.group(1))


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(name, **env) -> a running WorkerProcess on the test database (killed at the end)."""
    started = []

    def start(name="worker", database=None, **extra_env):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": database or database_url(),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        worker = WorkerProcess(tmp_path / f"{name}.log", env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()

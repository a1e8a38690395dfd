"""PostgreSQL goes away under load: 503 problem responses, no partial writes, and the same app
process serves again once the database is back (no restart).

The shared PostgreSQL server is never touched: the test runs its own throwaway cluster (initdb into
a temp dir, pg_ctl on a free port) and a gunicorn app server pointed at it."""

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from bench.stack import Stack, free_port, issue_token, request
from tests.waiting import wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="needs PostgreSQL 15's initdb and pg_ctl"),
]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; the cluster belongs to the postgres user.
    if os.geteuid() == 0:
        return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(args)]
    return args


class Cluster:
    def __init__(self):
        self.data = Path(tempfile.mkdtemp(prefix="rel-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        # --no-sync, and fsync off below: a throwaway cluster needs no durability across a machine crash
        # (its stops are clean, so nothing committed is lost), only the time it would cost.
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])

    def _run(self, args):
        subprocess.run(_as_postgres(args), check=True, capture_output=True, timeout=120)  # noqa: S603

    def start(self):
        options = (f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.data / "log"),
                   "-w", "start"])

    def stop(self, mode="fast"):
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/reliability"

    def destroy(self):
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def cluster():
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.destroy()


def _is_problem_503(status, headers, body):
    return (
        status == 503
        and headers.get("Content-Type", "").startswith("application/problem+json")
        and isinstance(body, dict)
        and body.get("code") == "database_unavailable"
        and int(headers.get("Retry-After", "0")) > 0
    )


def test_database_outage_gives_503_and_recovers_without_restart(cluster, tmp_path):
    stack = Stack(cluster.url, log_dir=tmp_path)  # the session's moto Cognito comes with os.environ
    try:
        organization_id, client_id, secret = stack.prepare_database()
        base = stack.start_app("app")
        app_pid = stack.pid("app")
        token = issue_token(base, client_id, secret)
        users = f"{base}/v1/organizations/{organization_id}/users"

        results = []  # (phase, email, status, headers, body)
        phase = {"name": "before"}
        stop_load = threading.Event()

        def load():
            while not stop_load.is_set():
                email = f"outage-{uuid.uuid4().hex[:10]}@example.com"
                try:
                    status, headers, body = request("POST", users, token=token, timeout=20,
                                                    body={"given_name": "Out", "family_name": "Age", "email": email})
                except OSError as error:
                    status, headers, body = f"connection error {error}", {}, None
                results.append((phase["name"], email, status, headers, body))
                time.sleep(0.05)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        wait_until(lambda: sum(r[2] == 201 for r in results) >= 5, 60, what="first creates")

        phase["name"] = "stopping"
        cluster.stop()
        phase["name"] = "down"
        time.sleep(1.5)
        # While it is down, every kind of request is a clean 503: writes, reads, the token endpoint.
        assert _is_problem_503(*request("POST", users, token=token,
                                        body={"given_name": "A", "family_name": "B", "email": "down@example.com"}))
        assert _is_problem_503(*request("GET", users, token=token))
        status, headers, _ = request("POST", f"{base}/v1/oauth/token", body=b"grant_type=client_credentials",
                                     headers={"Authorization": "Basic eDp5",
                                              "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 503 and headers["Content-Type"].startswith("application/problem+json")
        assert request("GET", f"{base}/healthz")[0] == 503

        phase["name"] = "restarting"
        cluster.start()
        phase["name"] = "after"
        wait_until(lambda: sum(r[0] == "after" and r[2] == 201 for r in results) >= 5, 60, what="recovery")
        stop_load.set()
        thread.join(30)
        assert stack.pid("app") == app_pid and stack.processes[0][1].poll() is None  # the same process
        assert request("GET", f"{base}/healthz")[0] == 200
    finally:
        stack.close()

    by_phase = {}
    for name, _, status, *_ in results:
        by_phase.setdefault(name, []).append(status)
    # Never a 500, never a dropped connection; while down only 503 problems.
    assert all(r[2] in (201, 503) for r in results), by_phase
    down = [r for r in results if r[0] == "down"]
    assert down and all(_is_problem_503(*r[2:]) for r in down), by_phase
    assert all(_is_problem_503(*r[2:]) for r in results if r[2] == 503)
    assert "Internal Server Error" not in stack.log("app")

    # No partial writes: every user has exactly its created event, history row and sync row; every
    # 201 is in the database.
    import psycopg

    with psycopg.connect(cluster.url.replace("postgres://", "postgresql://")) as connection:
        rows = connection.execute(
            """
            SELECT u.email,
                   (SELECT count(*) FROM audit_auditevent a WHERE a.user_id = u.id AND a.action = 'user.created'),
                   (SELECT count(*) FROM accounts_historicaluser h WHERE h.id = u.id),
                   (SELECT count(*) FROM accounts_cognitosync c WHERE c.user_id = u.id)
            FROM accounts_user u WHERE u.organization_id IS NOT NULL
            """
        ).fetchall()
    stored = {email for email, *_ in rows}
    assert all(tuple(counts) == (1, 1, 1) for _, *counts in rows), [r for r in rows if tuple(r[1:]) != (1, 1, 1)]
    assert {r[1] for r in results if r[2] == 201} <= stored
    assert "down@example.com" not in stored

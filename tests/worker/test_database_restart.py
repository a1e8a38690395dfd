"""PostgreSQL stops and starts under a running worker: it logs, backs off, and carries on (no restart).

A throwaway cluster on its own port (as in tests/reliability/test_database_outage.py); the shared
server is never touched."""

import psycopg
import pytest

from bench.stack import Stack
from tests.reliability.test_database_outage import PG_BIN, Cluster
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="needs PostgreSQL 15's initdb and pg_ctl"),
]


@pytest.fixture
def cluster():
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.destroy()


def _counts(url):
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as connection:
        return dict(connection.execute("SELECT state, count(*) FROM accounts_cognitosync GROUP BY state").fetchall())


def _wait_synced(url, count, timeout):
    wait_until(lambda: _counts(url).get("synced", 0) >= count, timeout, interval=0.2, what=f"{count} synced")


def _import(stack, organization_id, tmp_path, start, count):
    path = tmp_path / f"users-{start}.csv"
    rows = [f"restart{n}@example.com,Given{n},Family{n}" for n in range(start, start + count)]
    path.write_text("email,given_name,family_name\n" + "\n".join(rows) + "\n")
    stack.manage("import_users", "--organization", organization_id, str(path))  # queues the Cognito work


def test_the_worker_survives_a_database_restart(cluster, tmp_path, start_worker):
    stack = Stack(cluster.url, log_dir=tmp_path)  # the session's moto Cognito comes with os.environ
    organization_id, _, _ = stack.prepare_database()
    _import(stack, organization_id, tmp_path, 0, 5)
    worker = start_worker(database=cluster.url)
    _wait_synced(cluster.url, 5, 60)

    cluster.stop()
    # A failed round or two with backoff: logged, and the same process goes on.
    wait_until(lambda: worker.log.count("Database unavailable") >= 2, 30, what="two failed rounds")
    assert worker.process.poll() is None, worker.log
    cluster.start()

    _import(stack, organization_id, tmp_path, 5, 5)  # new work after the restart is done by the same process
    _wait_synced(cluster.url, 10, 90)
    assert worker.terminate() == 0
    log = worker.log
    assert "Database reachable again" in log
    assert "Traceback" not in log
    assert cluster.url not in log and "postgres@" not in log  # the error's class only, no connection details

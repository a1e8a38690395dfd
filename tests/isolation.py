"""What keeps one test process out of another's way: xdist workers of one run, and two runs at once.

A run is named by TEST_RUN_ID (scripts/test.sh sets it; otherwise the PID of the pytest process that
started the run, inherited by its xdist workers), a process by its xdist worker id. From them:
- the test database: `test_<name>_<worker>` as pytest-django names it, while no other run uses that
  name (a PostgreSQL advisory lock held for the session says so), so `--reuse-db` keeps working
  between local runs; a run that finds it taken uses `test_<name>_<run>_<worker>` and drops it at
  the end;
- Redis keys: `redis_key_prefix()` is unique to the run, the worker and the call;
- ports: `free_port()` is outside the kernel's ephemeral range, so a server that stops and starts
  again on its port (the moto Cognito server) can't find it taken by a client connection.
Temporary files go under pytest's tmp_path (per worker) in the run's TMPDIR (scripts/test.sh).
"""

import os
import random
import socket
import uuid
from pathlib import Path

RUN_ID = os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))
WORKER_ID = os.environ.get("PYTEST_XDIST_WORKER", "main")

_held_locks = []  # connections holding an advisory lock, for the life of the process


def redis_key_prefix(purpose: str = "test") -> str:
    return f"{purpose}-{RUN_ID}-{WORKER_ID}-{uuid.uuid4().hex[:12]}"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now that the kernel never hands out on its own (bind to 0, outgoing connections)."""
    low, _ = _ephemeral_range()
    candidates = list(range(10000, min(low, 65536)))
    random.shuffle(candidates)
    for port in candidates[:200]:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # everything below the range taken: any free port
        sock.bind((host, 0))
        return sock.getsockname()[1]


def claim_database_name(settings_dict: dict, stable_suffix: str | None) -> tuple[str | None, bool]:
    """(the suffix for this process's test database, whether it may be kept for --reuse-db).

    The stable name (today's, reusable) when no other run holds it, else a run-unique one."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        return stable_suffix, True  # SQLite's test database is in memory, one per process
    import psycopg

    base = settings_dict.get("TEST", {}).get("NAME") or f"test_{settings_dict['NAME']}"
    stable = f"{base}_{stable_suffix}" if stable_suffix else base
    connection = psycopg.connect(
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    held = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [f"um-test-db:{stable}"]).fetchone()[0]
    if held:
        _held_locks.append(connection)  # released when this process ends
        return stable_suffix, True
    connection.close()
    unique = f"{RUN_ID}_{WORKER_ID}" if stable_suffix else RUN_ID
    return unique, False

#!/usr/bin/env python
"""Benchmark the service against the floor of its own stack.

For each N (default 1,000 and 1,000,000) it:
  1. recreates the PostgreSQL database (default postgres://postgres@127.0.0.1:5432/bench_perf),
     migrates it, creates one organization and one API client with the operator commands;
  2. loads N users of that organization with COPY: users, provider details for every third user,
     Cognito sync rows marked synced; every tenth user is disabled (roles ["member"]). No history
     or audit rows are loaded (the read paths never touch them; the writes append to them);
  3. starts the local Cognito emulator (moto_server on a free loopback port, pool from
     `manage.py setup_local_cognito`) and the service as docs/operators.md serves it,
     `gunicorn config.wsgi:application` with the project's gunicorn.conf.py (gthread: processes x
     threads), and DJANGO_SETTINGS_MODULE=bench.settings, which adds /bench/floor;
  4. drives it with wrk (Lua scripts for the bearer header, rotating ids and POST bodies) from a
     separate process on loopback, and prints one table per N: requests/s, p50/p95/p99, the
     gunicorn workers' peak RSS (VmHWM from /proc) and each row's throughput as a ratio to the floor.

With `--cognito-latency MS`, Cognito is reached through a proxy in this process that holds each
call for MS milliseconds, and a serving table follows the first N's: GET one user idle, then
creates from 32 connections with the same reads measured alongside, alternating (two rounds) at +0 ms and at
+MS per Cognito call (creates/s kept, and read p99 against idle: the serving targets).

With `--fairness`, a fairness table follows the first N's: a second practice (B) sends one create
at a time and reads one of its users, alone and then while practice A holds 64 concurrent creates
(A's client waits Retry-After after each 503, as the README asks integrators to): B's create p99
and read p99 against their idle values, B's refusals and A's. `--fairness-only` runs it alone.

Run: `make bench`, or `.venv/bin/python bench/run.py [--quick] [--n 1000,1000000] [--duration 10]
[--cognito-latency 80] [--fairness]`.
Needs wrk (`apt-get install -y wrk`) and PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime as dt
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http import client as http_client
from http import server as http_server
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402  (the project's own driver, from .venv)

from identifiers.checks import HPII_PREFIX, luhn_check_digit  # noqa: E402  (pure, no Django)

VENV_BIN = ROOT / ".venv" / "bin"
SCOPES = "read:users create:user update:user delete:user read:audit"
COPY_BATCH = 50_000


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback only)
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def worker_pids(master_pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes (all their threads) have used so far, from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def peak_rss_mb(pids: list[int]) -> float:
    """The largest peak resident set (VmHWM) among the workers, in MB."""
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


class DelayingProxy:
    """An HTTP proxy on loopback in front of moto: every request waits `latency` seconds, then is
    forwarded (one upstream connection per client connection, keep-alive both ways). Stands in for
    a Cognito that is slower to answer, without slowing anything else."""

    _HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "server", "date"}

    def __init__(self, upstream_port: int):
        proxy = self
        self.latency = 0.0

        class Handler(http_server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.latency:
                    time.sleep(proxy.latency)
                if getattr(self, "upstream", None) is None:
                    self.upstream = http_client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy._HOP}
                self.upstream.request(self.command, self.path, body=body, headers=headers)
                response = self.upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in proxy._HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- data ---------------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def hpii(number: int) -> str:
    payload = f"{HPII_PREFIX}{number:09d}"
    return f"{payload}{luhn_check_digit(payload)}"


def _copy(cursor, table: str, columns: str, lines) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for count, line in enumerate(lines, 1):
            buffer.write(line)
            if count % COPY_BATCH == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def load_users(url: str, organization_id: str, n: int) -> float:
    """COPY n consistent users into the organization; returns the seconds it took."""
    started = time.monotonic()
    org = str(uuid.UUID(organization_id))
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=n + 3600)
    ids = [uuid.uuid4() for _ in range(n + 1)]

    def stamp(i: int) -> str:  # user i (1..n) is the i-th oldest; one second apart, so distinct
        return (base + dt.timedelta(seconds=i)).isoformat()

    def is_disabled(i: int) -> bool:
        return i % 10 == 0

    def is_provider(i: int) -> bool:  # has provider details; holds the role unless disabled
        return i % 3 == 0

    def roles(i: int) -> str:
        if is_disabled(i):
            return '["member"]'
        if is_provider(i):
            return '["provider"]'
        return '["receptionist"]' if i % 7 == 0 else '["member"]'

    def user_lines():
        for i in range(1, n + 1):
            created = stamp(i)
            disabled_at = stamp(i) if is_disabled(i) else "\\N"
            status = "disabled" if is_disabled(i) else "active"
            yield (
                f"!\t\\N\tf\t{ids[i]}\t{org}\tuser{i}@bench.example\tGiven{i}\tFamily{i}\t\t\tpms-{i}\t"
                f"{roles(i)}\t{status}\t{disabled_at}\tf\t{created}\t{created}\n"
            )

    def details_lines():
        for i in range(3, n + 1, 3):
            created = stamp(i)
            dob = (dt.date(1950, 1, 1) + dt.timedelta(days=i % 15000)).isoformat()
            yield (
                f"{ids[i]}\t{org}\tGiven{i}\tFamily{i}\t{dob}\tF\t\t{hpii(i)}\tM\t{1000000 + i % 9000000:07d}\t"
                f"MBBS\t\t\t\t{created}\t{created}\tunverified\t\n"
            )

    def sync_lines():
        for i in range(1, n + 1):
            created = stamp(i)
            groups = json.loads(roles(i))
            desired = json.dumps(
                {
                    "email": f"user{i}@bench.example",
                    "given_name": f"Given{i}",
                    "family_name": f"Family{i}",
                    "organization_id": org,
                    "groups": [g for g in groups if g != "member"],
                    "enabled": not is_disabled(i),
                }
            )
            yield f"{ids[i]}\t{desired}\t1\t1\tsynced\t0\t\t{created}\t\\N\t\\N\t{created}\t{created}\n"

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        # Building the secondary indexes once after the load is several times faster than
        # maintaining them row by row (the trigram GIN index above all). Same definitions, rebuilt.
        secondary = cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts_user' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'accounts_user'::regclass)"
        ).fetchall()
        for name, _ in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        _copy(
            cursor,
            "accounts_user",
            "password, last_login, is_superuser, id, organization_id, email, given_name, family_name, title, "
            "phone, partner_user_id, roles, status, disabled_at, is_staff, created_at, updated_at",
            user_lines(),
        )
        _copy(
            cursor,
            "accounts_providerdetails",
            "user_id, organization_id, given_name, family_name, date_of_birth, sex, phone, hpii_number, "
            "prescriber_type, prescriber_number, qualifications, provider_number, ahpra_number, "
            "hospital_provider_number, created_at, updated_at, verification_status, verification_message",
            details_lines(),
        )
        _copy(
            cursor,
            "accounts_cognitosync",
            "user_id, desired, desired_version, synced_version, state, attempts, last_error, next_attempt_at, "
            "claimed_until, claim_token, created_at, updated_at",
            sync_lines(),
        )
        conn.commit()  # the deferred foreign-key checks run here; CREATE INDEX can't run before them
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in secondary:
            cursor.execute(definition)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE accounts_user")
        conn.execute("VACUUM ANALYZE accounts_providerdetails")
        conn.execute("VACUUM ANALYZE accounts_cognitosync")
    return time.monotonic() - started


def sample_ids(url: str, organization_id: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(ids to read, active ids to update, active ids whose roles to set, active ids to disable), disjoint
    writes."""
    with psycopg.connect(url) as conn:
        read = [str(r[0]) for r in conn.execute(
            "SELECT id FROM accounts_user WHERE organization_id = %s ORDER BY random() LIMIT 1000", [organization_id]
        )]
        active = [str(r[0]) for r in conn.execute(
            "SELECT id FROM accounts_user WHERE organization_id = %s AND status = 'active' "
            "ORDER BY random() LIMIT 9000",
            [organization_id],
        )]
    third = len(active) // 3
    return read, active[:third], active[third:2 * third], active[2 * third:]


def deep_cursor(url: str, organization_id: str, position: int) -> str:
    """DRF's cursor (rest_framework.pagination.CursorPagination.encode_cursor) for the page that
    starts after the `position`-th newest user: base64 of the query string "p=<its created_at>".
    Built directly, because walking there 100 at a time would take longer than the benchmark."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        created_at = conn.execute(
            "SELECT created_at FROM accounts_user WHERE organization_id = %s "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            [organization_id, position - 1],
        ).fetchone()[0]
    # str() of an aware datetime, as DRF's _get_position_from_instance writes it.
    querystring = urllib.parse.urlencode({"p": str(created_at.astimezone(dt.UTC))})
    return base64.b64encode(querystring.encode("ascii")).decode("ascii")


# --- load generation ----------------------------------------------------------------------------

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def lua_get(token: str, paths: list[str]) -> str:
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
local paths = {lua_list(paths)}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
""" + LUA_DONE


def lua_create(token: str, path: str, tag: str, hpii_offset: int = 0) -> str:
    # Unique email and a valid, unique HPI-I (Luhn) per request; runs in one deployment take
    # different offsets (10 million apart) so their HPI-Is never meet.
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
local i = 0
local function luhn_check(payload)
  local sum, double = 0, true
  for k = #payload, 1, -1 do
    local d = tonumber(payload:sub(k, k))
    if double then d = d * 2; if d > 9 then d = d - 9 end end
    sum = sum + d
    double = not double
  end
  return (10 - sum % 10) % 10
end
request = function()
  i = i + 1
  local payload = string.format("{HPII_PREFIX}%09d", {900000000 + hpii_offset} + i)
  local body = string.format(
    '{{"given_name":"Bench","family_name":"Provider","email":"bench-{tag}-%d@bench.example",' ..
    '"access_roles":["provider"],"date_of_birth":"1980-01-01","sex":"F","hpii_number":"%s%d",' ..
    '"prescriber_type":"M","prescriber_number":"1234567","qualifications":"MBBS"}}',
    i, payload, luhn_check(payload))
  return wrk.format("POST", "{path}", nil, body)
end
""" + LUA_DONE


LUA_BACK_OFF = r"""
local refused = 0
response = function(status, headers, body)
  if status == 503 or status == 429 then refused = refused + tonumber(headers["Retry-After"] or "1") end
end
delay = function()
  if refused > 0 then
    refused = refused - 1
    return 1000
  end
  return 0
end
"""


def lua_create_backing_off(token: str, path: str, tag: str, hpii_offset: int = 0) -> str:
    """lua_create, whose client waits Retry-After seconds before its next request after a 503 or a 429
    (wrk runs one Lua state for all its connections: each refusal delays one next request)."""
    return lua_create(token, path, tag, hpii_offset) + LUA_BACK_OFF


def lua_put(token: str, paths: list[str], bodies: list[str]) -> str:
    """PUT paths in turn; each pass over the list sends the next body, so every request changes something."""
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
local paths = {lua_list(paths)}
local bodies = {lua_list(bodies)}
local i = 0
request = function()
  local pass = math.floor(i / #paths)
  local path = paths[(i % #paths) + 1]
  i = i + 1
  return wrk.format("PUT", path, nil, bodies[(pass % #bodies) + 1])
end
""" + LUA_DONE


def run_wrk(base_url: str, script: str, duration: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        result = subprocess.run(  # noqa: S603
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", path, base_url],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=duration + 60,
        )
    finally:
        os.unlink(path)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH "):
            stats = json.loads(line[len("BENCH "):])
            stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
            # Refusals (503 server_busy, 429) come back fast: a row's writes are its 2xx answers.
            stats["ok_rps"] = (stats["requests"] - stats["non2xx"]) / (stats["duration_us"] / 1e6)
            return stats
    raise SystemExit(f"wrk failed:\n{result.stdout}\n{result.stderr}")


def http(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


# --- one N --------------------------------------------------------------------------------------


def bench_one(n: int, args, cognito_env: dict, proxy=None, serving_n=None) -> list[dict]:
    url = args.database_url
    print(f"\n== N = {n:,} ==", flush=True)
    recreate_database(url)
    env = {
        **os.environ,
        **cognito_env,
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + uuid.uuid4().hex,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_DEBUG": "false",
        # Several processes with DEBUG off start only over a shared cache (core/limits.py), as deployed.
        "DJANGO_CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/5"),
        "DJANGO_SETTINGS_MODULE": "bench.settings",  # the product plus /bench/floor
        # The throttle still runs on every request; its budget is raised so the load isn't refused.
        "API_THROTTLE_RATE": "100000000/min",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput", "-v0")
    org_id = manage(env, "create_organization", "--name", "Bench Practice").strip().splitlines()[-1].strip()
    client = json.loads(
        manage(env, "create_api_client", "--organization", org_id, "--name", "bench", "--scopes", SCOPES, "--json")
    )
    seconds = load_users(url, org_id, n)
    print(f"loaded {n:,} users (COPY + VACUUM ANALYZE) in {seconds:.1f} s", flush=True)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = open(ROOT / "var" / f"bench-gunicorn-{n}.log", "w")  # noqa: SIM115
    gunicorn = subprocess.Popen(  # noqa: S603
        [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],  # gunicorn.conf.py
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"{base_url}/healthz")
        token = issue_token(base_url, client)
        users = f"/v1/organizations/{org_id}/users"
        read_ids, update_ids, role_ids, disable_ids = sample_ids(url, org_id)
        cursor = deep_cursor(url, org_id, n // 2)
        deep_page = n // 2 // 50 + 1
        # Sanity: every endpoint answers as the contract says before anything is timed.
        status, first = http("GET", f"{base_url}{users}", token)
        assert status == 200 and len(first["results"]) == 50, status
        status, deep = http("GET", f"{base_url}{users}?cursor={urllib.parse.quote(cursor)}", token)
        assert status == 200 and len(deep["results"]) == 50, status
        assert http("GET", f"{base_url}/bench/floor?id={read_ids[0]}")[0] == 200
        assert http("GET", f"{base_url}/healthz")[0] == 200
        assert http("GET", f"{base_url}{users}/{read_ids[0]}", token)[0] == 200

        rows = []
        if args.fairness_only:
            FAIRNESS.extend(measure_fairness(base_url, env, token, users, args))
            return rows
        if args.serving_only and proxy is not None:
            SERVING.extend(measure_serving(base_url, token, users, read_ids, proxy, args, gunicorn.pid))
            return rows

        def measure(label: str, script: str, note: str = "") -> dict:
            workers = worker_pids(gunicorn.pid)
            cpu_before = cpu_seconds(workers)
            stats = run_wrk(base_url, script, args.duration, args.connections)
            cpu_ms = (cpu_seconds(workers) - cpu_before) * 1000 / max(stats["requests"], 1)
            stats.update(label=label, rss=peak_rss_mb(workers), note=note, cpu_ms=cpu_ms)
            rows.append(stats)
            print(f"  {label:<34} {stats['rps']:8.1f} req/s  p50 {stats['p50'] / 1000:6.1f} ms  "
                  f"CPU {cpu_ms:5.1f} ms/request", flush=True)
            return stats

        floor_paths = [f"/bench/floor?id={i}" for i in read_ids]
        run_wrk(base_url, lua_get(token, floor_paths), 2, args.connections)  # warm-up
        # The machine is shared and noisy: the floor is measured between the reads, and each read
        # is compared with the floors right before and after it.
        measure("GET /healthz", lua_get(token, ["/healthz"]))
        measure("floor (plain Django, 1 query)", lua_get(token, floor_paths))
        measure("GET list, 50, first page", lua_get(token, [users]))
        measure("floor", lua_get(token, floor_paths))
        measure(
            f"GET list, 50, page {deep_page:,}",
            lua_get(token, [f"{users}?cursor={urllib.parse.quote(cursor)}"]),
        )
        measure("floor", lua_get(token, floor_paths))
        measure("GET detail", lua_get(token, [f"{users}/{i}" for i in read_ids]))
        measure("floor", lua_get(token, floor_paths))
        measure("GET /healthz", lua_get(token, ["/healthz"]))
        measure("POST create provider", lua_create(token, users, uuid.uuid4().hex[:8]))
        measure(
            "PUT update (title)",
            lua_put(token, [f"{users}/{i}" for i in update_ids], ['{"title":"Dr"}', '{"title":"Prof"}']),
        )
        measure(
            "PUT roles",
            lua_put(token, [f"{users}/{i}/roles" for i in role_ids],
                    ['{"access_roles":["admin"]}', '{"access_roles":["receptionist"]}']),
        )
        stats = measure("PUT disable", lua_put(token, [f"{users}/{i}/disable" for i in disable_ids], [""]))
        if stats["requests"] > len(disable_ids):
            stats["note"] = f"only {len(disable_ids)} distinct users: the rest were no-op repeats"
        if proxy is not None and n == serving_n:
            SERVING.extend(measure_serving(base_url, token, users, read_ids, proxy, args, gunicorn.pid))
        if args.fairness and n == serving_n:
            FAIRNESS.extend(measure_fairness(base_url, env, token, users, args))
        return rows
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        log.close()


WRITERS = 32  # concurrent creates in the serving rows
READERS = 4
SERVING_ROUNDS = 2
SERVING: list[dict] = []


def measure_serving(base_url, token, users, read_ids, proxy, args, master_pid) -> list[dict]:
    """GET one user idle; then creates from WRITERS connections with the reads alongside, at +0 ms
    and at +cognito_latency ms per Cognito call."""
    reads = lua_get(token, [f"{users}/{i}" for i in read_ids])
    rows = []
    proxy.latency = 0.0
    idle = run_wrk(base_url, reads, args.duration, READERS)
    idle.update(label="GET one user, idle", latency_ms=0, rss=peak_rss_mb(worker_pids(master_pid)))
    rows.append(idle)
    print(f"  serving: idle read p99 {idle['p99'] / 1000:.1f} ms", flush=True)
    # Alternating rounds (0, MS, 0, MS): on a shared machine the capacity drifts within a run, and
    # a drift would otherwise count against whichever latency was measured second.
    for offset, latency_ms in enumerate((0, args.cognito_latency) * SERVING_ROUNDS, start=1):
        proxy.latency = latency_ms / 1000
        # The writers wait Retry-After after a refusal, as the README asks integrators to.
        creates = lua_create_backing_off(token, users, f"serve{offset}-{uuid.uuid4().hex[:6]}",
                                         hpii_offset=offset * 10_000_000)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            writing = pool.submit(run_wrk, base_url, creates, args.duration, WRITERS)
            time.sleep(1)  # the writers are up to speed before the reads are timed
            reading = pool.submit(run_wrk, base_url, reads, args.duration - 2, READERS)
            write_stats, read_stats = writing.result(), reading.result()
        rows.append({"label": f"POST create, {WRITERS} connections", "latency_ms": latency_ms,
                     "rss": peak_rss_mb(worker_pids(master_pid)), **write_stats})
        rows.append({"label": "GET one user, during the creates", "latency_ms": latency_ms,
                     "rss": peak_rss_mb(worker_pids(master_pid)), **read_stats})
        print(f"  serving: +{latency_ms} ms: {write_stats['rps']:.1f} creates/s, read p99 "
              f"{read_stats['p99'] / 1000:.1f} ms", flush=True)
    proxy.latency = 0.0
    return rows


def print_serving(rows: list[dict], latency_ms: int) -> None:
    sizing = _gunicorn_sizing()
    print(f"\nServing: gunicorn.conf.py ({sizing}); Cognito through a proxy adding 0 or {latency_ms} ms to "
          f"every call; wrk -t1, {ARGS.duration} s per row, reads from {READERS} connections\n")
    print("| row | Cognito +ms | req/s | 2xx/s | p50 ms | p95 ms | p99 ms | worker peak RSS MB | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['latency_ms']} | {r['rps']:.1f} | {r['ok_rps']:.1f} | {r['p50'] / 1000:.1f} | "
              f"{r['p95'] / 1000:.1f} | {r['p99'] / 1000:.1f} | {r['rss']:.0f} | {r['non2xx'] + r['socket_errors']} |")
    idle = rows[0]

    def mean(label, latency, field):
        values = [r[field] for r in rows[1:] if r["label"].startswith(label) and r["latency_ms"] == latency]
        return sum(values) / len(values)

    kept = mean("POST", latency_ms, "ok_rps") / mean("POST", 0, "ok_rps")
    read_ratio = mean("GET", latency_ms, "p99") / max(idle["p99"], 1)
    print(f"\ncreates answered 2xx a second at +{latency_ms} ms over +0 ms (means of {SERVING_ROUNDS} rounds each): "
          f"{kept:.2f} "
          f"(target >= 0.7: {'met' if kept >= 0.7 else 'missed'})")
    print(f"read p99 during the creates at +{latency_ms} ms (mean) over idle p99: {read_ratio:.1f} "
          f"(target <= 10: {'met' if read_ratio <= 10 else 'missed'})")
    sys.stdout.flush()


FLOODERS = 64  # practice A's concurrent creates in the fairness rows
FAIRNESS: list[dict] = []


def measure_fairness(base_url, env, token_a, users_a, args) -> list[dict]:
    """Practice B's creates (one at a time) and reads (one connection), alone, then while practice A
    holds FLOODERS concurrent creates."""
    org_b = manage(env, "create_organization", "--name", "Bench Practice B").strip().splitlines()[-1].strip()
    client_b = json.loads(
        manage(env, "create_api_client", "--organization", org_b, "--name", "bench B", "--scopes", SCOPES, "--json")
    )
    token_b = issue_token(base_url, client_b)
    users_b = f"/v1/organizations/{org_b}/users"
    reader = {"given_name": "Read", "family_name": "Me", "email": f"read-me-{uuid.uuid4().hex[:8]}@b.example"}
    status, created = http("POST", f"{base_url}{users_b}", token_b, reader)
    assert status == 201, status
    reads_b = lua_get(token_b, [f"{users_b}/{created['id']}"])
    seconds = args.duration

    def b_alone_and_alongside(label: str, offset: int, flood: bool) -> list[dict]:
        creates_b = lua_create(token_b, users_b, f"b{offset}-{uuid.uuid4().hex[:6]}", hpii_offset=offset * 10_000_000)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            flooding = None
            if flood:
                creates_a = lua_create_backing_off(token_a, users_a, f"a{offset}-{uuid.uuid4().hex[:6]}",
                                                   hpii_offset=(offset + 1) * 10_000_000)
                flooding = pool.submit(run_wrk, base_url, creates_a, seconds + 2, FLOODERS)
                time.sleep(2)  # A's connections are all waiting or refused before B is timed
            creating = pool.submit(run_wrk, base_url, creates_b, seconds, 1)
            reading = pool.submit(run_wrk, base_url, reads_b, seconds, 1)
            rows = [{"label": f"B: POST create, 1 connection, {label}", **creating.result()},
                    {"label": f"B: GET one user, 1 connection, {label}", **reading.result()}]
            if flooding is not None:
                rows.insert(0, {"label": f"A: POST create, {FLOODERS} connections (waits Retry-After)",
                                **flooding.result()})
        return rows

    rows = b_alone_and_alongside("idle", 1, flood=False)
    rows += b_alone_and_alongside(f"during A's {FLOODERS}", 2, flood=True)
    for r in rows:
        print(f"  fairness: {r['label']}: {r['rps']:.1f} req/s, p99 {r['p99'] / 1000:.1f} ms, "
              f"non-2xx {r['non2xx']}", flush=True)
    return rows


def print_fairness(rows: list[dict]) -> None:
    print(f"\nFairness: gunicorn.conf.py ({_gunicorn_sizing()}), API_CONCURRENT_WRITES and "
          f"API_WRITES_PER_ORGANIZATION at their defaults; wrk -t1, {ARGS.duration} s per B row\n")
    print("| row | requests | req/s | p50 ms | p95 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['requests']} | {r['rps']:.1f} | {r['p50'] / 1000:.1f} | {r['p95'] / 1000:.1f} | "
              f"{r['p99'] / 1000:.1f} | {r['non2xx'] + r['socket_errors']} |")
    by_label = {r["label"].split(",")[0] + (" flood" if "during" in r["label"] else ""): r for r in rows}
    create_ratio = by_label["B: POST create flood"]["p99"] / max(by_label["B: POST create"]["p99"], 1)
    read_ratio = by_label["B: GET one user flood"]["p99"] / max(by_label["B: GET one user"]["p99"], 1)
    b_refused = sum(r["non2xx"] + r["socket_errors"] for r in rows if r["label"].startswith("B"))
    a = next(r for r in rows if r["label"].startswith("A"))
    print(f"\nB's create p99 during A's flood over idle: {create_ratio:.1f} "
          f"(target <= 2: {'met' if create_ratio <= 2 else 'missed'}); B's read p99: {read_ratio:.1f}")
    print(f"B refused: {b_refused} (target 0); A: {a['requests'] - a['non2xx']} answered 2xx, "
          f"{a['non2xx']} refused (503 server_busy)")
    sys.stdout.flush()


def issue_token(base_url: str, client: dict) -> str:
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    token_request = urllib.request.Request(  # noqa: S310
        f"{base_url}/v1/oauth/token", data=b"grant_type=client_credentials", method="POST",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(token_request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["access_token"]


def _gunicorn_sizing() -> str:
    result = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "gunicorn"), "--print-config", "config.wsgi:application"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    config = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    config = {k.strip(): v.strip() for k, v in config.items()}
    return (f"{config.get('workers', '?')} processes x {config.get('threads', '?')} threads, "
            f"{config.get('worker_class', '?')}")


def floor_for(rows: list[dict], index: int) -> float:
    """The floor a row is compared with: the mean of the floor runs right before and after it
    (reads), or the last floor run (writes, measured after all the floors)."""
    before = [r["rps"] for r in rows[:index] if r["label"].startswith("floor")][-1:]
    after = [r["rps"] for r in rows[index + 1:] if r["label"].startswith("floor")][:1]
    adjacent = before + after
    return sum(adjacent) / len(adjacent)


def healthz_rps(rows: list[dict]) -> float:
    """/healthz's throughput in this run: the mean of its runs (one before the reads, one after)."""
    values = [r["rps"] for r in rows if r["label"] == "GET /healthz"]
    return sum(values) / len(values)


CPU_TARGETS_MS = {"POST create provider": 8, "PUT disable": 8}
HEALTHZ_TARGETS = {"GET detail": 0.6, "GET list, 50, first page": 0.45, "GET list, 50, page": 0.45}


def print_table(n: int, rows: list[dict]) -> None:
    print(f"\nN = {n:,} users   (wrk -t1 -c{ARGS.connections} -d{ARGS.duration}s per row; gunicorn.conf.py: "
          f"{_gunicorn_sizing()}; ratio = req/s over the adjacent floor runs' req/s, or over the mean of the "
          f"/healthz runs; CPU = the gunicorn processes' user + system CPU over the row, per request)\n")
    print("| endpoint | req/s | p50 ms | p95 ms | p99 ms | ratio to floor | ratio to /healthz | server CPU ms "
          "| worker peak RSS MB | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    health = healthz_rps(rows)
    for index, r in enumerate(rows):
        note = f" ({r['note']})" if r["note"] else ""
        plain = r["label"].startswith("floor") or r["label"] == "GET /healthz"
        ratio = "" if plain else f"{r['rps'] / floor_for(rows, index):.2f}"
        to_health = "" if r["label"] == "GET /healthz" else f"{r['rps'] / health:.2f}"
        print(
            f"| {r['label']}{note} | {r['rps']:.1f} | {r['p50'] / 1000:.1f} | {r['p95'] / 1000:.1f} | "
            f"{r['p99'] / 1000:.1f} | {ratio} | {to_health} | {r['cpu_ms']:.1f} | {r['rss']:.0f} | "
            f"{r['non2xx'] + r['socket_errors']} |"
        )
    print()
    for r in rows:
        cpu_target = CPU_TARGETS_MS.get(r["label"])
        if cpu_target is not None:
            verdict = "met" if r["cpu_ms"] <= cpu_target else "missed"
            print(f"{r['label']}: {r['cpu_ms']:.1f} ms of server CPU (target <= {cpu_target}: {verdict})")
        health_target = next((t for label, t in HEALTHZ_TARGETS.items() if r["label"].startswith(label)), None)
        if health_target is not None:
            ratio = r["rps"] / health
            verdict = "met" if ratio >= health_target else "missed"
            print(f"{r['label']}: {ratio:.2f} of /healthz (target >= {health_target}: {verdict})")
    sys.stdout.flush()


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,1000000", help="comma-separated user counts (default 1000,1000000)")
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only")
    parser.add_argument("--duration", type=int, default=10, help="seconds per row (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument(
        "--cognito-latency", type=int, default=None, metavar="MS",
        help="route Cognito through a proxy and add the serving table: creates from 32 connections at +0 and "
             "+MS ms per Cognito call, with reads measured alongside (run after the first N)",
    )
    parser.add_argument(
        "--serving-only", action="store_true",
        help="with --cognito-latency: only the serving table (about 1.5 minutes instead of 7)",
    )
    parser.add_argument(
        "--fairness", action="store_true",
        help="add the fairness table: practice B's creates and reads alone and during practice A's 64 concurrent "
             "creates (run after the first N)",
    )
    parser.add_argument("--fairness-only", action="store_true", help="only the fairness table (about a minute)")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_perf"),
        help="the database to (re)create; everything in it is dropped",
    )
    ARGS = args = parser.parse_args()
    if args.serving_only and args.cognito_latency is None:
        parser.error("--serving-only needs --cognito-latency MS")
    one_size = args.quick or args.serving_only or args.fairness_only
    sizes = [1000] if one_size else [int(x.replace("_", "")) for x in args.n.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    (ROOT / "var").mkdir(exist_ok=True)

    cognito_port = free_port()
    endpoint = f"http://127.0.0.1:{cognito_port}"
    cognito_env = {
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "ap-southeast-2",
        "AWS_DEFAULT_REGION": "ap-southeast-2", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": endpoint,
    }
    moto_log = open(ROOT / "var" / "bench-moto.log", "w")  # noqa: SIM115
    moto = subprocess.Popen(  # noqa: S603
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(cognito_port)],
        stdout=moto_log, stderr=subprocess.STDOUT,
    )
    proxy = None
    try:
        wait_http(endpoint)
        pool_env = {**os.environ, **cognito_env, "DJANGO_DEBUG": "true"}
        cognito_env["COGNITO_USER_POOL_ID"] = manage(pool_env, "setup_local_cognito", "--name", "bench").strip()
        if args.cognito_latency is not None:
            proxy = DelayingProxy(cognito_port)
            cognito_env["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"] = f"http://127.0.0.1:{proxy.port}"
        results = [(n, bench_one(n, args, cognito_env, proxy, sizes[0])) for n in sizes]
    finally:
        if proxy is not None:
            proxy.close()
        moto.terminate()
        moto.wait(timeout=30)
        moto_log.close()
    for n, rows in results:
        if rows:
            print_table(n, rows)
    if SERVING:
        print_serving(SERVING, args.cognito_latency)
    if FAIRNESS:
        print_fairness(FAIRNESS)
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"\np50 at N = {large[0]:,} over p50 at N = {small[0]:,} (target <= 1.5 for reads):")
        for a, b in zip(small[1], large[1], strict=True):
            if not a["label"].startswith("floor") and a["label"] != "GET /healthz":
                print(f"  {b['label']:<34} {b['p50'] / max(a['p50'], 1):.2f}")
        floors = [[r["p50"] for r in rows if r["label"].startswith("floor")] for _, rows in (small, large)]
        growth = (sum(floors[1]) / len(floors[1])) / (sum(floors[0]) / len(floors[0]))
        print(f"  {'floor (mean of its runs)':<34} {growth:.2f}")


ARGS = None

if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Webhook lag: commit-to-receipt latency at a steady rate of changes, with real workers running.

    .venv/bin/python bench/webhook_lag.py [--rate 50] [--duration 20] [--workers 1] [--organizations 1]
                                          [--interval WEBHOOK_POLL_SECONDS]
                                          [--database-url postgres://postgres@127.0.0.1:5432/webhooks]

Migrates the database (it is not dropped; the bench's organizations are new each run), makes
`--organizations` organizations, each with one webhook endpoint (user.updated) pointing at a
threaded receiver in this process on loopback, and 50 users spread over them. Starts `--workers`
`manage.py deliver_webhooks --loop` processes (as in production: each with
WEBHOOK_DELIVERY_CONCURRENCY slots), then changes one user's title `--rate` times a second for
`--duration` seconds through `user_update` (each change commits its audit event, the webhook event
and its delivery in one transaction), the users (and so the organizations) in turn. The receiver
verifies every signature with `standardwebhooks` and notes when each change arrived; commit time is
taken right after the service call returns (the commit), on the same monotonic clock. Prints
p50/p95/p99/max of commit-to-receipt, deliveries received, missing and duplicated, and whether any
endpoint received one user's changes out of sequence order.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def receive(conn):
    """The receiver, in a process of its own (so the bench's own Python does not hold it up): sends its
    port, takes the endpoints' secrets, then answers every POST, verifying its signature and noting
    when each change arrived (time.monotonic is one clock for every process on the machine)."""
    from standardwebhooks import Webhook

    received: dict[str, float] = {}
    last_sequence: dict[str, int] = {}  # user id -> the sequence last received for it
    out_of_order, duplicates, bad_signatures = [], [], []
    lock = threading.Lock()
    verifier: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.monotonic()
            try:
                organization_id = json.loads(body)["data"]["organization_id"]
                event = verifier[organization_id].verify(body, dict(self.headers))
            except Exception:
                bad_signatures.append(self.headers.get("webhook-id"))
                event = json.loads(body)
            title = (event["data"].get("user") or {}).get("title", "")
            user_id, sequence = event["data"].get("user_id"), event["data"]["sequence"]
            with lock:
                if title in received:
                    duplicates.append(title)
                else:
                    received[title] = arrived
                if sequence < last_sequence.get(user_id, 0):
                    out_of_order.append(title)
                last_sequence[user_id] = max(sequence, last_sequence.get(user_id, 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    conn.send(server.server_address[1])
    verifier.update({organization: Webhook(secret) for organization, secret in conn.recv().items()})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        ask = conn.recv()
        with lock:
            if ask == "count":
                conn.send(len(received))
            else:
                conn.send((dict(received), list(duplicates), list(bad_signatures), list(out_of_order)))
                return


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of changes (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="deliver_webhooks processes (default 1)")
    parser.add_argument("--organizations", type=int, default=1, help="organizations, one endpoint each (default 1)")
    parser.add_argument(
        "--interval", type=float, default=None, help="the workers' idle poll, seconds (default WEBHOOK_POLL_SECONDS)"
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/webhooks")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "COGNITO_SYNC_INLINE": "false",  # no Cognito here: the outbox rows just wait
        "DJANGO_LOG_LEVEL": "ERROR",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from accounts.services import user_create, user_update
    from audit.context import Actor
    from organizations.services import organization_create
    from webhooks.services import webhook_endpoint_create

    receiver_end, bench_end = multiprocessing.get_context("spawn").Pipe()
    receiver = multiprocessing.get_context("spawn").Process(target=receive, args=(receiver_end,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{bench_end.recv()}/hooks"

    run = uuid.uuid4().hex[:8]
    secrets = {}  # organization id -> its endpoint's signing secret
    actor = Actor.system("bench")
    organizations = [
        organization_create(actor=Actor.system("webhook_lag"), name=f"Webhook bench {run} {n}")
        for n in range(args.organizations)
    ]
    users = [
        user_create(
            organization=organizations[n % len(organizations)],
            actor=actor,
            email=f"bench{n}-{run}@bench.example",
            given_name="B",
            family_name="N",
        )
        for n in range(max(50, len(organizations)))
    ]
    for organization in organizations:
        _, secret = webhook_endpoint_create(
            organization=organization, actor=actor, url=url, events=["user.updated"], description="bench"
        )
        secrets[str(organization.pk)] = secret
    bench_end.send(secrets)  # the receiver answers from now on

    command = [sys.executable, "manage.py", "deliver_webhooks", "--loop"]
    if args.interval is not None:
        command += ["--interval", str(args.interval)]
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)  # noqa: S603 (our own manage.py)
        for _ in range(args.workers)
    ]
    # Up and idle: each worker holds a connection to the bench's database once its first pass has run
    # (on a busy machine starting Django takes well over the few seconds one might guess).
    from django.db import connection

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= args.workers:
                break
        time.sleep(0.2)
    time.sleep(1)
    idle_cpu = sum(_cpu_seconds(worker.pid) for worker in workers)  # their start-up, not the deliveries

    committed: dict[str, float] = {}
    total = int(args.rate * args.duration)
    start = time.monotonic()
    late = 0
    for n in range(total):
        due = start + n / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
        title = f"T{n}-{run}"
        user_update(user=users[n % len(users)], actor=actor, data={"title": title})
        committed[title] = time.monotonic()
    elapsed = time.monotonic() - start

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        bench_end.send("count")
        if bench_end.recv() >= total:
            break
        time.sleep(0.1)
    workers_cpu = sum(_cpu_seconds(worker.pid) for worker in workers) - idle_cpu
    bench_end.send("results")
    received, duplicates, bad_signatures, out_of_order = bench_end.recv()
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.communicate(timeout=30)
    receiver.terminate()

    lags = [(received[t] - committed[t]) * 1000 for t in committed if t in received]
    print(f"changes: {total} in {elapsed:.1f} s ({total / elapsed:.1f}/s; {late} started late)")
    from django.conf import settings

    interval = settings.WEBHOOK_POLL_SECONDS if args.interval is None else args.interval
    print(
        f"workers: {args.workers} x {settings.WEBHOOK_DELIVERY_CONCURRENCY} slots, organizations (one endpoint each): "
        f"{args.organizations}, idle poll: {interval:g} s"
    )
    print(
        f"received: {len(lags)}, missing: {total - len(lags)}, duplicated: {len(duplicates)}, "
        f"bad signatures: {len(bad_signatures)}, a user's changes out of order: {len(out_of_order)}"
    )
    print(f"workers' CPU: {workers_cpu:.1f} s, {workers_cpu * 1000 / max(1, len(lags)):.2f} ms per delivery")
    if lags:
        print(
            "commit-to-receipt ms: "
            f"p50 {percentile(lags, 50):.0f}, p95 {percentile(lags, 95):.0f}, p99 {percentile(lags, 99):.0f}, "
            f"max {max(lags):.0f}, mean {statistics.mean(lags):.0f}"
        )
    return 0 if len(lags) == total and not bad_signatures and not duplicates else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Webhook lag: commit-to-receipt latency at a steady rate of changes, with real workers running.

    .venv/bin/python bench/webhook_lag.py [--rate 50] [--duration 20] [--workers 2] [--organizations 10]
                                          [--change service|audit] [--producers N] [--worker run_worker]
                                          [--profile DIR]
                                          [--database-url postgres://postgres@127.0.0.1:5432/webhooks]

Migrates the database (it is not dropped; the bench's organizations are new each run), makes
`--organizations` organizations, each with one webhook endpoint (user.updated) pointing at a
threaded receiver on loopback in a process of its own, and at least 50 users spread over them.
Starts `--workers` worker processes (`manage.py run_worker` as in production, every job running,
or `deliver_webhooks --loop`), each with WEBHOOK_DELIVERY_CONCURRENCY slots, then `--producers`
processes make `--rate` changes a second between them for `--duration` seconds, the users (and so
the organizations) in turn, each user always from one producer. A change is `user_update` of the
user's title (`--change service`: the user's row lock, history, audit event, webhook event and
delivery in one transaction) or only its audit event (`--change audit`: the audit row, the webhook
event and its delivery, so a loaded machine can reach higher rates). The producers run in processes
of their own so their CPU is not the measuring process's; commit time is taken right after each
change's transaction returns, on the machine's monotonic clock, which the receiver reads too. The
receiver verifies every signature with `standardwebhooks`. Prints p50/p95/p99/max of
commit-to-receipt, deliveries received, missing and duplicated, whether any endpoint received one
user's changes out of sequence order, and the workers' CPU per delivery.
"""

from __future__ import annotations

import argparse
import json
import math
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
SPAWN = multiprocessing.get_context("spawn")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mark(event: dict) -> str:
    """The change's own title, which the bench wrote into it: the key of a change in every process."""
    return (event["data"].get("changes") or {}).get("title", {}).get("to", "")


def receive(conn):
    """The receiver: sends its port, takes the endpoints' secrets, then answers every POST, verifying
    its signature and noting when each change arrived."""
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
            title = _mark(event)
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


def produce(conn, env: dict, change: str, user_ids: list, changes: list):
    """One producer: `changes` is [(n, due offset in seconds, user index)]. Says it is ready, takes the
    start time, makes each change at start + offset; sends back {title: commit time} and how many
    started late."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import transaction

    from accounts.models import User
    from accounts.services import user_update
    from audit.context import Actor
    from audit.services import audit_event_record

    actor = Actor.system("bench")
    users = list(User.objects.filter(pk__in=user_ids))
    by_pk = {user.pk: user for user in users}
    users = [by_pk[pk] for pk in user_ids]
    run = conn.recv()
    conn.send("ready")
    start = conn.recv()
    committed, late = {}, 0
    for n, offset, index in changes:
        pause = start + offset - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
        title = f"T{n}-{run}"
        user = users[index]
        if change == "service":
            user_update(user=user, actor=actor, data={"title": title})
        else:
            with transaction.atomic():
                audit_event_record(
                    action="user.updated",
                    actor=actor,
                    organization_id=user.organization_id,
                    user_id=user.pk,
                    changes={"title": {"from": "", "to": title}},
                )
        committed[title] = time.monotonic()
    conn.send((committed, late, time.monotonic() - start))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of changes (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--organizations", type=int, default=10, help="organizations, one endpoint each (default 10)")
    parser.add_argument(
        "--change",
        choices=("service", "audit"),
        default="service",
        help="user_update (default), or only the audit event with its webhook event and delivery",
    )
    parser.add_argument(
        "--producers", type=int, default=None, help="processes making the changes (default 1 per 100/s, at least 1)"
    )
    parser.add_argument(
        "--worker",
        choices=("run_worker", "deliver_webhooks"),
        default="run_worker",
        help="run_worker (every job, default) or deliver_webhooks --loop",
    )
    parser.add_argument("--profile", metavar="DIR", help="run each worker under cProfile, writing DIR/worker-N.prof")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/webhooks")
    args = parser.parse_args()
    producers = args.producers or max(1, math.ceil(args.rate / 100))

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "COGNITO_SYNC_INLINE": "false",  # no Cognito here: the bench's sync rows are put off below
        "DJANGO_LOG_LEVEL": "ERROR",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import CognitoSync
    from accounts.services import user_create
    from audit.context import Actor
    from organizations.services import organization_create
    from webhooks.services import webhook_endpoint_create

    receiver_end, bench_end = SPAWN.Pipe()
    receiver = SPAWN.Process(target=receive, args=(receiver_end,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{bench_end.recv()}/hooks"

    run = uuid.uuid4().hex[:8]
    secrets = {}  # organization id -> its endpoint's signing secret
    actor = Actor.system("bench")
    organizations = [
        organization_create(actor=Actor.system("webhook_lag"), name=f"Webhook bench {run} {n}")
        for n in range(args.organizations)
    ]
    user_count = producers * math.ceil(max(50, len(organizations)) / producers)  # each user in one producer
    users = [
        user_create(
            organization=organizations[n % len(organizations)],
            actor=actor,
            email=f"bench{n}-{run}@bench.example",
            given_name="B",
            family_name="N",
        )
        for n in range(user_count)
    ]
    # No Cognito: run_worker's sync job would retry these rows throughout the run.
    CognitoSync.objects.filter(user__in=users).update(next_attempt_at=timezone.now() + timedelta(days=1))
    for organization in organizations:
        _, secret = webhook_endpoint_create(
            organization=organization, actor=actor, url=url, events=["user.updated"], description="bench"
        )
        secrets[str(organization.pk)] = secret
    bench_end.send(secrets)  # the receiver answers from now on

    if args.worker == "run_worker":
        command = [sys.executable, "manage.py", "run_worker"]
    else:
        command = [sys.executable, "manage.py", "deliver_webhooks", "--loop"]

    def profiled(n: int) -> list:
        if not args.profile:
            return command
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-m", "cProfile", "-o", str(Path(args.profile) / f"worker-{n}.prof"), *command[1:]]

    workers = [
        subprocess.Popen(profiled(n), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # noqa: S603 (our own manage.py)
        for n in range(args.workers)
    ]
    from django.db import connection

    def others_connected() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    # Up and idle: each worker holds a connection once its first pass has run (on a busy machine
    # starting Django takes well over the few seconds one might guess).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and others_connected() < args.workers:
        time.sleep(0.2)

    total = int(args.rate * args.duration)
    user_ids = [user.pk for user in users]
    plans = [[] for _ in range(producers)]
    for n in range(total):
        index = n % len(users)
        plans[index % producers].append((n, n / args.rate, index))
    pipes, processes = [], []
    for plan in plans:
        mine, theirs = SPAWN.Pipe()
        process = SPAWN.Process(target=produce, args=(theirs, env, args.change, user_ids, plan), daemon=True)
        process.start()
        mine.send(run)
        pipes.append(mine)
        processes.append(process)
    for pipe in pipes:
        pipe.recv()  # set up and connected
    time.sleep(1)
    idle_cpu = sum(_cpu_seconds(worker.pid) for worker in workers)  # their start-up, not the deliveries
    start = time.monotonic() + 0.2
    for pipe in pipes:
        pipe.send(start)
    committed, late, elapsed = {}, 0, 0.0
    for pipe in pipes:
        theirs, their_late, their_elapsed = pipe.recv()
        committed.update(theirs)
        late += their_late
        elapsed = max(elapsed, their_elapsed)
    for process in processes:
        process.join(timeout=30)

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
    unknown = len(set(received) - set(committed))
    print(
        f"changes ({args.change}): {total} in {elapsed:.1f} s ({total / elapsed:.1f}/s; {late} started late), "
        f"{producers} producer process(es)"
    )
    from django.conf import settings

    print(
        f"workers: {args.workers} {args.worker} x {settings.WEBHOOK_DELIVERY_CONCURRENCY} slots, "
        f"organizations (one endpoint each): {args.organizations}"
    )
    print(
        f"received: {len(lags)}, missing: {total - len(lags)}, duplicated: {len(duplicates)}, not sent: {unknown}, "
        f"bad signatures: {len(bad_signatures)}, a user's changes out of order: {len(out_of_order)}"
    )
    print(f"workers' CPU: {workers_cpu:.1f} s, {workers_cpu * 1000 / max(1, len(lags)):.2f} ms per delivery")
    if lags:
        print(
            "commit-to-receipt ms: "
            f"p50 {percentile(lags, 50):.0f}, p95 {percentile(lags, 95):.0f}, p99 {percentile(lags, 99):.0f}, "
            f"max {max(lags):.0f}, mean {statistics.mean(lags):.0f}"
        )
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if len(lags) == total and not bad_signatures and not duplicates and not out_of_order else 1


if __name__ == "__main__":
    sys.exit(main())

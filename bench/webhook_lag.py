#!/usr/bin/env python
"""Webhook lag: commit-to-receipt latency at a steady rate of changes, with a real worker running.

    .venv/bin/python bench/webhook_lag.py [--rate 50] [--duration 20] [--interval 1.0]
                                          [--database-url postgres://postgres@127.0.0.1:5432/webhooks]

Migrates the database (it is not dropped; the bench's organization is new each run), makes an
organization with one webhook endpoint (every event type) pointing at a threaded receiver in this
process on loopback, and 50 users. Starts `manage.py deliver_webhooks --loop --interval INTERVAL`
as the worker (its own process, as in production), then changes one user's title `--rate` times a
second for `--duration` seconds through `user_update` (each change commits its audit event, the
webhook event and its delivery in one transaction). The receiver verifies every signature with
`standardwebhooks` and notes when each change arrived; commit time is taken right after the
service call returns (the commit), on the same monotonic clock. Prints p50/p95/p99/max of
commit-to-receipt, deliveries received, missing and duplicated.
"""

from __future__ import annotations

import argparse
import json
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second (default 50)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of changes (default 20)")
    parser.add_argument("--interval", type=float, default=1.0, help="the worker's idle poll, seconds (default 1)")
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
    from standardwebhooks import Webhook

    from accounts.services import user_create, user_update
    from audit.context import Actor
    from organizations.services import organization_create
    from webhooks.services import webhook_endpoint_create

    received: dict[str, float] = {}
    duplicates = []
    bad_signatures = []
    lock = threading.Lock()
    verifier: list[Webhook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.monotonic()
            try:
                event = verifier[0].verify(body, dict(self.headers))
            except Exception:
                bad_signatures.append(self.headers.get("webhook-id"))
                event = json.loads(body)
            title = (event["data"].get("user") or {}).get("title", "")
            with lock:
                if title in received:
                    duplicates.append(title)
                else:
                    received[title] = arrived
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"

    run = uuid.uuid4().hex[:8]
    actor = Actor.system("bench")
    organization = organization_create(actor=Actor.system("webhook_lag"), name=f"Webhook bench {run}")
    users = [
        user_create(
            organization=organization,
            actor=actor,
            email=f"bench{n}-{run}@bench.example",
            given_name="B",
            family_name="N",
        )
        for n in range(50)
    ]
    _, secret = webhook_endpoint_create(
        organization=organization, actor=actor, url=url, events=["user.updated"], description="bench"
    )
    verifier.append(Webhook(secret))

    worker = subprocess.Popen(  # noqa: S603 (our own manage.py)
        [sys.executable, "manage.py", "deliver_webhooks", "--loop", "--interval", str(args.interval)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    time.sleep(3)  # the worker is up and idle

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
    while len(received) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)
    server.shutdown()

    lags = [(received[t] - committed[t]) * 1000 for t in committed if t in received]
    print(f"changes: {total} in {elapsed:.1f} s ({total / elapsed:.1f}/s; {late} started late)")
    print(f"worker poll interval when idle: {args.interval:g} s")
    print(
        f"received: {len(lags)}, missing: {total - len(lags)}, duplicated: {len(duplicates)}, "
        f"bad signatures: {len(bad_signatures)}"
    )
    if lags:
        print(
            "commit-to-receipt ms: "
            f"p50 {percentile(lags, 50):.0f}, p95 {percentile(lags, 95):.0f}, p99 {percentile(lags, 99):.0f}, "
            f"max {max(lags):.0f}, mean {statistics.mean(lags):.0f}"
        )
    return 0 if len(lags) == total and not bad_signatures else 1


if __name__ == "__main__":
    sys.exit(main())

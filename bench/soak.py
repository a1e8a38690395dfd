#!/usr/bin/env python
"""Soak test: mixed API load for a while against gunicorn (2 workers) + moto's Cognito, on loopback.

    .venv/bin/python bench/soak.py [--duration 300] [--max-requests 60000] [--clients 4]
                                   [--database-url postgres://postgres@127.0.0.1:5432/rel_soak]

Recreates the database, migrates it, creates an organization and an API client, starts moto's
server and gunicorn, then `--clients` threads send a mix of creates, profile updates, role changes,
disables, reads, lists and history reads until `--duration` seconds or `--max-requests` requests,
whichever comes first. Prints the request count, the count by status, and each gunicorn worker's
RSS after warm-up and at the end. Exits 1 on any 5xx, or (with --max-memory-growth) when a worker's
RSS grew by more than that percentage. Target: zero 5xx and under 10% growth over five minutes.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack, child_pids, issue_token, request, rss_kb

ROLE_SETS = [["member"], ["provider"], ["rx_reader"], ["admin", "receptionist"], ["provider", "admin"]]
# RSS is first read after warm-up (imports, caches, connections): 200 requests or a tenth of the run.
WARMUP_REQUESTS = 200


class Load:
    def __init__(self, base: str, organization_id: str, token: str, seed: int):
        self.users_url = f"{base}/v1/organizations/{organization_id}/users"
        self.audit_url = f"{base}/v1/organizations/{organization_id}/audit-events"
        self.token = token
        self.rng = random.Random(seed)
        self.seed = seed
        self.counter = itertools.count()
        self.user_ids: list[str] = []

    def one(self) -> int:
        rng = self.rng
        roll = rng.random()
        if not self.user_ids or roll < 0.12:
            n = next(self.counter)
            body = {"given_name": f"Soak{n}", "family_name": "Load", "email": f"soak-{self.seed}-{n}@example.com",
                    "phone": "0432333333", "access_roles": rng.choice(ROLE_SETS[:3] + [["member"]])}
            if "provider" in body["access_roles"]:
                body.update({"date_of_birth": "1980-03-15", "sex": "F", "prescriber_type": "T",
                             "qualifications": "MBBS", "hpii_number": None})
                body["access_roles"] = ["rx_reader"]  # no HPI-I pool here: providers come via roles
            status, _, parsed = request("POST", self.users_url, token=self.token, body=body)
            if status == 201:
                self.user_ids.append(parsed["id"])
            return status
        user_url = f"{self.users_url}/{rng.choice(self.user_ids)}"
        if roll < 0.22:
            return request("PATCH", user_url, token=self.token,
                           body={"given_name": f"Renamed{rng.randrange(1000)}", "title": rng.choice(["Dr", ""])})[0]
        if roll < 0.32:
            roles = rng.choice(ROLE_SETS)
            return request("PUT", f"{user_url}/roles", token=self.token, body={"access_roles": roles})[0]
        if roll < 0.34:
            return request("PUT", f"{user_url}/disable", token=self.token)[0]
        if roll < 0.60:
            return request("GET", user_url, token=self.token)[0]
        if roll < 0.80:
            query = rng.choice(["", "?limit=20", "?status=active", "?role=provider", "?search=Soak1"])
            return request("GET", f"{self.users_url}{query}", token=self.token)[0]
        if roll < 0.90:
            return request("GET", f"{user_url}/history", token=self.token)[0]
        return request("GET", f"{self.audit_url}?limit=20", token=self.token)[0]


def run(duration: float, max_requests: int, clients: int, database_url: str, log_dir: Path) -> dict:
    # Two processes with DEBUG off start only over a shared cache (core/limits.py).
    stack = Stack(database_url, log_dir=log_dir,
                  extra_env={"DJANGO_CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/5")})
    try:
        stack.start_cognito()
        organization_id, client_id, secret = stack.prepare_database()
        base = stack.start_app("app", workers=2)
        token = issue_token(base, client_id, secret)
        workers = child_pids(stack.pid("app"))

        statuses: collections.Counter = collections.Counter()
        lock = threading.Lock()
        sent = itertools.count()
        warmed = threading.Event()
        rss_start: dict[int, int] = {}
        deadline = time.monotonic() + duration
        warm_at = time.monotonic() + duration / 10

        def client(index: int):
            load = Load(base, organization_id, token, seed=index)
            while time.monotonic() < deadline:
                number = next(sent)
                if number >= max_requests:
                    return
                try:
                    status = load.one()
                except OSError as error:  # connection refused/reset: as bad as a 5xx
                    status = f"connection error ({type(error).__name__})"
                with lock:
                    statuses[status] += 1
                    if not warmed.is_set() and (number + 1 >= WARMUP_REQUESTS or time.monotonic() >= warm_at):
                        rss_start.update({pid: rss_kb(pid) for pid in workers})
                        warmed.set()

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        if not rss_start:
            rss_start = {pid: rss_kb(pid) for pid in workers}
        rss_end = {pid: rss_kb(pid) for pid in workers}
    finally:
        stack.close()

    total = sum(statuses.values())
    errors = {s: c for s, c in statuses.items() if not isinstance(s, int) or s >= 500}
    growth = {pid: (rss_end[pid] - rss_start[pid]) * 100 / rss_start[pid] for pid in workers if rss_start.get(pid)}
    return {"requests": total, "seconds": elapsed, "statuses": dict(statuses), "server_errors": errors,
            "rss_start_kb": rss_start, "rss_end_kb": rss_end, "rss_growth_percent": growth}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument("--max-requests", type=int, default=60_000, help="stop after this many (default 60000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (default 4)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rel_soak",
                        help="PostgreSQL database to (re)create and use")
    parser.add_argument("--max-memory-growth", type=float, default=None,
                        help="fail when a worker's RSS grew by more than this percentage (e.g. 10)")
    parser.add_argument("--log-dir", default=None, help="where the server logs go (default: a temp dir)")
    args = parser.parse_args(argv)

    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="soak-"))
    result = run(args.duration, args.max_requests, args.clients, args.database_url, log_dir)
    print(f"requests: {result['requests']} in {result['seconds']:.1f} s "
          f"({result['requests'] / max(result['seconds'], 0.001):.0f}/s)")
    print("by status: " + ", ".join(f"{s}: {c}" for s, c in sorted(result["statuses"].items(), key=str)))
    print(f"5xx / connection errors: {sum(result['server_errors'].values())}")
    for pid, start in result["rss_start_kb"].items():
        end = result["rss_end_kb"][pid]
        print(f"worker {pid}: RSS {start / 1024:.1f} MiB after warm-up -> {end / 1024:.1f} MiB at the end "
              f"({result['rss_growth_percent'].get(pid, 0):+.1f}%)")
    print(f"server logs: {log_dir}")
    failed = bool(result["server_errors"])
    growths = result["rss_growth_percent"].values()
    if args.max_memory_growth is not None and any(g > args.max_memory_growth for g in growths):
        print(f"FAIL: memory grew by more than {args.max_memory_growth}%")
        failed = True
    if result["server_errors"]:
        print("FAIL: server errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

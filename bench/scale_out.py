#!/usr/bin/env python
"""Scale-out check: two app servers and two sync workers sharing one PostgreSQL and one Cognito.

    .venv/bin/python bench/scale_out.py [--users 60] [--clients 4]
                                        [--database-url postgres://postgres@127.0.0.1:5432/rel_scale]

The deployment shape of docs/operators.md ("Deployment shape"), on loopback: two gunicorn processes
(1 worker each, different ports, COGNITO_SYNC_INLINE=false so the workers do all the syncing) and
two `manage.py sync_cognito --loop` workers, over one freshly created database and moto's Cognito.
Creates, role changes and disables are spread over both servers; then it waits for the queue to
drain and checks:
  - nothing lost: every user is in the database in the state last written, and its Cognito account
    matches (enabled flag, groups, attributes), with synced_version == desired_version;
  - nothing applied twice: across both workers' logs each account is created once and each
    disabled user is disabled once (apply_state only disables an enabled account, so two workers
    applying the same state would both log it), and no app server touched Cognito.
Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack, issue_token, request, wait_until

ROLE_SETS = [["member"], ["rx_reader"], ["admin", "receptionist"], ["provider"], ["admin", "provider"]]
ASSIGNABLE = {"admin", "provider", "receptionist", "rx_reader"}


def run(users: int, clients: int, database_url: str, log_dir: Path, *, start_cognito: bool = True) -> list[str]:
    """Returns the list of problems found (empty: all good)."""
    import psycopg

    from tests.cognito_server import make_client

    stack = Stack(database_url, log_dir=log_dir)
    problems: list[str] = []
    try:
        if start_cognito:
            stack.start_cognito()
        organization_id, client_id, secret = stack.prepare_database()
        no_inline = {"COGNITO_SYNC_INLINE": "false"}
        servers = [stack.start_app("app1", env=no_inline), stack.start_app("app2", env=no_inline)]
        # Small batches so both workers get a share of the queue.
        # -v 2: the Cognito client's per-call lines, which the check below counts (operator commands hide them).
        stack.start_worker("worker1", "--batch-size", "5", "--verbosity", "2")
        stack.start_worker("worker2", "--batch-size", "5", "--verbosity", "2")
        token = issue_token(servers[0], client_id, secret)

        rng = random.Random(7)
        expected: dict[str, dict] = {}
        lock = threading.Lock()
        statuses: collections.Counter = collections.Counter()

        def call(method, server, path, body=None):
            status, _, parsed = request(method, f"{server}/v1/organizations/{organization_id}/users{path}",
                                        token=token, body=body)
            with lock:
                statuses[status] += 1
            return status, parsed

        def create(n):
            server = servers[n % 2]
            roles = ROLE_SETS[n % 3]
            email = f"scale-{n}@example.com"
            status, body = call("POST", server, "", {"given_name": f"Scale{n}", "family_name": "Out",
                                                     "email": email, "access_roles": roles})
            if status == 201:
                with lock:
                    expected[body["id"]] = {"email": email, "roles": sorted(roles), "enabled": True,
                                            "given_name": f"Scale{n}"}

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, range(users)))
            ids = sorted(expected)
            plan = [(user_id, rng.choice(ROLE_SETS)) for user_id in ids for _ in range(2)]
            rng.shuffle(plan)

            def change_roles(item):
                user_id, roles = item
                status, body = call("PUT", servers[rng.randrange(2)], f"/{user_id}/roles", {"access_roles": roles})
                return user_id, status, body

            # Role changes of one user land on either server, concurrently and in any order: the
            # database's last commit wins, and Cognito must end up mirroring exactly that.
            for user_id, status, _ in pool.map(change_roles, plan):
                if status != 200:
                    problems.append(f"role change of {user_id}: HTTP {status}")

            def rename(user_id):
                return user_id, call("PATCH", servers[hash(user_id) % 2], f"/{user_id}",
                                     {"given_name": f"Renamed {user_id[:8]}"})

            list(pool.map(rename, ids))
            disabled = ids[::3]
            list(pool.map(lambda user_id: call("PUT", servers[1], f"/{user_id}/disable"), disabled))
            list(pool.map(lambda user_id: call("PUT", servers[0], f"/{user_id}/disable"), disabled))  # idempotent

        bad = {s: c for s, c in statuses.items() if s not in (200, 201)}
        if bad:
            problems.append(f"unexpected statuses: {bad}")
        if len(expected) != users:
            problems.append(f"only {len(expected)} of {users} creates succeeded")

        url = database_url.replace("postgres://", "postgresql://", 1)

        def drained():
            with psycopg.connect(url) as connection:
                return connection.execute(
                    "SELECT count(*) FROM accounts_cognitosync"
                    " WHERE state <> 'synced' OR synced_version <> desired_version"
                ).fetchone()[0] == 0

        wait_until(drained, 180, interval=0.5, what="the sync queue to drain")
        for name in ("worker1", "worker2"):
            stack.stop(name)

        # Nothing lost: the database holds what the API last answered; Cognito mirrors it.
        with psycopg.connect(url) as connection:
            rows = {str(r[0]): r[1:] for r in connection.execute(
                "SELECT id, email, given_name, roles, status FROM accounts_user WHERE organization_id = %s",
                [organization_id]).fetchall()}
        cognito = make_client(stack.env["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"])
        pool_id = stack.env["COGNITO_USER_POOL_ID"]
        for user_id in expected:
            if user_id not in rows:
                problems.append(f"user {user_id} missing from the database")
                continue
            email, given_name, roles, status = rows[user_id]
            should_be_disabled = user_id in set(disabled)
            if (status == "disabled") != should_be_disabled or (should_be_disabled and roles != ["member"]):
                problems.append(f"user {user_id}: status {status} roles {roles}")
            account = cognito.admin_get_user(UserPoolId=pool_id, Username=user_id)
            groups = {g["GroupName"] for g in cognito.admin_list_groups_for_user(
                UserPoolId=pool_id, Username=user_id)["Groups"]}
            attributes = {a["Name"]: a["Value"] for a in account["UserAttributes"]}
            if account["Enabled"] != (status == "active"):
                problems.append(f"user {user_id}: Cognito Enabled={account['Enabled']} but status {status}")
            if groups != set(roles) & ASSIGNABLE:
                problems.append(f"user {user_id}: Cognito groups {groups} but roles {roles}")
            if attributes.get("email") != email or attributes.get("given_name") != given_name:
                problems.append(f"user {user_id}: Cognito attributes differ")

        # Nothing applied twice.
        logs = stack.log("worker1") + stack.log("worker2")
        created = collections.Counter(re.findall(r"cognito account created username=(\S+)", logs))
        disables = collections.Counter(re.findall(r"cognito account disabled username=(\S+)", logs))
        for user_id in expected:
            if created[user_id] != 1:
                problems.append(f"user {user_id}: account created {created[user_id]} times")
            if disables[user_id] != (1 if user_id in set(disabled) else 0):
                problems.append(f"user {user_id}: account disabled {disables[user_id]} times")
        for name in ("app1", "app2"):
            if "cognito account" in stack.log(name):
                problems.append(f"{name} touched Cognito although COGNITO_SYNC_INLINE=false")
        shares = {name: re.findall(r"applied: (\d+)", stack.log(name)) for name in ("worker1", "worker2")}
        print(f"users: {len(expected)}  requests: {sum(statuses.values())} {dict(statuses)}  "
              f"worker summaries: {shares}")
    finally:
        stack.close()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rel_scale")
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args(argv)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="scale-out-"))
    started = time.monotonic()
    problems = run(args.users, args.clients, args.database_url, log_dir)
    print(f"took {time.monotonic() - started:.0f} s; logs in {log_dir}")
    for problem in problems:
        print("PROBLEM:", problem)
    print("OK: nothing lost, nothing applied twice" if not problems else f"FAIL: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

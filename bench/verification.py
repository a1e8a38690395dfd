#!/usr/bin/env python
"""Provider verification against the HI Service emulator: the inline check's cost to a write, a
hung register, and the worker revalidating 100,000 providers at the register's limit.

    make bench-verification                    # 100,000 providers, a minute at the limit (about 6 minutes)
    make bench-verification ARGS=--quick       # 10,000 providers, 20 seconds at the limit
    .venv/bin/python bench/verification.py [--providers N] [--seconds S] [--rate 50] [--delay-ms 50]
                                           [--database-url postgres://postgres@127.0.0.1:5432/bench_verification]

Starts, as subprocesses on loopback: the emulator (`run_hi_emulator --unknown-active`, every answer
`--delay-ms` late), moto's server as Cognito, gunicorn with gunicorn.conf.py's sizing (2 processes
x 32 threads, 2 writes at once a process) and, for the last part, one `run_worker` (every job). The
database is dropped and made again. Every register call, inline and the worker's, keeps to
`HI_MAX_REQUESTS_PER_SECOND` (`--rate`).

1. **Inline check**: provider creates one at a time, alternating between a server with the inline
   check and one without (HI_VERIFY_INLINE false): what the check adds to a write.
2. **Hung register**: the emulator stops answering (its delay set to an hour over its own TLS);
   8 creates at once, then 10 one at a time: each answers `pending` within the budget and a little.
3. **Revalidation**: N providers loaded with COPY, verified, their next checks where the schedule
   puts them after a first pass checked them all at once (the spread is printed: the busiest hour
   and second against the mean, and the hour after midnight). Then the worker's backlog: every
   provider due. For `--seconds` the worker asks at the limit while this script changes 5 users a
   second (their Cognito sync and webhook are the worker's too); the emulator counts the searches
   per second; the worker's RSS is sampled every second. Cognito lag (commit to synced, seen by
   polling every 50 ms) and webhook lag (commit to receipt) are measured first with the register
   idle, then at the limit.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import io
import json
import os
import shlex
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import PYTHON, Stack, free_port, issue_token, request, rss_kb, wait_until  # noqa: E402

CHANGES_PER_SECOND = 5
# The message the register's answer leaves on a verified provider: a revalidation that hears it again
# only moves the check times (verification/services.py), as in a steady state.
ANSWERED = "the register has this HPI-I for these details"
HUNG_MS = 3_600_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values) -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, 50):.0f}, p95 {percentile(values, 95):.0f}, "
            f"p99 {percentile(values, 99):.0f}, max {max(values):.0f} ms (n={len(values)})")


def hpii(number: int) -> str:
    from identifiers.checks import luhn_check_digit

    payload = f"800361{number:09d}"
    return f"{payload}{luhn_check_digit(payload)}"


# -- the emulator -----------------------------------------------------------------------------------


class Emulator:
    def __init__(self, stack: Stack, directory: Path, delay_ms: float):
        self.directory = directory
        self.port = free_port()
        stack._spawn("hi-emulator", [PYTHON, "manage.py", "run_hi_emulator", "--port", str(self.port),
                                     "--dir", str(directory), "--delay-ms", str(delay_ms), "--unknown-active"])
        env_file = directory / "hi.env"
        wait_until(lambda: env_file.exists() and env_file.stat().st_size, 60, what="the HI emulator")
        self.settings = dict(shlex.split(line)[0].split("=", 1) for line in env_file.read_text().splitlines())
        context = ssl.create_default_context(cafile=self.settings["HI_SERVICE_CA_BUNDLE"])
        context.load_cert_chain(self.settings["HI_SERVICE_CLIENT_CERT"], self.settings["HI_SERVICE_CLIENT_KEY"])
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def _call(self, method: str, path: str, data: bytes | None = None):
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method)
        with self._opener.open(req, timeout=10) as response:
            return response.read()

    def set_delay(self, milliseconds: float) -> None:
        self._call("PUT", "/emulator/delay", str(milliseconds).encode())

    def stats(self) -> dict:
        return json.loads(self._call("GET", "/emulator/stats"))


# -- 1 and 2: writes ---------------------------------------------------------------------------------


class Writer:
    def __init__(self, base: str, token: str, organization_id: str):
        self.url = f"{base}/v1/organizations/{organization_id}/users"
        self.token = token

    def create(self, number: int) -> tuple[float, int, str]:
        body = {"email": f"writer{number}@bench.example", "given_name": "Ada", "family_name": f"Writer{number}",
                "access_roles": ["provider"], "date_of_birth": "1980-01-01", "sex": "F",
                "hpii_number": hpii(500_000_000 + number), "prescriber_type": "M", "prescriber_number": "2345678",
                "qualifications": "MBBS"}
        started = time.monotonic()
        status, _headers, answer = request("POST", self.url, token=self.token, body=body, timeout=60)
        elapsed = (time.monotonic() - started) * 1000
        verification = {}
        if isinstance(answer, dict):
            verification = (answer.get("provider_details") or {}).get("verification") or {}
        return elapsed, status, verification.get("status", "-")


def inline_phase(with_inline: Writer, without: Writer, count: int, counter) -> dict:
    on, off, statuses = [], [], collections.Counter()
    for _ in range(count):
        for writer, into in ((with_inline, on), (without, off)):
            elapsed, status, verification = writer.create(next(counter))
            into.append(elapsed)
            if writer is with_inline:
                statuses[(status, verification)] += 1
    return {"on": on, "off": off, "statuses": statuses}


def hung_phase(writer: Writer, counter, *, at_once: int, one_at_a_time: int) -> dict:
    results: list = [None] * at_once
    barrier = threading.Barrier(at_once)

    def one(index: int, number: int):
        barrier.wait()
        results[index] = writer.create(number)

    threads = [threading.Thread(target=one, args=(i, next(counter))) for i in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    serial = [writer.create(next(counter)) for _ in range(one_at_a_time)]
    return {"at_once": results, "serial": serial}


# -- 3: revalidation ----------------------------------------------------------------------------------


def load_providers(database_url: str, organization_id: str, n: int, days: int) -> dict:
    """COPY n active, verified providers; their next checks as after one first pass at `checked`."""
    import psycopg

    from verification import schedule

    checked = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    ids = [uuid.uuid4() for _ in range(n)]
    nexts = [schedule.next_check_at(user_id=i, checked_at=checked) for i in ids]
    org = str(uuid.UUID(organization_id))
    stamp = checked.isoformat()

    def lines(make):
        buffer = io.StringIO()
        for i, user_id in enumerate(ids):
            buffer.write(make(i, user_id))
        return buffer.getvalue()

    users = lines(lambda i, u: (
        f"!\t\\N\tf\t{u}\t{org}\tprovider{i}@bench.example\tGiven{i}\tFamily{i}\t\t\tpms-{i}\t"
        f'["provider"]\tactive\t\\N\tf\t{stamp}\t{stamp}\n'))
    details = lines(lambda i, u: (
        f"{u}\t{org}\tGiven{i}\tFamily{i}\t1970-01-01\tF\t\t{hpii(i)}\tM\t{1000000 + i % 9000000:07d}\t"
        f"MBBS\t\t\t\t{stamp}\t{stamp}\tverified\tActive\t{stamp}\t{nexts[i].isoformat()}\t{ANSWERED}\t\\N\n"))
    desired = lambda i: json.dumps({"email": f"provider{i}@bench.example", "given_name": f"Given{i}",  # noqa: E731
                                    "family_name": f"Family{i}", "organization_id": org, "groups": ["provider"],
                                    "enabled": True})
    syncs = lines(lambda i, u: f"{u}\t{desired(i)}\t1\t1\tsynced\t0\t\t{stamp}\t\\N\t\\N\t{stamp}\t{stamp}\n")
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        for table, columns, data in (
            ("accounts_user", "password, last_login, is_superuser, id, organization_id, email, given_name, "
             "family_name, title, phone, partner_user_id, roles, status, disabled_at, is_staff, created_at, "
             "updated_at", users),
            ("accounts_providerdetails", "user_id, organization_id, given_name, family_name, date_of_birth, sex, "
             "phone, hpii_number, prescriber_type, prescriber_number, qualifications, provider_number, "
             "ahpra_number, hospital_provider_number, created_at, updated_at, verification_status, "
             "verification_hpii_status, verification_checked_at, verification_next_check_at, "
             "verification_message, verification_found_hpii", details),
            ("accounts_cognitosync", "user_id, desired, desired_version, synced_version, state, attempts, "
             "last_error, next_attempt_at, claimed_until, claim_token, created_at, updated_at", syncs),
        ):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(data)
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("accounts_user", "accounts_providerdetails", "accounts_cognitosync"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return {"checked": checked, "nexts": nexts}


def spread(checked: dt.datetime, nexts: list[dt.datetime], days: int) -> dict:
    """How the next checks of providers checked all at once fall over the following period."""
    per_hour = collections.Counter(int((n - checked).total_seconds() // 3600) for n in nexts)
    per_second = collections.Counter(int((n - checked).total_seconds()) for n in nexts)
    window_hours = days * 24 / 2  # every next check falls in (period / 2, period]
    after_midnight = [c for hour, c in per_hour.items() if (checked + dt.timedelta(hours=hour)).hour == 0]
    return {
        "first": min(nexts) - checked, "last": max(nexts) - checked,
        "mean_per_hour": len(nexts) / window_hours, "max_per_hour": max(per_hour.values()),
        "max_per_second": max(per_second.values()),
        "after_midnight_mean": statistics.mean(after_midnight) if after_midnight else 0.0,
    }


class Receiver:
    """Webhook deliveries on loopback: the arrival time of each user.updated, by title."""

    def __init__(self):
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                try:
                    title = (json.loads(body)["data"].get("user") or {}).get("title") or ""
                except (ValueError, KeyError):
                    title = ""
                receiver.arrived.setdefault(title, arrived)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def changes_for(seconds: float, users, actor, tag: str, database_url: str, receiver: Receiver) -> dict:
    """CHANGES_PER_SECOND title changes for `seconds`: Cognito lag (commit to synced) and webhook lag."""
    import psycopg

    from accounts.models import CognitoSync
    from accounts.services import user_update

    committed, synced, pending = {}, {}, {}
    lock, done = threading.Lock(), threading.Event()

    def poll():
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not (done.is_set() and not pending):
                with lock:
                    waiting = dict(pending)
                if waiting:
                    rows = conn.execute(
                        "SELECT user_id, synced_version FROM accounts_cognitosync WHERE user_id = ANY(%s)",
                        ([uuid.UUID(str(user)) for user, _v in waiting.values()],),
                    ).fetchall()
                    versions = {str(user): version for user, version in rows}
                    now = time.monotonic()
                    with lock:
                        for title, (user, version) in waiting.items():
                            if versions.get(str(user), 0) >= version:
                                synced[title] = now
                                pending.pop(title, None)
                if done.is_set() and time.monotonic() > done_at[0] + 30:
                    return
                time.sleep(0.05)

    done_at = [0.0]
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    total = int(seconds * CHANGES_PER_SECOND)
    start = time.monotonic()
    for n in range(total):
        pause = start + n / CHANGES_PER_SECOND - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        user = users[n % len(users)]
        title = f"{tag}-{n}"
        user_update(user=user, actor=actor, data={"title": title})
        version = CognitoSync.objects.filter(pk=user.pk).values_list("desired_version", flat=True).first()
        with lock:
            committed[title] = time.monotonic()
            pending[title] = (user.pk, version)
    done_at[0] = time.monotonic()
    done.set()
    wait_until(lambda: all(t in receiver.arrived for t in committed), 30, what="the webhooks")
    poller.join(timeout=40)
    cognito = [(synced[t] - committed[t]) * 1000 for t in committed if t in synced]
    webhooks = [(receiver.arrived[t] - committed[t]) * 1000 for t in committed if t in receiver.arrived]
    return {"changes": total, "cognito": cognito, "webhooks": webhooks}


# -- the run ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 providers, 20 s at the limit")
    parser.add_argument("--providers", type=int, default=None, help="providers on file (default 100,000)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds at the limit (default 60)")
    parser.add_argument("--rate", type=float, default=50.0, help="HI_MAX_REQUESTS_PER_SECOND (default 50)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="the emulator's answer delay (default 50)")
    parser.add_argument("--inline-writes", type=int, default=20, help="creates with and without the inline check")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_verification")
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args(argv)
    providers = args.providers or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench-verification-"))
    budget = 2.0

    stack = Stack(args.database_url, log_dir=log_dir, extra_env={
        "DJANGO_CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/6"),
        "HI_MAX_REQUESTS_PER_SECOND": str(args.rate), "HI_VERIFY_INLINE_BUDGET_SECONDS": str(budget),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "DJANGO_LOG_LEVEL": "WARNING",
    })
    try:
        emulator = Emulator(stack, log_dir / "hi", args.delay_ms)
        stack.env.update(emulator.settings)
        stack.start_cognito()
        from bench.stack import recreate_database

        recreate_database(args.database_url)
        stack.manage("migrate", "--noinput")
        from hi_service.fixtures import FIXTURE_HPIO

        organization_id = stack.manage("create_organization", "--name", "Register bench", "--hpio",
                                       FIXTURE_HPIO).strip().splitlines()[-1]
        client = json.loads(stack.manage("create_api_client", "--organization", organization_id, "--name", "Bench",
                                         "--scopes", "read:users create:user update:user", "--json"
                                         ).strip().splitlines()[-1])
        # The bench's own Django (the loader's schedule, the producer's changes): the stack's settings.
        os.environ.update({**stack.env, "COGNITO_SYNC_INLINE": "false", "HI_VERIFY_INLINE": "false"})
        import django

        django.setup()

        base = stack.start_app("app", workers=2)
        base_off = stack.start_app("app-no-inline", workers=1, env={"HI_VERIFY_INLINE": "false"})
        token = issue_token(base, client["client_id"], client["client_secret"])
        counter = iter(range(10_000_000))
        with_inline = Writer(base, token, organization_id)
        without = Writer(base_off, issue_token(base_off, client["client_id"], client["client_secret"]),
                         organization_id)
        print(f"uptime: {os.getloadavg()}", flush=True)
        for _ in range(3):  # each process's first create loads what it needs
            with_inline.create(next(counter))
            without.create(next(counter))
        inline = inline_phase(with_inline, without, args.inline_writes, counter)
        print_inline(inline, args.delay_ms, budget)

        emulator.set_delay(HUNG_MS)
        hung = hung_phase(with_inline, counter, at_once=8, one_at_a_time=10)
        emulator.set_delay(args.delay_ms)
        print_hung(hung, budget)
        stack.stop("app-no-inline")

        result = revalidation(stack, emulator, args, providers, seconds, organization_id, log_dir)
        print(f"uptime: {os.getloadavg()}", flush=True)
        return result
    finally:
        stack.close()
        print(f"logs: {log_dir}")


def print_inline(inline: dict, delay_ms: float, budget: float) -> None:
    on, off = inline["on"], inline["off"]
    print(f"\n1. Inline check, register answering in {delay_ms:g} ms, budget {budget:g} s: "
          "provider creates one at a time")
    print("| server | creates | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for label, values in (("inline check on", on), ("inline check off", off)):
        print(f"| {label} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 99):.0f} | "
              f"{max(values):.0f} |")
    added50 = percentile(on, 50) - percentile(off, 50)
    added99 = percentile(on, 99) - percentile(off, 99)
    print(f"- added by the check: p50 {added50:.0f} ms, p99 {added99:.0f} ms; the budget {budget * 1000:.0f} ms")
    print("- answers (status, verification): " + ", ".join(f"{k}: {v}" for k, v in inline["statuses"].items()))


def print_hung(hung: dict, budget: float) -> None:
    print(f"\n2. Hung register (no answer), budget {budget:g} s: target each create within {budget + 0.5:g} s, pending")
    print("| creates | n | p50 ms | max ms | answers (status, verification) |")
    print("|---|---:|---:|---:|---|")
    for label, rows in (("8 at once", hung["at_once"]), ("one at a time", hung["serial"])):
        times = [r[0] for r in rows]
        answers = collections.Counter((r[1], r[2]) for r in rows)
        print(f"| {label} | {len(rows)} | {percentile(times, 50):.0f} | {max(times):.0f} | "
              + ", ".join(f"{k}: {v}" for k, v in answers.items()) + " |")


def revalidation(stack, emulator, args, providers, seconds, organization_id, log_dir) -> int:
    from django.conf import settings
    from django.db import connection

    from accounts.models import CognitoSync, ProviderDetails
    from accounts.services import user_create
    from audit.context import Actor
    from organizations.models import Organization
    from verification.models import RegisterCall
    from webhooks.services import webhook_endpoint_create

    days = settings.HI_REVALIDATE_DAYS
    started = time.monotonic()
    loaded = load_providers(args.database_url, organization_id, providers, days)
    print(f"\n3. Revalidation: {providers:,} providers loaded in {time.monotonic() - started:.0f} s", flush=True)
    shape = spread(loaded["checked"], loaded["nexts"], days)
    print(f"- next checks after one first pass (HI_REVALIDATE_DAYS {days}): from +{shape['first']} to "
          f"+{shape['last']}; mean {shape['mean_per_hour']:.0f} an hour, busiest hour {shape['max_per_hour']}, "
          f"busiest second {shape['max_per_second']}; hours starting at midnight: {shape['after_midnight_mean']:.0f} "
          "on average")

    actor = Actor.system("bench")
    organization = Organization.objects.get(pk=organization_id)
    receiver = Receiver()
    webhook_endpoint_create(organization=organization, actor=actor, url=receiver.url, events=["user.updated"],
                            description="bench")
    users = [user_create(organization=organization, actor=actor, email=f"lag{n}@bench.example", given_name="Lag",
                         family_name=f"User{n}") for n in range(20)]
    worker = stack._spawn("worker", [PYTHON, "manage.py", "run_worker"])
    wait_until(lambda: not CognitoSync.objects.filter(user__in=users).exclude(state="synced").exists(), 120,
               what="the worker's first Cognito sync")
    idle = changes_for(min(20.0, seconds), users, actor, "idle", args.database_url, receiver)

    # The backlog: every provider due now (as after the roll-out's migration, or a long outage).
    ProviderDetails.objects.filter(user__email__startswith="provider").update(
        verification_next_check_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    with connection.cursor() as cursor:  # as autovacuum would after so many updates
        cursor.execute("ANALYZE accounts_providerdetails")
    calls_before = RegisterCall.objects.count()
    rss, sampling = [], threading.Event()

    def sample():
        while not sampling.is_set():
            rss.append(rss_kb(worker.pid) / 1024)
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    wait_until(lambda: RegisterCall.objects.count() > calls_before, 60, what="the worker's first register call")
    window_start, cpu_start, calls_start = time.time(), cpu_seconds(worker.pid), RegisterCall.objects.count()
    busy = changes_for(seconds, users, actor, "busy", args.database_url, receiver)
    window_end, cpu_end, calls_end = time.time(), cpu_seconds(worker.pid), RegisterCall.objects.count()
    sampling.set()
    sampler.join()
    per_second = {second: n for second, n in emulator.stats()["per_second"]}
    window = [per_second.get(s, 0) for s in range(int(window_start) + 1, int(window_end))]
    checked = ProviderDetails.objects.filter(
        user__email__startswith="provider",
        verification_checked_at__gte=dt.datetime.fromtimestamp(window_start - 60, dt.UTC),
    )
    rechecked = list(checked.values_list("verification_checked_at", "verification_next_check_at")[:100000])
    period = dt.timedelta(days=days)
    in_window = sum(1 for c, n in rechecked if n and c + period / 2 < n <= c + period)

    print(f"- worker at the limit for {window_end - window_start:.0f} s, register answering in {args.delay_ms:g} ms, "
          f"HI_MAX_REQUESTS_PER_SECOND {args.rate:g}, HI_WORKER_CONCURRENCY {settings.HI_WORKER_CONCURRENCY}:")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| searches the register saw, busiest second | {max(window) if window else 0} |")
    print(f"| searches the register saw, mean a second | {statistics.mean(window) if window else 0:.1f} |")
    print(f"| seconds over the limit | {sum(1 for n in window if n > args.rate)} of {len(window)} |")
    print(f"| peak searches in flight at the register | {emulator.stats()['peak_in_flight']} |")
    print(f"| providers rechecked, next check within (period/2, period] | {in_window} of {len(rechecked)} |")
    print(f"| worker RSS, peak | {max(rss):.0f} MB |")
    calls = calls_end - calls_start
    print(f"| register calls recorded in the window | {calls} ({calls / (window_end - window_start):.1f}/s) |")
    print(f"| worker CPU per register call (its other jobs included) | "
          f"{(cpu_end - cpu_start) * 1000 / max(1, calls):.1f} ms |")
    print(f"| Cognito lag, register idle | {summary(idle['cognito'])} |")
    print(f"| Cognito lag, register at the limit | {summary(busy['cognito'])} |")
    print(f"| webhook lag, register idle | {summary(idle['webhooks'])} |")
    print(f"| webhook lag, register at the limit | {summary(busy['webhooks'])} |")
    stack.stop("worker")
    over = sum(1 for n in window if n > args.rate)
    return 1 if over or max(rss) >= 200 else 0


if __name__ == "__main__":
    sys.exit(main())

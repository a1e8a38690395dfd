"""Benchmark `manage.py import_users` on PostgreSQL: time, rows per second and peak memory.

    .venv/bin/python bench/import_users.py                   # 100,000 rows
    .venv/bin/python bench/import_users.py --rows 20000 --database-url postgres://postgres@127.0.0.1:5432/bench_import

It (re)creates the database named in --database-url (it must be a throwaway one: it is dropped
first), migrates it, creates an organization, writes a CSV of N users (a third of them providers
with valid HPI-Is, unique emails and partner ids), imports it in a subprocess, imports the same file
again (which must change nothing), counts what was written, and prints a Markdown table. Peak
memory is the import process's own maximum resident set size (getrusage via wait4).
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identifiers.checks import HPII_PREFIX, luhn_check_digit  # noqa: E402

ROLES = ["member", "rx_reader", "receptionist", "admin receptionist"]


def hpii(number: int) -> str:
    payload = f"{HPII_PREFIX}{number:09d}"
    return payload + str(luhn_check_digit(payload))


def write_csv(path: Path, rows: int) -> None:
    header = [
        "email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_roles",
        "date_of_birth", "sex", "hpii_number", "prescriber_type", "prescriber_number", "qualifications",
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            phone = f"0412{i % 1_000_000:06d}" if i % 2 else ""
            if i % 3 == 0:  # a third are providers, complete enough to prescribe
                writer.writerow([
                    f"user{i}@bench.example", "Given", f"Family{i}", "Dr", phone, f"pms-{i}", "provider",
                    f"{1950 + i % 50}-0{1 + i % 9}-1{i % 9}", "MFIN"[i % 4], hpii(i), "M",
                    f"{i % 10_000_000:07d}", "MBBS",
                ])
            else:
                writer.writerow([
                    f"user{i}@bench.example", "Given", f"Family{i}", "", phone, f"pms-{i}", ROLES[i % 4],
                    "", "", "", "", "", "",
                ])


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Refusing an unusual database name: {name!r}")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def manage(env, *args, capture=True) -> str:
    result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
        capture_output=capture,
    )
    return result.stdout if capture else ""


def timed_import(env, csv_path: Path, organization_id: str, jobs: int, log: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, summary line) of one import run in its own process. With --jobs the
    peak is the largest of the command's processes (wait4 reports the maximum over the tree)."""
    with open(log, "w") as output:
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, "manage.py", "import_users", str(csv_path), "--organization", organization_id,
             "--jobs", str(jobs)],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import_users failed:\n{text[-3000:]}")
    summary = next(line for line in text.splitlines() if " rows: " in line)
    return seconds, usage.ru_maxrss / 1024, summary  # ru_maxrss is in KiB on Linux


def count(url: str) -> dict:
    import psycopg

    queries = {
        "users": "SELECT count(*) FROM accounts_user WHERE NOT is_staff",
        "provider details": "SELECT count(*) FROM accounts_providerdetails",
        "user history rows": "SELECT count(*) FROM accounts_historicaluser",
        "provider history rows": "SELECT count(*) FROM accounts_historicalproviderdetails",
        "audit events": "SELECT count(*) FROM audit_auditevent",
        "Cognito outbox rows (pending)": "SELECT count(*) FROM accounts_cognitosync WHERE state = 'pending'",
    }
    with psycopg.connect(url) as connection:
        return {label: connection.execute(sql).fetchone()[0] for label, sql in queries.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1, help="import_users --jobs (default 1)")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_import",
        help="A throwaway PostgreSQL database: it is dropped and created again.",
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-any-deployment-0123456789",
        "DJANGO_DEBUG": "false",  # DEBUG would keep every query in memory
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "localhost",
    }
    recreate_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    organization_id = manage(env, "create_organization", "--name", "Bench Practice").strip().splitlines()[-1]

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / f"users-{args.rows}.csv"
        write_csv(csv_path, args.rows)
        print(f"{args.rows} rows written to a CSV of {csv_path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        first = timed_import(env, csv_path, organization_id, args.jobs, Path(tmp) / "first.log")
        print(f"first run:  {first[2]}", file=sys.stderr)
        second = timed_import(env, csv_path, organization_id, args.jobs, Path(tmp) / "second.log")
        print(f"second run: {second[2]}", file=sys.stderr)

    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} CPUs (load average {load:.1f} at the end), PostgreSQL at "
          f"{urlparse(args.database_url).hostname}, import_users --jobs {args.jobs}\n")
    print("| run | rows | seconds | rows/s | peak RSS (MB) | result |")
    print("|---|---:|---:|---:|---:|---|")
    for label, (seconds, rss, summary) in (("import", first), ("rerun (no-op)", second)):
        result = summary.split(" rows: ", 1)[1].split(" (")[0]
        print(f"| {label} | {args.rows:,} | {seconds:.1f} | {args.rows / seconds:,.0f} | {rss:.0f} | {result} |")
    print("\n| written by the import | count |\n|---|---:|")
    for label, value in count(args.database_url).items():
        print(f"| {label} | {value:,} |")


if __name__ == "__main__":
    main()

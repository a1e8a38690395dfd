"""Time one SCIM PATCH of N operations: is applying them linear in N?

    .venv/bin/python bench/scim_patch.py                      # N = 250, 500, 1000
    .venv/bin/python bench/scim_patch.py --sizes 100 1000 2000 --database-url postgres://postgres@127.0.0.1:5432/bench_scim

It (re)creates the database named in --database-url (a throwaway one: it is dropped first),
migrates it, makes an organization, a SCIM token and N practice users (raw rows: the bench is about
the PATCH, not the creates), then sends, through Django's test client (no network), for each N:
- `Groups/admin`: N operations, each adding one different user (`add members [{value}]`);
- `Users/{id}`: N operations, each replacing `title`.
It prints a Markdown table of seconds per request and microseconds per operation. Cognito is not
called (COGNITO_SYNC_INLINE=false: the work stays queued), so the numbers are the service's own.
The group change is undone (members removed) between sizes, outside the timing.

A second table times only applying the N operations to a group's membership, in process (no
database): scim2-models' PatchOp.patch on a Group, and scim.membership's set arithmetic that the
service uses, to show which one grows with N squared."""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_scim_patch")
    args = parser.parse_args()

    recreate_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
    os.environ["COGNITO_SYNC_INLINE"] = "false"
    os.environ.setdefault("SCIM_THROTTLE_RATE", "100000/min")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)

    from accounts.models import User
    from audit.context import Actor
    from organizations.models import Organization
    from scim.services import scim_token_create

    organization = Organization.objects.create(name="Bench practice")
    _token, raw = scim_token_create(organization=organization, name="bench", actor=Actor.system("bench"))
    largest = max(args.sizes)
    User.objects.bulk_create(
        User(
            organization=organization,
            email=f"user{i}@bench.example",
            given_name="Given",
            family_name=f"F{i}",
            roles=["member"],
        )
        for i in range(largest + 1)
    )
    ids = [
        str(pk) for pk in User.objects.filter(organization=organization).order_by("email").values_list("pk", flat=True)
    ]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def patch(path, operations):
        body = json.dumps({"schemas": [PATCH_SCHEMA], "Operations": operations})
        started = time.perf_counter()
        response = client.patch(f"/scim/v2/{path}", body, content_type="application/scim+json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return elapsed

    print("| operations | Groups/admin: add N members (s) | µs per op | Users/{id}: N title replaces (s) | µs per op |")
    print("|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        members = ids[:size]
        group = patch("Groups/admin", [{"op": "add", "path": "members", "value": [{"value": pk}]} for pk in members])
        assert User.objects.filter(organization=organization, roles__contains=["admin"]).count() == size
        User.objects.filter(organization=organization).update(roles=["member"])
        user = patch(f"Users/{ids[-1]}", [{"op": "replace", "path": "title", "value": f"T{i}"} for i in range(size)])
        print(f"| {size} | {group:.2f} | {group / size * 1e6:.0f} | {user:.2f} | {user / size * 1e6:.0f} |")

    from scim2_models import Context, Group, PatchOp

    from scim import membership
    from scim.resources import POLICY

    print()
    print("| operations | scim2-models PatchOp.patch on a Group (s) | scim.membership (s) |")
    print("|---:|---:|---:|")
    for size in args.sizes:
        payload = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": pk}]} for pk in ids[:size]],
        }
        patch = PatchOp[Group].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)
        started = time.perf_counter()
        patch.patch(Group(id="admin", display_name="admin"), scim_policy=POLICY)
        library = time.perf_counter() - started
        started = time.perf_counter()
        after = membership.members_after_patch(
            patch.operations, set(), role="admin", base_url="http://testserver/scim/v2"
        )
        ours = time.perf_counter() - started
        assert len(after) == size
        print(f"| {size} | {library:.2f} | {ours:.3f} |")


if __name__ == "__main__":
    main()

"""scim2-tester's compliance checks against the running service (live_server) with a real token.

The tester fills resources with random values. Where a random value breaks a documented rule of
the service, the right answer is a SCIM 400 (or the documented 501 for groups), not a weaker rule;
those checks are refused, and each refusal must be one of the reasons below. Everything else passes,
discovery entirely. The random generator is seeded so a run is reproducible."""

import random
import re

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EXT = re.escape("urn:ietf:params:scim:schemas:extension:au-prescriber:2.0:User")

# Why a check may be refused: (pattern on the check's reason, why that refusal is right).
REFUSALS = [
    (
        r"Creating a group: the groups are the service's roles",
        "Groups are the four assignable roles; creating one is 501 (the contract), so the tester's "
        "Group create/read/replace/patch/delete checks, which start by creating a group, can't run.",
    ),
    (
        rf"{EXT}:(dateOfBirth|hpiiNumber|prescriberNumber|providerNumber|ahpraNumber|hospitalProviderNumber): ",
        "A random string is not a date of birth, an HPI-I, a PBS prescriber number, a Medicare provider "
        "number or an AHPRA number: 400 invalidValue naming the attribute, with the REST API's message.",
    ),
    (
        r"phoneNumbers: ",
        "Ten random digits are rarely an Australian phone number: 400 invalidValue naming phoneNumbers.",
    ),
    (
        r"(emails|phoneNumbers)(\.type|\.primary)?: (the service keeps|the one)",
        "The service keeps one e-mail address and one phone number, type work, primary: a PATCH asking "
        "for another type, a second value or primary false would answer 2xx and change nothing, so it "
        "is 400 invalidValue naming the attribute.",
    ),
    (
        r"This user is disabled and can't be changed",
        "An earlier check set active=false, which disables the user; a disabled user can't be changed "
        "(the REST API's 409 user_disabled): 400 mutability.",
    ),
]
PASSING = {"SUCCESS", "COMPLIANT", "ACCEPTABLE", "SKIPPED"}


def run_checks(live_server, raw_token, **kwargs):
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server

    http = Client(base_url=f"{live_server.url}/scim/v2", headers={"Authorization": f"Bearer {raw_token}"}, timeout=30)
    return check_server(SyncSCIMClient(http), **kwargs)


def refusal_reason(result) -> str | None:
    for pattern, why in REFUSALS:
        if re.search(pattern, result.reason or ""):
            return why
    return None


def test_discovery_checks_all_pass(live_server, scim_token):
    results = run_checks(live_server, scim_token[1], include_tags={"discovery"})
    assert len(results) >= 20
    failed = [(r.title, r.status.name, r.reason) for r in results if r.status.name not in PASSING]
    assert not failed, failed


def test_every_other_check_passes_or_is_refused_for_a_documented_rule(live_server, scim_token):
    random.seed(16)
    results = run_checks(live_server, scim_token[1])
    refused, unexplained = [], []
    for result in results:
        if result.status.name in PASSING:
            continue
        why = refusal_reason(result)
        (refused if why else unexplained).append((result.resource_type, result.title, result.reason))
    assert not unexplained, unexplained
    passed = [r for r in results if r.status.name in PASSING]
    # The User CRUD checks that touch only what the rules allow do run and pass.
    user_crud_passed = {
        r.title
        for r in passed
        if r.resource_type == "User" and r.tags & {"crud:create", "crud:read", "crud:update", "crud:delete"}
    }
    assert {"object_creation", "object_query", "object_query_without_id", "object_deletion"} <= user_crud_passed, (
        user_crud_passed
    )
    print(f"\n{len(passed)} passed, {len(refused)} refused")
    for resource_type, title, reason in refused:
        print(f"REFUSED {resource_type} {title}: {(reason or '')[:160]}")

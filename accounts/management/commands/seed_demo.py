import json
import os
from pathlib import Path

from django.contrib.auth.hashers import check_password
from django.core.management.base import CommandError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret

from accounts import services
from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.commands import OperatorCommand
from hi_service import fixtures
from organizations.models import ApiClient, Organization
from organizations.services import api_client_create, api_client_secret_reset, api_client_update, organization_create

DEMO_ORGANIZATION = "Demo Practice"
DEMO_HPIO = "8003620000000005"
DEMO_CLIENT = "Demo practice software"
ALL_SCOPES = ["read:users", "create:user", "update:user", "delete:user", "read:audit", "manage:webhooks"]

PROVIDER = {
    "date_of_birth": "1980-03-15",
    "sex": "F",
    "hpii_number": "8003614900000017",
    "prescriber_type": "M",
    "prescriber_number": "2345678",
    "qualifications": "MBBS",
}
DEMO_USERS = [
    # (email, given, family, roles at creation, provider details, roles set afterwards, then disable?)
    ("mia.member@demo-practice.example", "Mia", "Member", ["member"], None, None, False),
    ("ben.smith@demo-practice.example", "Ben", "Smith", ["rx_reader"], None, None, False),
    ("sarah.johnson@demo-practice.example", "Sarah", "Johnson", ["provider"], PROVIDER, None, False),
    # Upgraded to provider, details not given yet (the workflow's step 2): can't prescribe.
    ("priya.patel@demo-practice.example", "Priya", "Patel", ["rx_reader"], None, ["provider"], False),
    ("alex.nguyen@demo-practice.example", "Alex", "Nguyen", ["admin", "receptionist"], None, None, False),
    ("jo.former@demo-practice.example", "Jo", "Former", ["receptionist"], None, None, True),
]


def _register_provider(key: str, roles=("provider",), **overrides):
    """A provider whose details are the emulator's fixture practitioner `key` (hi_service/fixtures.py)."""
    person = fixtures.PRACTITIONERS[key]
    details = {
        "date_of_birth": person.date_of_birth.isoformat(),
        "sex": person.sex,
        "hpii_number": person.hpii,
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
    }
    names = {"given_name": person.given_names[0], "family_name": person.family_name}
    details.update({k: v for k, v in overrides.items() if k not in names})
    names.update({k: v for k, v in overrides.items() if k in names})
    return (f"{key.replace('_', '.')}@demo-practice.example", names["given_name"], names["family_name"],
            list(roles), details, None, False)


# One provider in each verification state, answered by the local HI Service emulator (`make run`):
# verified, inactive (deactivated, retired), mismatch, not_found, error (a service fault), verified
# by AHPRA number with the HPI-I found shown, and pending (the slow answer, left to the worker).
# Sarah Johnson's HPI-I is well formed but not in the register: not_found. Without HI_SERVICE_URL
# they all stay unverified.
DEMO_USERS += [
    _register_provider("active"),
    _register_provider("deactivated"),
    _register_provider("retired"),
    _register_provider("mismatch", family_name="Tailor"),
    _register_provider("not_found"),
    _register_provider("fault"),
    # No HPI-I yet, so not a prescriber yet: the register's answer shows the HPI-I to enter.
    _register_provider(
        "by_ahpra", roles=("member",), hpii_number=None, ahpra_number=fixtures.PRACTITIONERS["by_ahpra"].registration_id
    ),
    _register_provider("slow"),
]


class Command(OperatorCommand):
    help = (
        "Create (or refresh) the demo: a demo organization, a staff superuser, an API client with every "
        "scope, and users in every state. Idempotent: rerunning creates nothing twice. With "
        "--credentials-file the staff password and client secret are kept there (mode 600) and reused "
        "on every run while they still work; without it each run prints fresh ones (both stored hashed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--staff-email", default="staff@demo.example")
        parser.add_argument("--staff-password", default=None, help="Default: a new random password.")
        parser.add_argument(
            "--credentials-file",
            type=Path,
            default=None,
            help="Keep the demo's staff password and client secret here and reuse them while they work.",
        )

    def handle(self, *args, staff_email, staff_password, credentials_file, **options):
        actor = Actor.system("seed_demo")
        kept = _read_credentials(credentials_file)
        with transaction.atomic():
            organization = Organization.objects.filter(name=DEMO_ORGANIZATION).first() or organization_create(
                actor=actor, name=DEMO_ORGANIZATION, hpio_number=DEMO_HPIO
            )
            staff = User.objects.filter(email=staff_email).first()
            if staff is not None and staff.organization_id is not None:
                raise CommandError(f"{staff_email} is a practice user, not platform staff; pick another --staff-email.")
            password = staff_password or kept.get("staff_password")
            if staff is None:
                password = password or generate_client_secret()[:20]
                staff = User.objects.create_superuser(
                    email=staff_email, password=password, given_name="Demo", family_name="Staff"
                )
                audit_event_record(
                    action=AuditEvent.Action.STAFF_PRIVILEGES_CHANGED,
                    actor=actor,
                    organization_id=None,
                    user_id=staff.pk,
                    changes={"is_staff": {"from": False, "to": True}, "is_superuser": {"from": False, "to": True}},
                )
            elif not (password and staff.check_password(password)):
                password = password or generate_client_secret()[:20]
                staff.set_password(password)
                staff.save(update_fields=["password"])

            api_client = ApiClient.objects.filter(organization=organization, name=DEMO_CLIENT).first()
            secret = kept.get("client_secret")
            if api_client is None:
                api_client, secret = api_client_create(
                    actor=actor, organization=organization, name=DEMO_CLIENT, scopes=ALL_SCOPES
                )
            elif not (
                secret
                and kept.get("client_id") == api_client.application.client_id
                and check_password(secret, api_client.application.client_secret)
            ):
                # The secret is stored hashed: without a kept copy that still works, a new one is the only way.
                secret = api_client_secret_reset(api_client=api_client, actor=actor)
            if api_client.scopes != set(ALL_SCOPES):  # a demo seeded before a scope existed
                api_client = api_client_update(api_client=api_client, actor=actor, scopes=ALL_SCOPES)
        _write_credentials(
            credentials_file,
            {"staff_password": password, "client_id": api_client.application.client_id, "client_secret": secret},
        )

        for email, given, family, roles, details, later_roles, disable in DEMO_USERS:
            if User.objects.filter(email=email).exists():
                continue
            user = services.user_create(
                organization=organization,
                actor=actor,
                email=email,
                given_name=given,
                family_name=family,
                roles=roles,
                provider_details=details,
            )
            if later_roles:
                services.user_roles_set(user=user, actor=actor, roles=later_roles)
            if disable:
                services.user_disable(user=user, actor=actor)

        self.stdout.write(f"Organization:  {organization.name}  id={organization.pk}")
        self.stdout.write(f"Staff login:   {staff_email} / {password}   (admin at /admin/)")
        self.stdout.write(f"API client_id: {api_client.application.client_id}")
        self.stdout.write(f"client_secret: {secret}")


def _read_credentials(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_credentials(path: Path | None, credentials: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(credentials, handle)

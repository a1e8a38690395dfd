"""Report (or repair) drift between the users in the database and their Cognito accounts."""

import uuid

from django.core.management.base import CommandError

from accounts.cognito.gateway import get_gateway
from accounts.cognito.reconcile import user_drift, user_repair
from accounts.models import User
from core.commands import OperatorCommand
from organizations.models import Organization


class Command(OperatorCommand):
    help = (
        "Compare every practice user with its Cognito account: missing account, wrong attributes, wrong "
        "groups, enabled when disabled (the user or its organization; or the reverse). One line per drift "
        "(user id and kind), then a summary. --fix records the desired state again and applies it. "
        "Exit code 1 while drift remains."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization's users (its id).")
        parser.add_argument("--fix", action="store_true", help="Repair the drift found.")

    def handle(self, *args, organization, fix, **options):
        # The organization's flag is part of the desired state (an inactive one's accounts are off).
        users = User.objects.filter(organization__isnull=False).select_related("organization")
        if organization is not None:
            try:
                organization_id = uuid.UUID(organization)
            except ValueError:
                raise CommandError("--organization must be an organization id (a UUID).") from None
            if not Organization.objects.filter(pk=organization_id).exists():
                raise CommandError(f"No organization with id {organization_id}.")
            users = users.filter(organization_id=organization_id)

        gateway = get_gateway()
        checked = drifted = fixed = 0
        remaining = []
        for user in users.order_by("created_at", "pk").iterator(chunk_size=500):
            checked += 1
            drifts = user_drift(user, gateway)
            if not drifts:
                continue
            drifted += 1
            for drift in drifts:
                self.stdout.write(str(drift))
            if fix:
                user_repair(user)
                user.refresh_from_db()
                after = user_drift(user, gateway)
                if after:
                    remaining.append(user.pk)
                    for drift in after:
                        self.stdout.write(f"{drift} (still, after fix)")
                else:
                    fixed += 1
                    self.stdout.write(f"{user.pk} fixed")
            else:
                remaining.append(user.pk)

        self.stdout.write(f"checked: {checked}  drifted: {drifted}  fixed: {fixed}  remaining: {len(remaining)}")
        if remaining:
            raise CommandError(f"{len(remaining)} user(s) drift from Cognito.", returncode=1)

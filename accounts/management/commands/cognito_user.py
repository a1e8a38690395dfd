"""Show one practice user's Cognito account beside what the database wants it to be."""

from django.core.management.base import CommandError

from accounts.cognito import sync
from accounts.cognito.clients import CognitoError, get_user_pool_id
from accounts.cognito.gateway import CUSTOM_ORGANIZATION_ID, get_gateway
from accounts.models import CognitoSync, User
from core.commands import OperatorCommand
from core.operator_time import local_text


class Command(OperatorCommand):
    help = (
        "Show a practice user's account in Cognito (under `make run`, the local emulator): enabled, "
        "status, groups and attributes, beside what the database wants and the sync's state. Changes "
        "nothing. Exit status 1 when the account is missing or differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The user's e-mail address.")

    def handle(self, *args, email, **options):
        user = (
            User.objects.filter(email=email.strip().lower())
            .select_related("organization", "cognito_sync")
            .first()
        )
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        if user.organization_id is None:
            raise CommandError(f"{user.email} is platform staff: staff sign in to the admin, not through Cognito.")
        try:
            account = get_gateway().describe(username=str(user.pk))
        except CognitoError as error:
            raise CommandError(f"Cognito didn't answer ({error.code}); nothing to show.") from error

        wanted = sync.desired_state(user)
        row = getattr(user, "cognito_sync", None)
        self.stdout.write(f"User {user.pk} in {user.organization.name!r}, Cognito user pool {get_user_pool_id()}")
        state = row.state if row is not None else CognitoSync.State.PENDING
        since = f" since {local_text(row.updated_at)}" if row is not None else ""
        self.stdout.write(f"  sync: {state}{since}")
        if account is None:
            self.stdout.write("  Cognito: no account with this user's username (the sync creates it).")
            raise CommandError("The Cognito account is missing.", returncode=1)
        attributes = account["attributes"]
        cognito = {
            "enabled": account["enabled"],
            "groups": sorted(account["groups"]),
            **{name: attributes.get(name, "") for name in ("email", "given_name", "family_name")},
            "organization_id": attributes.get(CUSTOM_ORGANIZATION_ID, ""),
        }
        self.stdout.write(f"  username: {account['username']}  status: {account['status']}")
        differs = []
        for name in ("enabled", "groups", "email", "given_name", "family_name", "organization_id"):
            have, want = cognito[name], wanted[name]
            mark = "" if have == want else f"   (the database wants {_shown(want)})"
            if have != want:
                differs.append(name)
            self.stdout.write(f"  {name}: {_shown(have)}{mark}")
        if differs:
            raise CommandError(
                f"The account differs in {', '.join(differs)}; `python manage.py reconcile_cognito --fix` repairs it.",
                returncode=1,
            )
        self.stdout.write("In step with the database.")


def _shown(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)

from django.core.management.base import CommandError

from accounts import services
from accounts.management.operator import system_actor_name, user_from_argument
from accounts.selectors import user_get
from audit.changes import REASON_MAX_LENGTH
from audit.context import Actor
from core.commands import OperatorCommand
from core.operator_time import local_text
from organizations.management.operator import organization_from_option


class Command(OperatorCommand):
    help = (
        "Disable one user of an organization, exactly as PUT /v1/organizations/{org}/users/{id}/disable: "
        "status disabled, roles reset to member, and (after commit) the Cognito account disabled and "
        "signed out everywhere. Recorded in the audit trail with a system actor named "
        '"disable_user: REASON" and the reason in the event\'s changes. Disabling a disabled user '
        "changes nothing. Not reversible here "
        "(staff can re-enable in the admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("user", metavar="USER_ID_OR_EMAIL", help="The user's id or email.")
        parser.add_argument("--organization", required=True, help="The organization's id; the user must belong to it.")
        parser.add_argument(
            "--reason", default="", help="Why (up to 500 characters); recorded in the audit event's changes and actor."
        )

    def handle(self, *args, user, organization, reason, **options):
        organization = organization_from_option(organization)
        if len(reason.strip()) > REASON_MAX_LENGTH:
            raise CommandError(f"--reason is longer than {REASON_MAX_LENGTH} characters.")
        target = user_from_argument(user, organization)
        if target.is_disabled:
            since = local_text(target.disabled_at)
            self.stdout.write(f"User {target.pk} was already disabled (since {since}); nothing changed.")
            return
        services.user_disable(
            user=target, actor=Actor.system(system_actor_name("disable_user", reason)), reason=reason or None
        )
        fresh = user_get(organization_id=organization.pk, user_id=target.pk)
        cognito = getattr(fresh, "cognito_sync", None)
        self.stdout.write(f"Disabled user {fresh.pk}; roles are now {', '.join(fresh.roles)}.")
        state = cognito.state if cognito else "pending"
        later = "" if state == "synced" else " (the sync_cognito worker completes it)"
        self.stdout.write(f"Cognito: {state}{later}")

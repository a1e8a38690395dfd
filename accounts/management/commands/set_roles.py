import re

from django.core.management.base import CommandError

from accounts import services
from accounts.management.operator import system_actor_name, user_from_argument
from accounts.selectors import user_get
from audit.context import Actor
from core.commands import OperatorCommand
from core.errors import ApplicationError
from organizations.management.operator import organization_from_option


class Command(OperatorCommand):
    help = (
        "Replace one user's roles, exactly as PUT /v1/organizations/{org}/users/{id}/roles: assignable "
        "roles are admin, provider, receptionist and rx_reader; --roles member alone removes every other "
        "role. Provider details are kept. Recorded in the audit trail (old and new roles) with a system "
        'actor named "set_roles: REASON"; the Cognito groups follow after commit. Setting the roles the '
        "user already has changes nothing. A disabled user's roles can't be set."
    )

    def add_arguments(self, parser):
        parser.add_argument("user", metavar="USER_ID_OR_EMAIL", help="The user's id or email.")
        parser.add_argument("--organization", required=True, help="The organization's id; the user must belong to it.")
        parser.add_argument(
            "--roles", required=True, help='The complete new set, space- or comma-separated: "provider rx_reader".'
        )
        parser.add_argument("--reason", default="", help="Why; stored in the audit event's actor name.")

    def handle(self, *args, user, organization, roles, reason, **options):
        organization = organization_from_option(organization)
        wanted = [role for role in re.split(r"[\s,;]+", roles) if role]
        target = user_from_argument(user, organization)
        before = list(target.roles)
        try:
            services.user_roles_set(
                user=target, actor=Actor.system(system_actor_name("set_roles", reason)), roles=wanted
            )
        except ApplicationError as error:
            raise CommandError(f"{error.message} ({error.code})") from error
        fresh = user_get(organization_id=organization.pk, user_id=target.pk)
        if fresh.roles == before:
            self.stdout.write(f"User {fresh.pk} already has roles {', '.join(before)}; nothing changed.")
            return
        self.stdout.write(f"User {fresh.pk}: roles {', '.join(before)} -> {', '.join(fresh.roles)}.")
        if "provider" in fresh.roles and not fresh.can_prescribe and fresh.is_active:
            self.stdout.write("Note: the provider details are not complete yet, so the user can't prescribe.")

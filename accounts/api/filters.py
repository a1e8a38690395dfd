import django_filters
from django.db.models import Q
from django.db.models.functions import Lower

from accounts import roles as role_names
from accounts.api.audit_events import TimestampFilter
from accounts.models import User, has_role


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(
        choices=[(role, role) for role in sorted(role_names.ALL_ROLES)], method="filter_role"
    )
    status = django_filters.ChoiceFilter(choices=User.Status.choices)
    email = django_filters.CharFilter(method="filter_email")
    partner_user_id = django_filters.CharFilter()
    search = django_filters.CharFilter(method="filter_search", help_text="Part of a name or email.")
    # Validated as the audit filters' since/until are (ISO 8601, a sane offset): a bad one is 400 naming it.
    expiring_before = TimestampFilter(
        field_name="access_expires_at",
        lookup_expr="lt",
        help_text="Only users whose access_expires_at is set and earlier than this date-time.",
    )

    class Meta:
        model = User
        fields = ["role", "status", "email", "partner_user_id", "search", "expiring_before"]

    def filter_role(self, users, name, value):
        return users.filter(has_role(value))

    def filter_email(self, users, name, value):
        # lower(email) = ...: the unique index user_email_ci_unique answers it (emails are stored lower-cased).
        return users.alias(email_lower=Lower("email")).filter(email_lower=value.strip().lower())

    def filter_search(self, users, name, value):
        term = value.strip()
        return users.filter(Q(given_name__icontains=term) | Q(family_name__icontains=term) | Q(email__icontains=term))

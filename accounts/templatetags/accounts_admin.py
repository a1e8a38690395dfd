"""The admin index's "Needs attention" panel: what an operator should look at first."""

from django import template
from django.urls import reverse

from accounts.admin import providers_with_incomplete_details
from accounts.models import CognitoSync, User
from core.admin_mixins import staff_member

register = template.Library()


@register.simple_tag(takes_context=True)
def admin_attention(context):
    """Counts with links to the filtered lists, for the models the staff member may view."""
    user = staff_member(context)
    if user is None:
        return []
    items = []
    if user.has_perm("accounts.view_cognitosync"):
        changelist = reverse("admin:accounts_cognitosync_changelist")
        items.append(
            {
                "label": "Failed Cognito syncs",
                "count": CognitoSync.objects.filter(state=CognitoSync.State.FAILED).count(),
                "url": f"{changelist}?state__exact={CognitoSync.State.FAILED}",
            }
        )
        items.append(
            {
                "label": "Pending Cognito syncs",
                "count": CognitoSync.objects.filter(state=CognitoSync.State.PENDING).count(),
                "url": f"{changelist}?state__exact={CognitoSync.State.PENDING}",
            }
        )
    if user.has_perm("accounts.view_user"):
        practice_users = User.objects.filter(organization__isnull=False)
        items.append(
            {
                "label": "Providers with incomplete details",
                "count": providers_with_incomplete_details(practice_users).count(),
                "url": reverse("admin:accounts_user_changelist") + "?can_prescribe=incomplete",
            }
        )
    return items

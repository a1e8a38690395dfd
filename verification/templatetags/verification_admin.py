"""The admin index: HI Service certificates about to expire, and providers the register did not verify."""

from django import template
from django.urls import reverse

from accounts.models import ProviderDetails, VerificationStatus
from core.admin_mixins import staff_member
from verification import checks

register = template.Library()

_NEEDS_LOOKING_AT = (
    VerificationStatus.MISMATCH, VerificationStatus.NOT_FOUND, VerificationStatus.INACTIVE, VerificationStatus.ERROR
)


@register.simple_tag(takes_context=True)
def hi_service_warnings(context):
    if staff_member(context) is None:
        return []
    return checks.certificate_warnings()


@register.simple_tag(takes_context=True)
def verification_attention(context):
    user = staff_member(context)
    if user is None or not user.has_perm("accounts.view_providerdetails"):
        return []
    changelist = reverse("admin:accounts_providerdetails_changelist")
    return [
        {
            "label": f"Providers the HI Service says are {VerificationStatus(status).label}",
            "count": ProviderDetails.objects.filter(verification_status=status).count(),
            "url": f"{changelist}?verification_status__exact={status}",
        }
        for status in _NEEDS_LOOKING_AT
    ]

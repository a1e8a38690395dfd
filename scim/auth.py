"""Bearer tokens of the identity providers: the token decides the organization."""

import datetime

from django.utils import timezone

from core.write_gate import take_write_turn
from scim.models import ScimToken
from scim.services import token_hash

# last_used_at is written at most this often per token, so provisioning bursts don't write per request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def authenticate(request) -> ScimToken | None:
    """The request's live token (not revoked, its organization active), or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or len(raw) > 200:
        return None
    token = (
        ScimToken.objects.select_related("organization")
        .filter(token_hash=token_hash(raw), revoked_at__isnull=True, organization__is_active=True)
        .first()
    )
    if token is None:
        return None
    # The caller is known: a write now waits for its organization's turn (raises when refused).
    take_write_turn(request, ("organization", token.organization_id))
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token

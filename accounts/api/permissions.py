from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.api.authentication import REALM
from core.api.scopes import required_scope
from organizations.selectors import organization_for_caller


class HasRequiredScope(BasePermission):
    """Each view names the scope each action needs in `required_scopes` ({action: scope}).
    An action that names none only needs a valid token (GET /organizations/{org}).

    Tenancy comes before the scope: another organization's URL, or a resource (a user) that is
    not in the caller's organization, is 404 whatever the token's scopes and whatever the method,
    so a token without the scope can't tell which ids exist (a 403 would say "it's there")."""

    message = "This token lacks the scope this request needs."

    def has_permission(self, request, view):
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            return False
        organization_id = getattr(view, "kwargs", {}).get("organization_id")
        if organization_id is not None:
            organization_for_caller(principal=principal, organization_id=organization_id)  # 404 to outsiders
        required = required_scope(view)
        if not required or required not in principal.scopes:
            # Nothing after this looks the object up (OPTIONS, a method the route doesn't serve, a
            # missing scope), so it is checked here; an allowed action's own lookup does it otherwise.
            _raise_unless_in_organization(view)
        if required and required not in principal.scopes:
            raise InsufficientScope(required)
        return True


class InsufficientScope(PermissionDenied):
    """403 with RFC 6750 §3.1's challenge naming the scope, so a client knows which token to ask for."""

    problem_code = "insufficient_scope"

    def __init__(self, scope: str):
        super().__init__(f"This token lacks the `{scope}` scope.")
        self.auth_header = f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'


def _raise_unless_in_organization(view) -> None:
    """On a detail route, the object must be the caller's (404 otherwise) before a missing scope or
    an unserved method is admitted. An allowed request pays nothing more: its view looks it up."""
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    if lookup and lookup != "organization_id" and lookup in view.kwargs and hasattr(view, "get_object"):
        try:
            view.get_object()  # Http404 for another organization's object
        except (AssertionError, ImproperlyConfigured):
            return  # a view with no queryset of its own to look in (DRF's get_object asserts): its handler decides

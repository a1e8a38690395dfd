from rest_framework.permissions import BasePermission

from config.api.scopes import required_scope


class HasRequiredScope(BasePermission):
    """Each view names the scope each action needs in `required_scopes` ({action: scope}).
    An action that names none only needs a valid token (GET /organizations/{org})."""

    message = "This token lacks the scope this request needs."

    def has_permission(self, request, view):
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            return False
        required = required_scope(view)
        if required and required not in principal.scopes:
            self.message = f"This token lacks the `{required}` scope."
            return False
        return True

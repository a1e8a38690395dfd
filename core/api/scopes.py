"""The scope an API action needs: one lookup, for the permission check and the OpenAPI document alike."""


def required_scope(view) -> str | None:
    """A view names the scope each action needs in `required_scopes` ({action: scope}).
    None: the action names none, and any valid token of the organization will do."""
    return getattr(view, "required_scopes", {}).get(getattr(view, "action", None))

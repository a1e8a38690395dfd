"""One lookup of the scope an action needs, used by the permission check and the OpenAPI document."""

from types import SimpleNamespace

import pytest

from accounts.api import permissions
from accounts.api.views import OrganizationViewSet, UserViewSet
from core.api import schema
from core.api.scopes import required_scope


def _view(viewset, action):
    view = viewset()
    view.action = action
    view.kwargs = {}  # as DRF's dispatch sets them: no URL kwargs
    return view


def test_the_scope_is_the_one_the_view_names_for_its_action():
    assert required_scope(_view(UserViewSet, "create")) == "create:user"
    assert required_scope(_view(UserViewSet, "history")) == "read:audit"


def test_an_action_that_names_no_scope_needs_none():
    assert required_scope(_view(OrganizationViewSet, "retrieve")) is None
    assert required_scope(_view(UserViewSet, "metadata")) is None  # OPTIONS: not an action it names
    assert required_scope(SimpleNamespace()) is None  # no required_scopes, no action


def test_the_permission_and_the_document_share_it():
    assert permissions.required_scope is required_scope
    assert schema.required_scope is required_scope


def test_a_token_without_the_scope_is_refused_naming_it():
    permission = permissions.HasRequiredScope()
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, scopes={"read:users"}))
    assert permission.has_permission(request, _view(UserViewSet, "list"))
    with pytest.raises(permissions.InsufficientScope) as refused:
        permission.has_permission(request, _view(UserViewSet, "create"))
    assert refused.value.detail == "This token lacks the `create:user` scope."
    assert refused.value.auth_header.endswith('error="insufficient_scope", scope="create:user"')

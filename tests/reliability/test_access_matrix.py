"""Every tenant endpoint x every way in which a caller may not get in.

The endpoints come from the URL conf itself (every pattern under /v1/organizations/ and the HTTP
methods its viewset maps), so a new endpoint is in the matrix the moment it is routed; an endpoint
that names no required scope fails here unless it is deliberately listed as open to any token.
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from accounts.api.views import OrganizationViewSet
from audit.context import Actor
from organizations.services import api_client_revoke
from tests.factories import UserFactory
from tests.reliability.support import ALL_SCOPES, assert_problem, client_and_token

# (viewset, action) that any valid token of the organization may call: the contract's "any".
OPEN_TO_ANY_SCOPE = {(OrganizationViewSet, "retrieve")}
TENANT_PREFIX = "v1/organizations/"


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _kwarg_names(pattern) -> set[str]:
    regex = getattr(pattern.pattern, "regex", None)
    names = set(regex.groupindex) if regex is not None else set()
    return names | set(getattr(pattern.pattern, "converters", {}))


def tenant_endpoints():
    """(id, url name, kwarg names, HTTP method, viewset, action) for every routed tenant endpoint."""
    endpoints = []
    for route, pattern in _walk(get_resolver().url_patterns):
        # Router patterns are regexes (^organizations/...), path() ones are not.
        if not route.replace("^", "").startswith(TENANT_PREFIX):
            continue
        callback = pattern.callback
        viewset, actions = getattr(callback, "cls", None), getattr(callback, "actions", None)
        assert viewset is not None and actions, f"{route} is not a DRF viewset: teach the access matrix about it"
        assert pattern.name, f"{route} has no URL name: name it so the matrix can reverse it"
        kwargs = _kwarg_names(pattern)
        for method, action in sorted(actions.items()):
            endpoints.append((f"{method.upper()} {pattern.name}", pattern.name, kwargs, method, viewset, action))
    return endpoints


ENDPOINTS = tenant_endpoints()


def test_the_matrix_covers_the_contracts_endpoints():
    found = {endpoint_id for endpoint_id, *_ in ENDPOINTS}
    expected = {
        "GET organization-detail",
        "GET user-list",
        "POST user-list",
        "GET user-detail",
        "PUT user-detail",
        "PATCH user-detail",
        "PUT user-roles",
        "PUT user-disable",
        "GET user-history",
        "GET audit-event-list",
    }
    assert expected <= found, expected - found


def _webhook_endpoint_with_delivery(organization):
    """A webhook endpoint of the organization, and one delivery of it (the URL is never called here)."""
    from django.test import override_settings

    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_endpoint_create

    with override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True):
        endpoint, _ = webhook_endpoint_create(
            organization=organization, actor=Actor.system(), url="http://127.0.0.1:9/hooks", events=["*"]
        )
    UserFactory(organization=organization)
    return endpoint, WebhookDelivery.objects.get(endpoint=endpoint)


def _url(name, kwarg_names, organization, user):
    values = {"organization_id": str(organization.pk), "pk": str(user.pk)}
    if name.startswith("webhook-endpoint-") and "pk" in kwarg_names:
        endpoint, delivery = _webhook_endpoint_with_delivery(organization)
        values.update(pk=str(endpoint.pk), delivery_id=str(delivery.pk))
    unknown = kwarg_names - set(values)
    assert not unknown, f"{name}: the access matrix has no value for URL kwargs {unknown}"
    return reverse(name, kwargs={k: values[k] for k in kwarg_names})


def _call(method, url, authorization=None):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    if method in ("post", "put", "patch"):
        return getattr(client, method)(url, {}, format="json", **headers)
    return getattr(client, method)(url, **headers)


@pytest.mark.parametrize(("name", "kwarg_names", "method", "viewset", "action"), [e[1:] for e in ENDPOINTS],
                         ids=[e[0] for e in ENDPOINTS])
def test_access_matrix(organization, bob, other_organization, charlie, name, kwarg_names, method, viewset, action):
    """Alice's practice and its member Bob are the target; Charlie's clinic (with Charlie) the outsider."""
    url = _url(name, kwarg_names, organization, bob)
    required = getattr(viewset, "required_scopes", {}).get(action)
    assert required or (viewset, action) in OPEN_TO_ANY_SCOPE, (
        f"{viewset.__name__}.{action} names no required scope: every tenant endpoint needs one"
    )

    # No token, or something that isn't a bearer token we issued: 401.
    assert_problem(_call(method, url), 401)
    for malformed in ("Bearer", "Bearer a b", "Bearer not-a-token", "Bearer \u00e9\u00e9", "Basic Zm9vOmJhcg==",
                      "Bearer " + "A" * 5000):
        assert_problem(_call(method, url, malformed), 401)

    # Expired token: 401.
    _, expired = client_and_token(organization, name="Expired")
    AccessToken.objects.filter(application__api_client__name="Expired").update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    assert_problem(_call(method, url, f"Bearer {expired}"), 401)

    # Revoked client: its live token stops working at once.
    revoked_client, revoked = client_and_token(organization, name="Revoked")
    api_client_revoke(actor=Actor.system("tests"), api_client=revoked_client)
    assert_problem(_call(method, url, f"Bearer {revoked}"), 401)

    # Another organization's token, with every scope: 404 for Alice's organization, and 404 for
    # Alice's user under Charlie's own organization id.
    _, outsider = client_and_token(other_organization, name="Charlie's software")
    assert_problem(_call(method, url, f"Bearer {outsider}"), 404)
    if "pk" in kwarg_names:
        cross_kwargs = {**resolve(url).kwargs, "organization_id": str(other_organization.pk)}
        cross = reverse(name, kwargs=cross_kwargs)
        assert_problem(_call(method, cross, f"Bearer {outsider}"), 404)

    # A token of the right organization holding every scope but the one needed: 403.
    if required:
        _, scopeless = client_and_token(organization, scopes=[s for s in ALL_SCOPES if s != required], name="Less")
        body = assert_problem(_call(method, url, f"Bearer {scopeless}"), 403)
        assert required in body["detail"]

    # And the right token does get in (so every 4xx above was about access, not a wrong URL).
    _, good = client_and_token(organization, name="Good")
    response = _call(method, url, f"Bearer {good}")
    assert response.status_code not in (401, 403, 404) and response.status_code < 500, response.content[:300]

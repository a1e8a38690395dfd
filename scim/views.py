"""SCIM 2.0 endpoints (RFC 7644) under /scim/v2/. Thin: authenticate, parse with scim2-models,
scope to the token's organization, call one service, render.

Not under /v1: errors here are SCIM errors (`application/scim+json`, RFC 7644 §3.12), and the
identity providers post without CSRF tokens (the bearer token is the credential)."""

import json
import logging
import math
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError as PydanticValidationError
from scim2_models import (
    Context,
    Error,
    Group,
    ListResponse,
    PatchOp,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
    ScimFilter,
)
from scim2_models.path.expressions import AttrPath, CompareOperator, Comparison

from accounts import roles as role_names
from accounts.models import User, has_role
from scim import membership, patching, resources
from scim.auth import authenticate
from scim.models import ScimIdentity
from scim.resources import POLICY, ScimUser
from scim.services import (
    ScimError,
    scim_group_members_change,
    scim_user_apply,
    scim_user_create,
    scim_user_delete,
)
from scim.throttling import ScimTokenRateThrottle

logger = logging.getLogger(__name__)

SCIM_CONTENT_TYPE = "application/scim+json"
DEFAULT_COUNT = 100


# --- responses ------------------------------------------------------------------------------------


def _json(payload, status=200, headers=None) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), status=status, content_type=SCIM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(status: int, detail: str, scim_type: str | None = None, headers=None) -> HttpResponse:
    error = Error(status=status, scim_type=scim_type, detail=detail)
    return _json(error.model_dump(scim_ctx=Context.DEFAULT), status=status, headers=headers)


def _refuse_over(limit: int, sent: int, message: str) -> None:
    """A request carrying more than a cap allows: 400 invalidValue, the message told the limit and the count."""
    if sent > limit:
        raise ScimError(400, message.format(limit=limit, sent=sent), "invalidValue")


def _resource_response(resource, status=200, params=None, location=False) -> HttpResponse:
    headers = {"ETag": resource.meta.version}
    if location:
        headers["Location"] = resource.meta.location
    return _json(resources.dump(resource, response_parameters=params), status=status, headers=headers)


def _list_response(model, items, total: int, start: int, params) -> HttpResponse:
    message = ListResponse[model](total_results=total, start_index=start, items_per_page=len(items), resources=items)
    return _json(message.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params))


# --- the base view ---------------------------------------------------------------------------------


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    http_method_names = ["get", "post", "put", "patch", "delete"]

    def dispatch(self, request, *args, **kwargs):
        self.token = authenticate(request)
        if self.token is None:
            return error_response(
                401, "A valid SCIM bearer token is required.", headers={"WWW-Authenticate": 'Bearer realm="scim"'}
            )
        self.organization = self.token.organization
        request.scim_token = self.token
        throttle = ScimTokenRateThrottle()
        if not throttle.allow_request(request, self):
            retry_after = max(1, math.ceil(throttle.wait() or 1))
            return error_response(
                429,
                f"Too many requests for this SCIM token; retry after {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
        self.base_url = request.build_absolute_uri("/scim/v2").rstrip("/")
        if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
            return error_response(405, f"{request.method} is not supported here.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except ScimError as error:
            return error_response(error.status, error.detail, error.scim_type)
        except SCIMException as error:
            return error_response(error.status, error.detail, error.scim_type or None)
        except PydanticValidationError as error:  # a patched resource that no longer validates
            first = Error.from_validation_errors(error)[0]
            return error_response(400, first.detail or "Invalid value.", first.scim_type or "invalidValue")

    # parsing

    def body(self) -> dict:
        try:
            payload = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):
            raise ScimError(400, "The request body is not valid JSON.", "invalidSyntax") from None
        if not isinstance(payload, dict):
            raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
        return payload

    def validate(self, model, context, payload: dict | None = None):
        payload = self.body() if payload is None else payload
        if model is ScimUser:
            payload = resources.fill_emails_from_user_name(payload)
        try:
            return model.model_validate(payload, scim_ctx=context, scim_policy=POLICY)
        except PydanticValidationError as error:
            first = Error.from_validation_errors(error)[0]
            raise ScimError(int(first.status or 400), first.detail or "Invalid request.", first.scim_type) from None

    def check_operation_cap(self, payload: dict) -> None:
        """Refuse an over-long PATCH before reading its operations: each one costs a write turn's time."""
        _refuse_over(
            settings.SCIM_MAX_PATCH_OPERATIONS,
            membership.count_operations(payload),
            "Operations: at most {limit} operations per PATCH (this one has {sent}); send the rest in another.",
        )

    def response_parameters(self, model):
        attributes = self.request.GET.get("attributes")
        excluded = self.request.GET.get("excludedAttributes")
        if not attributes and not excluded:
            return None
        try:
            return ResponseParameters[model].model_validate(
                {"attributes": attributes, "excludedAttributes": excluded}, scim_policy=POLICY
            )
        except (PydanticValidationError, SCIMException, ValueError):
            raise ScimError(
                400, "attributes/excludedAttributes: not a list of attribute paths.", "invalidPath"
            ) from None

    def page(self) -> tuple[int, int]:
        try:
            start = int(self.request.GET.get("startIndex") or 1)
            count = int(self.request.GET.get("count") or DEFAULT_COUNT)
        except ValueError:
            raise ScimError(400, "startIndex and count must be integers.", "invalidValue") from None
        # RFC 7644 §3.4.2.4: below 1 is read as 1, negative counts as 0.
        return min(max(start, 1), 2**31), min(max(count, 0), resources.MAX_COUNT)

    def equality_filter(self, allowed: dict[str, str]) -> tuple[str, str] | None:
        """The (field, value) of an `attr eq "value"` filter over one of `allowed` (SCIM name -> key)."""
        text = self.request.GET.get("filter")
        if not text:
            return None
        try:
            node = ScimFilter(text).ast
        except Exception:
            raise ScimError(400, f"filter: can't parse {text!r}.", "invalidFilter") from None
        names = {name.lower(): key for name, key in allowed.items()}
        if (
            isinstance(node, Comparison)
            and node.op == CompareOperator.eq
            and isinstance(node.attr_path, AttrPath)
            and node.attr_path.sub_attr is None
            and node.attr_path.uri in (None, resources.USER_SCHEMA, resources.GROUP_SCHEMA)
            and node.attr_path.attr.lower() in names
            and isinstance(node.value, str)
            and "\x00" not in node.value
        ):
            return names[node.attr_path.attr.lower()], node.value
        supported = " or ".join(f'{name} eq "..."' for name in allowed)
        raise ScimError(400, f"filter: only {supported} is supported.", "invalidFilter")

    def check_if_match(self, resource) -> None:
        expected = self.request.META.get("HTTP_IF_MATCH")
        accepted = [tag.strip() for tag in (expected or "").split(",")]
        if expected and "*" not in accepted and resource.meta.version not in accepted:
            raise ScimError(412, "If-Match: the resource has changed since that version.")


# --- users -----------------------------------------------------------------------------------------


def visible_users(organization_id):
    """The organization's practice users that SCIM still sees (not deleted through SCIM)."""
    return (
        User.objects.filter(organization_id=organization_id, is_staff=False)
        .exclude(scim_identity__deleted_at__isnull=False)
        .select_related("provider_details", "scim_identity")
    )


def _identity(user) -> ScimIdentity | None:
    try:
        return user.scim_identity
    except ScimIdentity.DoesNotExist:
        return None


def _uuid(value: str):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class UsersView(ScimView):
    def get(self, request):
        params = self.response_parameters(ScimUser)
        users = visible_users(self.organization.pk)
        match = self.equality_filter({"userName": "userName", "externalId": "externalId", "id": "id"})
        if match is not None:
            key, value = match
            if key == "userName":
                users = users.alias(user_name_key=Lower("scim_identity__user_name"), email_key=Lower("email")).filter(
                    Q(user_name_key=value.lower()) | Q(scim_identity__isnull=True, email_key=value.lower())
                )
            elif key == "externalId":
                users = users.filter(scim_identity__external_id=value) if value else users.none()
            else:
                users = users.filter(pk=_uuid(value)) if _uuid(value) else users.none()
        users = users.order_by("created_at", "id")
        start, count = self.page()
        total = users.count()
        page = list(users[start - 1 : start - 1 + count]) if count else []
        items = [resources.user_resource(user, _identity(user), self.base_url) for user in page]
        return _list_response(ScimUser, items, total, start, params)

    def post(self, request):
        resource = self.validate(ScimUser, Context.RESOURCE_CREATION_REQUEST)
        user = scim_user_create(token=self.token, resource=resource)
        return self._render(user.pk, status=201, location=True)

    def _render(self, user_id, status=200, location=False):
        user = visible_users(self.organization.pk).get(pk=user_id)
        resource = resources.user_resource(user, _identity(user), self.base_url)
        return _resource_response(resource, status=status, location=location)


class UserView(UsersView):
    def lookup(self, user_id, lock: bool = False):
        """The user (404 unless SCIM sees it in this organization) and its SCIM resource. With `lock`,
        under a row lock until the caller's transaction ends: a PATCH applies to the state it read."""
        pk = _uuid(user_id)
        users = visible_users(self.organization.pk)
        if lock:
            users = users.select_for_update(of=("self",))
        user = users.filter(pk=pk).first() if pk else None
        if user is None:
            raise ScimError(404, f"User {user_id} not found.")
        return user, _identity(user), resources.user_resource(user, _identity(user), self.base_url)

    def get(self, request, user_id):
        _user, _identity_row, resource = self.lookup(user_id)
        return _resource_response(resource, params=self.response_parameters(ScimUser))

    def put(self, request, user_id):
        self.lookup(user_id)  # 404 before anything is said about the body
        resource = self.validate(ScimUser, Context.RESOURCE_REPLACEMENT_REQUEST)
        with transaction.atomic():
            user, identity, current = self.lookup(user_id, lock=True)
            self.check_if_match(current)
            if resource.id is not None and resource.id != str(user.pk):
                raise ScimError(400, "id: it is set by the service and can't be changed.", "mutability")
            scim_user_apply(token=self.token, user=user, identity=identity, resource=resource)
        return self._render(user.pk)

    def patch(self, request, user_id):
        self.lookup(user_id)
        payload = self.body()
        self.check_operation_cap(payload)
        patch = self.validate(PatchOp[ScimUser], Context.RESOURCE_PATCH_REQUEST, patching.spread_filtered_keys(payload))
        patching.refuse_fixed_sub_attributes(patch.operations)
        with transaction.atomic():
            user, identity, current = self.lookup(user_id, lock=True)
            self.check_if_match(current)
            stored = current.model_copy(deep=True)
            patch.patch(current, scim_policy=POLICY)
            patching.refuse_what_is_not_kept(stored, current)
            scim_user_apply(token=self.token, user=user, identity=identity, resource=current)
        return self._render(user.pk)

    def delete(self, request, user_id):
        with transaction.atomic():
            user, identity, current = self.lookup(user_id, lock=True)
            self.check_if_match(current)
            scim_user_delete(token=self.token, user=user, identity=identity)
        return HttpResponse(status=204)


# --- groups ----------------------------------------------------------------------------------------

GROUP_ROLES = sorted(role_names.ASSIGNABLE_ROLES)


def _group(organization_id, role: str, base_url: str) -> Group:
    members = (
        visible_users(organization_id)
        .filter(has_role(role))
        .order_by("created_at", "id")
        .values_list("id", "given_name", "family_name")
    )
    return resources.group_resource(
        role, [(user_id, f"{given} {family}".strip()) for user_id, given, family in members], base_url
    )


def _not_implemented(what: str) -> HttpResponse:
    return error_response(
        501,
        f"{what}: the groups are the service's roles ({', '.join(GROUP_ROLES)}); map your identity "
        "provider's groups onto them.",
    )


class GroupsView(ScimView):
    def get(self, request):
        params = self.response_parameters(Group)
        roles = GROUP_ROLES
        match = self.equality_filter({"displayName": "displayName", "id": "id", "externalId": "externalId"})
        if match is not None:
            key, value = match
            roles = [] if key == "externalId" else [role for role in roles if role == value.lower()]
        start, count = self.page()
        page = roles[start - 1 : start - 1 + count]
        items = [_group(self.organization.pk, role, self.base_url) for role in page]
        return _list_response(Group, items, len(roles), start, params)

    def post(self, request):
        return _not_implemented("Creating a group")


class GroupView(ScimView):
    def lookup(self, group_id) -> Group:
        if group_id not in role_names.ASSIGNABLE_ROLES:
            raise ScimError(404, f"Group {group_id} not found.")
        return _group(self.organization.pk, group_id, self.base_url)

    def get(self, request, group_id):
        return _resource_response(self.lookup(group_id), params=self.response_parameters(Group))

    def put(self, request, group_id):
        current = self.lookup(group_id)
        self.check_if_match(current)
        payload = self.body()
        self.check_member_cap(payload)
        self.validate(Group, Context.RESOURCE_REPLACEMENT_REQUEST, payload)  # the RFC's shape, before ours
        wanted = membership.members_of_put(payload, role=group_id, base_url=self.base_url)
        return self._change_members(group_id, current, wanted)

    def patch(self, request, group_id):
        current = self.lookup(group_id)
        self.check_if_match(current)
        payload = self.body()
        self.check_operation_cap(payload)
        self.check_member_cap(payload)
        patch = self.validate(PatchOp[Group], Context.RESOURCE_PATCH_REQUEST, payload)
        wanted = membership.members_after_patch(
            patch.operations, _member_ids(current), role=group_id, base_url=self.base_url
        )
        return self._change_members(group_id, current, wanted)

    def delete(self, request, group_id):
        self.lookup(group_id)
        return _not_implemented("Deleting a group")

    def check_member_cap(self, payload: dict) -> None:
        _refuse_over(
            settings.SCIM_MAX_GROUP_MEMBERS,
            membership.count_member_objects(payload),
            "members: at most {limit} members per request (this one has {sent}); send the rest in another PATCH.",
        )

    def _change_members(self, role, current: Group, after: set[str]):
        before = _member_ids(current)
        added, removed = after - before, before - after
        users = {
            str(user.pk): user
            for user in visible_users(self.organization.pk).filter(
                pk__in=[pk for pk in map(_uuid, added | removed) if pk]
            )
        }
        unknown = sorted((added | removed) - set(users))
        if unknown:
            raise ScimError(400, f"members: no such user: {', '.join(unknown[:5])}.", "invalidValue")
        scim_group_members_change(
            token=self.token,
            role=role,
            add=[users[pk] for pk in sorted(added)],
            remove=[users[pk] for pk in sorted(removed)],
        )
        return _resource_response(self.lookup(role))


def _member_ids(group: Group) -> set[str]:
    return {member.value for member in group.members or []}


# --- discovery -------------------------------------------------------------------------------------


class ServiceProviderConfigView(ScimView):
    http_method_names = ["get"]

    def get(self, request):
        config = resources.service_provider_config(self.base_url)
        return _json(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _discovery(documents, item_id, *, kind: str, model):
    """A discovery listing (Schemas, ResourceTypes), or one of its items by id."""
    if item_id is not None:
        found = [doc for doc in documents if doc.id == item_id]
        if not found:
            raise ScimError(404, f"{kind} {item_id} not found.")
        return _json(found[0].model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    message = ListResponse[model](
        total_results=len(documents), start_index=1, items_per_page=len(documents), resources=documents
    )
    return _json(message.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


class SchemasView(ScimView):
    http_method_names = ["get"]

    def get(self, request, schema_id=None):
        return _discovery(resources.schemas(self.base_url), schema_id, kind="Schema", model=Schema)


class ResourceTypesView(ScimView):
    http_method_names = ["get"]

    def get(self, request, type_id=None):
        return _discovery(resources.resource_types(self.base_url), type_id, kind="ResourceType", model=ResourceType)


class NotFoundView(ScimView):
    http_method_names = ["get", "post", "put", "patch", "delete"]

    def _missing(self, request, *args, **kwargs):
        return error_response(404, "No such SCIM endpoint.")

    get = post = put = patch = delete = _missing

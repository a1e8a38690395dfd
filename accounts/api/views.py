"""Thin views: parse, check scope, scope to the caller's organization, call one service, render."""

import orjson
from django.core.exceptions import ValidationError
from django.db import router
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import services
from accounts.api.audit_events import AuditEventSerializer, UserHistoryFilter
from accounts.api.filters import UserFilter
from accounts.api.idempotency import idempotent, outcome_transaction, record_outcome
from accounts.api.serializers import (
    USER_ROW_FIELDS,
    UserCreateSerializer,
    UserDisableSerializer,
    UserRolesSerializer,
    UserSerializer,
    UserUpdateSerializer,
    user_row_representation,
)
from accounts.api.user_json import renders_users, user_documents
from accounts.models import User
from accounts.selectors import user_get, user_queryset, user_reference
from audit.selectors import audit_event_list
from core.api.pagination import AuditEventCursorPagination
from core.errors import ApplicationError
from organizations.selectors import organization_for_caller


class OrganizationViewSet(viewsets.GenericViewSet):
    """GET /v1/organizations/{org}: any valid token of that organization."""

    lookup_url_kwarg = "organization_id"
    required_scopes: dict = {}

    def retrieve(self, request, organization_id=None):
        organization = organization_for_caller(principal=request.user, organization_id=organization_id)
        return Response(
            {
                "id": str(organization.pk),
                "name": organization.name,
                "hpio_number": organization.hpio_number,
                "active": organization.is_active,
                "created_at": organization.created_at.isoformat(),
                "updated_at": organization.updated_at.isoformat(),
            }
        )


class UserViewSet(viewsets.GenericViewSet):
    serializer_class = UserSerializer
    filterset_class = UserFilter
    lookup_value_regex = "[^/]+"
    required_scopes = {
        "list": "read:users",
        "retrieve": "read:users",
        "create": "create:user",
        "update": "update:user",
        "partial_update": "update:user",
        "roles": "update:user",
        "disable": "delete:user",
        "history": "read:audit",
    }

    @property
    def organization(self):
        return organization_for_caller(principal=self.request.user, organization_id=self.kwargs["organization_id"])

    def get_queryset(self):
        return user_queryset(organization_id=self.organization.pk)

    def get_object(self):
        return user_get(organization_id=self.organization.pk, user_id=self.kwargs["pk"])

    def get_reference(self):
        """The user named by the URL (404 first, before the body is read), for a service that
        locks and re-reads it."""
        return user_reference(organization_id=self.organization.pk, user_id=self.kwargs["pk"])

    def _respond(self, user, status_code=status.HTTP_200_OK, headers=None):
        # Re-read: the Cognito sync ran on commit and moved the user's sync status.
        return self._render(user.pk, status_code, headers)

    def _render(self, user_id, status_code=status.HTTP_200_OK, headers=None):
        row = user_get(organization_id=self.organization.pk, user_id=user_id, fields=USER_ROW_FIELDS)
        return Response(UserSerializer(row).data, status=status_code, headers=headers)

    def list(self, request, *args, **kwargs):
        organization_id = self.organization.pk
        if renders_users(router.db_for_read(User)):
            # PostgreSQL writes each user's JSON in the query (accounts/api/user_json.py).
            page = self.paginate_queryset(self.filter_queryset(user_documents(organization_id=organization_id)))
            return self.get_paginated_response([orjson.Fragment(row["document"]) for row in page])
        users = self.filter_queryset(user_queryset(organization_id=organization_id))
        page = self.paginate_queryset(users.values(*USER_ROW_FIELDS))
        return self.get_paginated_response([user_row_representation(row) for row in page])

    def retrieve(self, request, *args, **kwargs):
        return self._render(self.kwargs["pk"])

    @idempotent
    def create(self, request, *args, **kwargs):
        organization = self.organization
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields, provider_details, flat_names = serializer.split()
        roles = fields.pop("access_roles", None)
        # The Idempotency-Key's outcome commits with the user (the Cognito sync waits for both).
        with _flat_provider_field_names(flat_names), outcome_transaction(request):
            user = services.user_create(
                organization=organization,
                actor=request.user.actor,
                roles=roles,
                provider_details=provider_details,
                **fields,
            )
            location = self._location(request, user.pk)
            record_outcome(request, outcome_id=user.pk, location=location)
        return self._respond(user, status.HTTP_201_CREATED, headers={"Location": location})

    def replay_outcome(self, user_id, headers):
        """A retried create whose first request committed but never stored its response."""
        headers.setdefault("Location", self._location(self.request, user_id))
        return self._render(user_id, status.HTTP_201_CREATED, headers)

    @staticmethod
    def _location(request, user_id):
        return request.build_absolute_uri(f"{request.path.rstrip('/')}/{user_id}")

    def update(self, request, *args, **kwargs):
        user = self.get_reference()
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields, provider_details, flat_names = serializer.split()
        with _flat_provider_field_names(flat_names):
            user = services.user_update(
                user=user, actor=request.user.actor, data=fields, provider_details=provider_details
            )
        return self._respond(user)

    # PUT merges as PATCH does: only the fields sent change (the contract's "Updating users"; the
    # schema says so). A replacing PUT would blank whatever a client's older model doesn't know.
    partial_update = update

    @action(detail=True, methods=["put"])
    def roles(self, request, *args, **kwargs):
        user = self.get_reference()
        serializer = UserRolesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_roles_set(
            user=user, actor=request.user.actor, roles=serializer.validated_data["access_roles"]
        )
        return self._respond(user)

    @action(detail=True, methods=["put"])
    def disable(self, request, *args, **kwargs):
        user = self.get_reference()
        serializer = UserDisableSerializer(data=request.data)  # no body parses as {}; JSON null is refused
        serializer.is_valid(raise_exception=True)
        user = services.user_disable(
            user=user, actor=request.user.actor, reason=serializer.validated_data.get("reason")
        )
        return self._respond(user)

    @action(
        detail=True,
        methods=["get"],
        serializer_class=AuditEventSerializer,
        filterset_class=UserHistoryFilter,
        pagination_class=AuditEventCursorPagination,
    )
    def history(self, request, *args, **kwargs):
        user = self.get_reference()
        events = self.filter_queryset(audit_event_list(organization_id=user.organization_id, user_id=user.pk))
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)


class _flat_provider_field_names:
    """Errors name the field as the caller sent it: `hpii_number` when given flat in the body,
    `provider_details.hpii_number` when nested."""

    def __init__(self, flat_names: frozenset):
        self.flat_names = flat_names

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.flat_names or exc is None:
            return False
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            raise ValidationError({self._name(field): errors for field, errors in exc.error_dict.items()}) from exc
        if isinstance(exc, ApplicationError) and exc.field:
            exc.field = self._name(exc.field)
        return False

    def _name(self, field: str) -> str:
        prefix = "provider_details."
        if field.startswith(prefix) and field[len(prefix):] in self.flat_names:
            return field[len(prefix):]
        return field

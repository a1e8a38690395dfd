"""POST .../users/{id}/provider-details/verify and GET .../users/{id}/provider-details/verifications."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.serializers import USER_ROW_FIELDS, UserSerializer
from accounts.selectors import user_get
from core.api.pagination import AuditEventCursorPagination
from core.api.schema import PROBLEM_MEDIA_TYPE, ProblemSerializer
from organizations.selectors import organization_for_caller
from verification import queue
from verification.api.serializers import RegisterCallSerializer
from verification.models import RegisterCall


class ProviderVerificationViewSet(viewsets.GenericViewSet):
    serializer_class = UserSerializer
    queryset = RegisterCall.objects.none()  # the schema's model only; every lookup is scoped below
    lookup_value_regex = "[^/]+"
    required_scopes = {"verify": "update:user", "verifications": "read:audit"}

    @property
    def organization(self):
        return organization_for_caller(principal=self.request.user, organization_id=self.kwargs["organization_id"])

    def get_object(self):
        return user_get(organization_id=self.organization.pk, user_id=self.kwargs["pk"])

    @extend_schema(
        summary="Ask the HI Service about a provider's details again",
        description=(
            "Queues a check of the provider details against the HI Service and makes one attempt "
            "within HI_VERIFY_INLINE_BUDGET_SECONDS; the user resource comes back with "
            "`provider_details.verification` as it stands (`pending` when the register has not "
            "answered yet). A `verified` provider stays `verified` until the register says otherwise. "
            "409 `nothing_to_verify` when the user has no provider details with an HPI-I or AHPRA number."
        ),
        request=None,
        responses={
            202: OpenApiResponse(UserSerializer, description="The user, with the check queued or done."),
            (409, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="`nothing_to_verify` (no provider details with an HPI-I or AHPRA number), `user_disabled`.",
            ),
        },
        tags=["users"],
    )
    @action(detail=True, methods=["post"], url_path="provider-details/verify")
    def verify(self, request, *args, **kwargs):
        user = queue.provider_verification_request(user=self.get_object(), actor=request.user.actor)
        row = user_get(organization_id=self.organization.pk, user_id=user.pk, fields=USER_ROW_FIELDS)
        return Response(UserSerializer(row).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The HI Service calls about a provider",
        description="Every call to the register about this user, newest first (the append-only register log).",
        responses={200: RegisterCallSerializer(many=True)},
        tags=["users"],
    )
    @action(
        detail=True, methods=["get"], url_path="provider-details/verifications",
        pagination_class=AuditEventCursorPagination, serializer_class=RegisterCallSerializer,
    )
    def verifications(self, request, *args, **kwargs):
        user = self.get_object()
        page = self.paginate_queryset(RegisterCall.objects.filter(user_id=user.pk).order_by("-id"))
        return self.get_paginated_response(RegisterCallSerializer(page, many=True).data)

"""Thin views: the organization first (404 to outsiders), then the scope, then one service call."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.pagination import AuditEventCursorPagination
from core.api.schema import PROBLEM_MEDIA_TYPE, ProblemSerializer, location_header
from core.api.throttling import ApiClientRateThrottle
from organizations.selectors import organization_for_caller
from webhooks import selectors, services
from webhooks.api.serializers import (
    WebhookAttemptSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)
from webhooks.models import WebhookEndpoint

SCOPE = "manage:webhooks"
LOCATION = location_header("The created endpoint's URL (GET it for the endpoint, without its secret).")


class RedeliveryRateThrottle(ApiClientRateThrottle):
    """Redeliveries per API client (WEBHOOK_REDELIVERY_RATE), on top of its overall budget: each one
    is a request to the practice's receiver that the worker makes on the practice's behalf."""

    scope = "webhook_redelivery"


class WebhookEndpointViewSet(viewsets.GenericViewSet):
    """/v1/organizations/{org}/webhook-endpoints: an organization's webhook endpoints."""

    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.none()  # the schema's model only; get_queryset scopes every request
    lookup_value_regex = "[^/]+"
    required_scopes = {
        name: SCOPE
        for name in (
            "list",
            "retrieve",
            "create",
            "partial_update",
            "destroy",
            "rotate_secret",
            "deliveries",
            "redeliver",
        )
    }

    def check_permissions(self, request):
        # Another organization's URL is 404 whatever the token's scopes: the organization first.
        if getattr(request.user, "is_authenticated", False):
            self.organization = organization_for_caller(
                principal=request.user, organization_id=self.kwargs["organization_id"]
            )
        super().check_permissions(request)

    def get_queryset(self):
        return selectors.webhook_endpoint_list(organization_id=self.organization.pk)

    def get_object(self):
        return selectors.webhook_endpoint_get(organization_id=self.organization.pk, endpoint_id=self.kwargs["pk"])

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(WebhookEndpointSerializer(self.get_object()).data)

    @extend_schema(
        request=WebhookEndpointCreateSerializer,
        parameters=[LOCATION],
        responses={201: WebhookEndpointWithSecretSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            organization=self.organization, actor=request.user.actor, **serializer.validated_data
        )
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{endpoint.pk}")
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint, secret=secret).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    @extend_schema(request=WebhookEndpointUpdateSerializer, responses={200: WebhookEndpointSerializer})
    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = WebhookEndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            endpoint=endpoint, actor=request.user.actor, data=dict(serializer.validated_data)
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.webhook_endpoint_delete(endpoint=self.get_object(), actor=request.user.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: WebhookEndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, *args, **kwargs):
        endpoint, secret = services.webhook_endpoint_rotate_secret(endpoint=self.get_object(), actor=request.user.actor)
        return Response(WebhookEndpointWithSecretSerializer(endpoint, secret=secret).data)

    @extend_schema(responses={200: WebhookAttemptSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=AuditEventCursorPagination)
    def deliveries(self, request, *args, **kwargs):
        """The endpoint's delivery log: every attempt, newest first."""
        page = self.paginate_queryset(selectors.webhook_attempt_list(endpoint=self.get_object()))
        return self.get_paginated_response(WebhookAttemptSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            (409, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="A delivery of this event to this endpoint is still pending "
                "(`webhook_redelivery_pending`), or the endpoint is disabled (`webhook_endpoint_disabled`).",
            ),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[^/]+)/redeliver",
        throttle_classes=[ApiClientRateThrottle, RedeliveryRateThrottle],
    )
    def redeliver(self, request, *args, **kwargs):
        """Send a delivery's event again (same webhook-id). 409 `webhook_redelivery_pending` while a
        delivery of that event to this endpoint is pending; 429 past WEBHOOK_REDELIVERY_RATE."""
        delivery = selectors.webhook_delivery_get(endpoint=self.get_object(), delivery_id=kwargs["delivery_id"])
        again = services.webhook_delivery_redeliver(delivery=delivery, actor=request.user.actor)
        return Response(WebhookDeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)

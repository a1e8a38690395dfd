from django.core.exceptions import ValidationError
from django.http import Http404

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list(*, organization_id):
    return WebhookEndpoint.objects.filter(organization_id=organization_id)


def webhook_endpoint_get(*, organization_id, endpoint_id) -> WebhookEndpoint:
    """One endpoint of the caller's organization; any other id is 404."""
    try:
        return webhook_endpoint_list(organization_id=organization_id).get(pk=endpoint_id)
    except (WebhookEndpoint.DoesNotExist, ValidationError, ValueError) as error:
        raise Http404("No such webhook endpoint in this organization.") from error


def webhook_attempt_list(*, endpoint: WebhookEndpoint):
    return WebhookAttempt.objects.filter(endpoint=endpoint).select_related("delivery__event")


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery:
    try:
        return WebhookDelivery.objects.select_related("endpoint").get(endpoint=endpoint, pk=int(delivery_id))
    except (WebhookDelivery.DoesNotExist, ValueError, OverflowError) as error:
        raise Http404("No such delivery for this endpoint.") from error

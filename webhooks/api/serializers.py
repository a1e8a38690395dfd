"""Input shapes (types only; the rules live in webhooks.services) and the resources."""

from rest_framework import serializers

from accounts.api.serializers import RejectUnknownFieldsMixin, StrictCharField
from webhooks.models import WebhookEndpoint


class WebhookEndpointCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    url = StrictCharField(max_length=2000)
    # min_length: the schema's minItems (allow_empty answers an empty list first, with its own message).
    events = serializers.ListField(child=StrictCharField(max_length=64), allow_empty=False, min_length=1)
    description = StrictCharField(max_length=500, required=False, allow_blank=True)


class WebhookEndpointUpdateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    url = StrictCharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=StrictCharField(max_length=64), allow_empty=False, min_length=1, required=False
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.choices, required=False)


class WebhookEndpointSerializer(serializers.Serializer):
    """The endpoint, never with its secret (only create and rotate-secret show it)."""

    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.choices)
    disabled_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, endpoint):
        return {
            "id": str(endpoint.pk),
            "url": endpoint.url,
            "events": list(endpoint.events),
            "description": endpoint.description,
            "status": endpoint.status,
            "disabled_reason": endpoint.disabled_reason,
            "created_at": endpoint.created_at.isoformat(),
            "updated_at": endpoint.updated_at.isoformat(),
        }


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="`whsec_` + base64: shown only in this response.")
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)

    def __init__(self, *args, secret: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._secret = secret

    def to_representation(self, endpoint):
        expires = endpoint.previous_secret_expires_at
        return {
            **super().to_representation(endpoint),
            "secret": self._secret,
            "previous_secret_expires_at": expires.isoformat() if expires else None,
        }


class WebhookAttemptSerializer(serializers.Serializer):
    """One attempt of a delivery (the endpoint's delivery log)."""

    id = serializers.IntegerField()
    delivery_id = serializers.IntegerField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    attempt = serializers.IntegerField()
    attempted_at = serializers.DateTimeField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    duration_ms = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivery_status = serializers.CharField()

    def to_representation(self, row):
        return {
            "id": row.pk,
            "delivery_id": row.delivery_id,
            "event_id": row.delivery.event.webhook_id,
            "event_type": row.delivery.event.type,
            "attempt": row.number,
            "attempted_at": row.attempted_at.isoformat(),
            "succeeded": row.succeeded,
            "status_code": row.status_code,
            "error": row.error,
            "duration_ms": row.duration_ms,
            "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            "delivery_status": row.delivery.status,
        }


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, delivery):
        return {
            "id": delivery.pk,
            "event_id": delivery.event.webhook_id,
            "event_type": delivery.event.type,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
        }

from rest_framework import serializers

from verification.models import RegisterCall


class ServiceMessageSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.CharField()


class RegisterCallSerializer(serializers.Serializer):
    """One call to the HI Service about the user: what was sent on whose behalf, and what came back."""

    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    operation = serializers.ChoiceField(choices=RegisterCall.Operation.choices)
    outcome = serializers.ChoiceField(choices=["found", "not_found", "mismatch", "fault", "error"])
    hpio_sent = serializers.CharField(help_text="The organization's HPI-O sent in the `hpio` header.")
    user_id_sent = serializers.CharField(help_text="The local user id sent in the `user` header.")
    user_id = serializers.UUIDField(help_text="The provider the call was about.")
    service_messages = ServiceMessageSerializer(many=True)
    reason = serializers.CharField(help_text="Why the register could not be asked or its answer was refused, if so.")
    duration_ms = serializers.IntegerField()
    message_id = serializers.CharField(help_text="The register's own id of its reply (empty when it sent none).")

    def to_representation(self, call):
        return {
            "id": call.pk,
            "occurred_at": call.occurred_at.isoformat(),
            "operation": call.operation,
            "outcome": call.outcome,
            "hpio_sent": call.hpio_sent,
            "user_id_sent": call.user_id_sent,
            "user_id": str(call.user_id),
            "service_messages": call.service_messages,
            "reason": call.reason,
            "duration_ms": call.duration_ms,
            "message_id": call.message_id,
        }

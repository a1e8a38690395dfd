from datetime import UTC, timedelta

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers, viewsets

from audit.models import AuditEvent
from audit.selectors import audit_event_list
from core.api.pagination import AuditEventCursorPagination
from organizations.selectors import organization_for_caller


class _TimestampField(IsoDateTimeField):
    """ISO 8601, with a UTC offset PostgreSQL can store (Python accepts up to 24 h, PostgreSQL 16)."""

    def to_python(self, value):
        value = super().to_python(value)
        offset = value.utcoffset() if value is not None else None
        if offset is not None and abs(offset) > timedelta(hours=14):
            raise forms.ValidationError("The UTC offset must be between -14:00 and +14:00.", code="invalid")
        try:
            value is None or value.astimezone(UTC)  # year 1 or 9999 with an offset overflows in UTC
        except (OverflowError, ValueError) as error:
            raise forms.ValidationError("The date is out of range.", code="invalid") from error
        return value


class TimestampFilter(django_filters.IsoDateTimeFilter):
    field_class = _TimestampField


class AuditEventFilter(django_filters.FilterSet):
    user_id = django_filters.UUIDFilter(field_name="user_id")
    action = django_filters.ChoiceFilter(choices=AuditEvent.Action.choices)
    since = TimestampFilter(field_name="occurred_at", lookup_expr="gte")
    until = TimestampFilter(field_name="occurred_at", lookup_expr="lte")

    class Meta:
        model = AuditEvent
        fields = ["user_id", "action", "since", "until"]


class UserHistoryFilter(AuditEventFilter):
    """A user's own history: the user is in the path, so there is no `user_id` filter to document."""

    user_id = None

    class Meta(AuditEventFilter.Meta):
        fields = ["action", "since", "until"]


class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AuditEvent.ActorType.choices)
    id = serializers.CharField()
    name = serializers.CharField()


class AuditEventSerializer(serializers.Serializer):
    """Rendered by hand (see UserSerializer); the fields document the shape."""

    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditEvent.Action.choices)
    actor = ActorSerializer()
    user_id = serializers.UUIDField(allow_null=True)
    changes = serializers.DictField()
    request_id = serializers.CharField()

    def to_representation(self, event):
        return {
            "id": event.pk,
            "occurred_at": event.occurred_at.isoformat(),
            "action": event.action,
            "actor": event.actor_for_practice(),
            "user_id": str(event.user_id) if event.user_id else None,
            "changes": event.changes,
            "request_id": event.request_id,
        }


class AuditEventViewSet(viewsets.GenericViewSet):
    """GET /v1/organizations/{org}/audit-events: the organization's audit trail, newest first."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = AuditEventCursorPagination
    required_scopes = {"list": "read:audit"}

    def get_queryset(self):
        organization = organization_for_caller(
            principal=self.request.user, organization_id=self.kwargs["organization_id"]
        )
        return audit_event_list(organization_id=organization.pk)

    def list(self, request, *args, **kwargs):
        events = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

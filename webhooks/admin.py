"""Webhook endpoints in the admin: every change through webhooks.services (with its audit event),
the secret shown once, the delivery log per endpoint, and a redeliver action."""

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.context import Actor
from core.admin_mixins import ReadOnlyAdminMixin
from core.errors import ApplicationError
from webhooks import services, targets
from webhooks.models import ALL_EVENTS, EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint

_EVENT_CHOICES = [(ALL_EVENTS, "* (every event type)"), *((name, name) for name in EVENT_TYPES)]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="https:// to a public address.")
    events = forms.MultipleChoiceField(choices=_EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("organization", "url", "events", "description", "status")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields.pop("organization", None)

    def _post_clean(self):
        # The service validates (URL policy, events) and saves; the model's own full_clean would
        # insist on a secret the service has not generated yet.
        pass

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        from webhooks import targets

        url = cleaned.get("url")
        if url and (self.instance._state.adding or url != self.instance.url):
            try:
                targets.check(url)
            except ApplicationError as error:
                self.add_error("url", error.message)
        return cleaned


class WebhookAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The delivery log: newest attempts first (read-only)."""

    model = WebhookAttempt
    fk_name = "endpoint"
    fields = (
        "attempted_at",
        "event_type",
        "webhook_id",
        "number",
        "succeeded",
        "status_code",
        "error",
        "duration_ms",
        "next_attempt_at",
    )
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "delivery attempt"
    verbose_name_plural = "delivery log (newest first; redeliver from Webhook deliveries)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("delivery__event")

    @admin.display(description="event")
    def event_type(self, obj):
        return obj.delivery.event.type

    @admin.display(description="webhook-id")
    def webhook_id(self, obj):
        return obj.delivery.event.webhook_id


def _actor(request) -> Actor:
    return Actor.staff(request.user)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "organization", "status", "events_display", "created_at")
    list_select_related = ("organization",)
    list_filter = ("status", ("organization", admin.RelatedOnlyFieldListFilter))
    search_fields = ("url", "organization__name")
    readonly_fields = (
        "id",
        "organization_display",
        "disabled_reason",
        "failing_since",
        "deliveries_link",
        "created_at",
        "updated_at",
    )
    inlines = [WebhookAttemptInline]
    save_as = False

    # The URL's query string may carry the receiver's credential: it is shown whole only to staff who
    # may change the endpoint (and so set the URL anyway); the others see it as audit events show it.
    def _sees_whole_url(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def get_list_display(self, request):
        if self._sees_whole_url(request):
            return self.list_display
        return ("url_redacted", *self.list_display[1:])

    def get_search_fields(self, request):
        # Searching the URL would let anyone who may only view it read a credential a letter at a time.
        if self._sees_whole_url(request):
            return self.search_fields
        return tuple(field for field in self.search_fields if field != "url")

    def get_readonly_fields(self, request, obj=None):
        if self._sees_whole_url(request, obj):
            return self.readonly_fields
        return (*self.readonly_fields, "url_redacted")

    @admin.display(description="URL", ordering="url")
    def url_redacted(self, obj):
        return targets.redacted(obj.url)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "url", "events", "description")
        return (
            "organization_display",
            "url" if self._sees_whole_url(request, obj) else "url_redacted",
            "events",
            "description",
            "status",
            "disabled_reason",
            "failing_since",
            "deliveries_link",
            "id",
            "created_at",
            "updated_at",
        )

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="events")
    def events_display(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="organization")
    def organization_display(self, obj):
        return obj.organization

    @admin.display(description="deliveries")
    def deliveries_link(self, obj):
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        rotate = reverse("admin:webhooks_webhookendpoint_rotate_secret", args=[obj.pk])
        return format_html(
            '<a href="{}">Deliveries (redeliver from there)</a> · '
            '<a href="{}" id="rotate-secret-link">Rotate the signing secret</a>',
            url,
            rotate,
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                fields = {
                    name: data[name] for name in ("url", "events", "description", "status") if name in form.changed_data
                }
                updated = services.webhook_endpoint_update(endpoint=obj, actor=_actor(request), data=fields)
                _copy(obj, updated)
            else:
                created, secret = services.webhook_endpoint_create(
                    organization=data["organization"],
                    actor=_actor(request),
                    url=data["url"],
                    events=data["events"],
                    description=data.get("description") or "",
                )
                _copy(obj, created)
                request._webhook_secret = secret  # shown on the next page only, never in a message cookie
        except (ValidationError, ApplicationError) as error:  # checked in the form; a race can still meet it
            raise ValidationError(getattr(error, "message", None) or error.messages) from error

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(endpoint=obj, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_delete(endpoint=endpoint, actor=_actor(request))

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_webhook_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, obj, secret, "Webhook endpoint created")

    def _secret_page(self, request, endpoint, secret, title):
        response = TemplateResponse(
            request,
            "admin/webhooks/webhookendpoint/secret.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "endpoint": endpoint,
                "secret": secret,
                "change_url": reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name="webhooks_webhookendpoint_rotate_secret",
            ),
            *super().get_urls(),
        ]

    def rotate_secret_view(self, request, object_id):
        endpoint = self.get_object(request, object_id)
        if endpoint is None or not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/webhooks/webhookendpoint/rotate_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": "Rotate the signing secret",
                    "endpoint": endpoint,
                },
            )
        endpoint, secret = services.webhook_endpoint_rotate_secret(endpoint=endpoint, actor=_actor(request))
        return self._secret_page(request, endpoint, secret, "Signing secret rotated")


def _copy(target, source) -> None:
    for field in type(source)._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "event_type", "webhook_id", "endpoint", "status", "attempts", "next_attempt_at", "created_at")
    list_select_related = ("event", "endpoint")
    list_filter = ("status", ("endpoint", admin.RelatedOnlyFieldListFilter))
    actions = ["redeliver_action"]
    readonly_fields = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "payload",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    def has_redeliver_permission(self, request):
        return request.user.has_perm("webhooks.change_webhookendpoint")

    @admin.display(description="event")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="webhook-id")
    def webhook_id(self, obj):
        return obj.event.webhook_id

    @admin.display(description="body")
    def payload(self, obj):
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.event.payload, indent=2))

    @admin.action(description="Redeliver the selected deliveries' events (same webhook-id)", permissions=["redeliver"])
    def redeliver_action(self, request, queryset):
        sent, refused = 0, Counter()
        for delivery in queryset.select_related("endpoint"):
            try:
                services.webhook_delivery_redeliver(delivery=delivery, actor=_actor(request))
                sent += 1
            except ApplicationError as error:
                refused[error.code] += 1
        reasons = {
            "webhook_redelivery_pending": "already pending",
            "webhook_endpoint_disabled": "endpoint disabled",
            "not_found": "history purged",
        }
        skipped = ", ".join(f"{count} {reasons.get(code, code)}" for code, count in sorted(refused.items()))
        self.message_user(
            request,
            f"Queued {sent} redelivery(ies)" + (f"; skipped {skipped}." if skipped else "."),
            messages.SUCCESS if sent or not refused else messages.WARNING,
        )

"""Audit events in the admin: read-only for everyone, superusers included, with a CSV export of
whatever the list currently shows (its filters, search and date drill-down)."""

import json

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.export import CSV_COLUMNS, audit_event_csv_row
from audit.models import AuditEvent
from core import csv as safe_csv
from core.admin_mixins import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/audit/auditevent/change_list.html"
    list_display = ("occurred_at", "action_code", "organization", "user_link", "actor_display", "request_id")
    list_select_related = ("organization", "user")
    list_filter = ("action", "actor_type", ("organization", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "occurred_at"
    search_fields = ("=user__id", "user__email", "actor_name", "=actor_id", "=request_id")
    search_help_text = "User id (exact), user email, actor name or id, request id."
    readonly_fields = (
        "id",
        "occurred_at",
        "action",
        "organization",
        "user_link",
        "actor_type",
        "actor_id",
        "actor_name",
        "changes_display",
        "request_id",
    )
    fields = readonly_fields
    list_per_page = 100
    show_full_result_count = False  # counting a long trail on every page view is wasted work

    # Append-only: no one adds, changes or deletes, whatever their permissions say.
    @admin.display(description="action", ordering="action")
    def action_code(self, obj):
        return obj.action  # the code the API reports, not the choice label

    @admin.display(description="user", ordering="user__email")
    def user_link(self, obj):
        if obj.user_id is None:
            return "-"
        # Platform staff (a staff.privileges_changed event) have their own page; practice users theirs.
        page = "accounts_staffuser_change" if obj.user and obj.user.organization_id is None else "accounts_user_change"
        url = reverse(f"admin:{page}", args=[obj.user_id])
        return format_html('<a href="{}">{}</a>', url, obj.user.email if obj.user else obj.user_id)

    @admin.display(description="actor", ordering="actor_name")
    def actor_display(self, obj):
        return f"{obj.actor_type}: {obj.actor_name or obj.actor_id}"

    @admin.display(description="changes")
    def changes_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, sort_keys=True, ensure_ascii=False))

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv_view), name=name),
        ] + super().get_urls()

    def export_csv_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The changelist itself parses the filters, so the export is exactly the list on screen.
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters aren't valid; nothing was exported.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:audit_auditevent_changelist"))
        events = changelist.get_queryset(request).select_related("organization")

        def rows():
            writer = safe_csv.writer(safe_csv.Echo())  # every cell neutralised (core/csv.py)
            yield writer.writerow(CSV_COLUMNS)
            for event in events.iterator(chunk_size=1000):
                yield writer.writerow(audit_event_csv_row(event, for_practice=False))

        filename = f"audit-events-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response

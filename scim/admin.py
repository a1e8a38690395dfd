"""SCIM tokens in the admin: listed with their last use, revocable (through the service). They are
made by `manage.py create_scim_token`, which prints the secret once."""

from django.contrib import admin, messages

from audit.context import Actor
from scim.models import ScimToken
from scim.services import scim_token_revoke


@admin.register(ScimToken)
class ScimTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("organization",)
    search_fields = ("name", "prefix")
    readonly_fields = ("id", "organization", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke_action"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the audit trail names the token

    @admin.action(description="Revoke the selected SCIM tokens", permissions=["change"])
    def revoke_action(self, request, queryset):
        count = 0
        for token in queryset:
            if token.revoked_at is None:
                scim_token_revoke(token=token, actor=Actor.staff(request.user))
                count += 1
        self.message_user(request, f"Revoked {count} SCIM token(s).", messages.SUCCESS)

"""The register check in the admin: the provider details' verification state with a "verify now"
action (through the same request service as the API), the queue, and the register log, read-only."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from accounts.admin import ProviderDetailsAdmin
from accounts.models import ProviderDetails
from audit.context import Actor
from core.errors import ApplicationError
from verification import queue
from verification.models import RegisterCall, VerificationTask

admin.site.unregister(ProviderDetails)


@admin.register(ProviderDetails)
class ProviderDetailsVerificationAdmin(ProviderDetailsAdmin):
    actions = ["verify_now_action"]
    fields = None
    readonly_fields = (
        "verification_status", "verification_hpii_status", "verification_checked_at",
        "verification_next_check_at", "verification_message", "verification_found_hpii",
    )

    @admin.action(description="Verify now with the HI Service", permissions=["change_verification"])
    def verify_now_action(self, request, queryset):
        asked, refused = 0, 0
        for details in queryset.select_related("user"):
            try:
                queue.provider_verification_request(user=details.user, actor=Actor.staff(request.user))
                asked += 1
            except ApplicationError:
                refused += 1
        if asked:
            self.message_user(request, f"Asked the HI Service about {asked} provider(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"{refused} skipped: disabled, or no HPI-I or AHPRA number to search by.", messages.WARNING
            )

    def has_change_verification_permission(self, request):
        # The same right as changing a practice user: asking again changes their verification state.
        return request.user.has_perm("accounts.change_user")


@admin.register(VerificationTask)
class VerificationTaskAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "priority", "attempts", "last_error", "next_attempt_at", "claimed_until")
    list_filter = ("priority",)
    list_select_related = ("user", "organization")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RegisterCall)
class RegisterCallAdmin(admin.ModelAdmin):
    """Append-only: every call to the register as it happened."""

    list_display = ("occurred_at", "organization", "user", "operation", "outcome", "duration_ms", "message_id")
    list_filter = ("outcome", "operation")
    list_select_related = ("organization", "user")
    search_fields = ("=user__id", "user__email", "=message_id")
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().changeform_view(request, object_id, form_url, extra_context)


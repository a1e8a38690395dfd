"""Shared pieces of the staff admin that know no app."""

from django.core.exceptions import PermissionDenied


def staff_member(context):
    """The signed-in staff member a template renders for (an admin page's tag), or None for anyone else."""
    user = getattr(context.get("request"), "user", None)
    return user if user is not None and user.is_staff else None


class ReadOnlyAdminMixin:
    """Rows the product writes (audit events, outboxes, delivery attempts, history): staff with the
    view permission read them; nobody adds, edits or deletes them through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class HistoryWithoutRevertMixin:
    """simple_history's pages show past versions but never revert to one: a change goes through the
    form and its service, which check it and audit it."""

    revert_refusal = "History can't be reverted here: change it through the form."

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied(self.revert_refusal)
        return super().history_form_view(request, object_id, version_id, extra_context)

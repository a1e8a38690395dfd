"""Shared pieces of the staff admin that know no app."""


class ReadOnlyAdminMixin:
    """Rows the product writes (audit events, outboxes, delivery attempts, history): staff with the
    view permission read them; nobody adds, edits or deletes them through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

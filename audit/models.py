import hashlib

from django.conf import settings
from django.db import models

from core.append_only import AppendOnlyModel


def staff_pseudonym(staff_id: str) -> str:
    """What a practice sees of the platform staff member behind a change: the same name for the same
    person in every event, and neither their name, e-mail nor account id. (A user id is 122 random
    bits, so the hash can't be walked back.)"""
    return "staff-" + hashlib.sha256(staff_id.encode()).hexdigest()[:10]


class AuditEvent(AppendOnlyModel):
    """One change (to a user, an organization, an API client, a staff member's privileges, a webhook
    endpoint, a SCIM token), written in the same transaction as the change. Never updated or deleted.

    `organization` is null only for changes that belong to no tenant (a staff member's privileges)."""

    class Action(models.TextChoices):
        USER_CREATED = "user.created"
        USER_UPDATED = "user.updated"
        USER_ROLES_CHANGED = "user.roles_changed"
        USER_DISABLED = "user.disabled"
        USER_ENABLED = "user.enabled"
        PROVIDER_DETAILS_UPDATED = "provider_details.updated"
        USER_COGNITO_SYNC_FAILED = "user.cognito_sync_failed"
        USER_PROVIDER_VERIFICATION_CHANGED = "user.provider_verification_changed"
        STAFF_PRIVILEGES_CHANGED = "staff.privileges_changed"
        ORGANIZATION_CREATED = "organization.created"
        ORGANIZATION_UPDATED = "organization.updated"
        ORGANIZATION_DEACTIVATED = "organization.deactivated"
        ORGANIZATION_ACTIVATED = "organization.activated"
        API_CLIENT_CREATED = "api_client.created"
        API_CLIENT_UPDATED = "api_client.updated"
        API_CLIENT_REVOKED = "api_client.revoked"
        WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created"
        WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated"
        WEBHOOK_ENDPOINT_SECRET_ROTATED = "webhook_endpoint.secret_rotated"
        WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint.deleted"
        WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
        WEBHOOK_DELIVERY_REDELIVERED = "webhook_delivery.redelivered"
        SCIM_TOKEN_CREATED = "scim_token.created"
        SCIM_TOKEN_REVOKED = "scim_token.revoked"

    class ActorType(models.TextChoices):
        API_CLIENT = "api_client"
        STAFF = "staff"
        SYSTEM = "system"
        SCIM = "scim"

    # A bigint sequence gives a cheap, strictly increasing order for "newest first".
    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField()
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    # A string reference keeps audit below accounts in the import order.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="audit_events"
    )
    action = models.CharField(max_length=64, choices=Action.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=100, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    append_only_refusal = "Audit events are append-only."

    class Meta:
        ordering = ["-id"]
        indexes = [
            # GET /organizations/{org}/audit-events, newest first.
            models.Index(fields=["organization", "-id"], name="audit_org_newest_idx"),
            # GET /organizations/{org}/users/{id}/history, newest first.
            models.Index(fields=["user", "-id"], name="audit_user_newest_idx"),
            # ?action= within an organization.
            models.Index(fields=["organization", "action", "-id"], name="audit_org_action_idx"),
        ]

    def __str__(self):
        return f"{self.action} {self.user_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"

    def actor_for_practice(self) -> dict:
        """The actor as a practice sees it (its API, webhooks, exports): platform staff by pseudonym.
        Platform staff, in the admin, see the person (actor_id, actor_name)."""
        if self.actor_type == self.ActorType.STAFF:
            pseudonym = staff_pseudonym(self.actor_id)
            return {"type": self.actor_type, "id": pseudonym, "name": pseudonym}
        return {"type": self.actor_type, "id": self.actor_id, "name": self.actor_name}

"""SCIM's own data: the identity providers' bearer tokens and each provisioned user's SCIM identity.

Kept apart from accounts.User: the REST API's `partner_user_id` and the IdP's `externalId` are two
different callers' ids, and a user deleted through SCIM stays a (disabled) user of the REST API."""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class ScimToken(models.Model):
    """A long-lived bearer token of one organization's identity provider connection.

    Only the SHA-256 of the token is stored; the token itself is printed once when it is made."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="scim_tokens")
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the token, so an operator can tell tokens apart without the secret.
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "SCIM token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ScimIdentity(models.Model):
    """What SCIM knows of a user: the IdP's userName and externalId, and whether it deleted the user.

    A user without one (made through the REST API or the admin) is seen by SCIM with its e-mail as
    userName, so an identity provider can match existing staff by userName before it creates any."""

    user = models.OneToOneField(
        "accounts.User", on_delete=models.CASCADE, primary_key=True, related_name="scim_identity"
    )
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    user_name = models.CharField(max_length=254)
    external_id = models.CharField(max_length=254, blank=True)
    # Set by SCIM DELETE: from then on the user is gone from SCIM (404) and disabled everywhere else.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SCIM identity"
        verbose_name_plural = "SCIM identities"
        constraints = [
            # `userName eq` lookups and the uniqueness rule: case-insensitive, per organization,
            # among the users SCIM still sees.
            models.UniqueConstraint(
                "organization",
                Lower("user_name"),
                condition=Q(deleted_at__isnull=True),
                name="scim_identity_user_name_ci_unique",
            ),
        ]
        indexes = [
            # `externalId eq` lookups.
            models.Index(fields=["organization", "external_id"], name="scim_identity_external_id_idx"),
        ]

    def __str__(self):
        return self.user_name

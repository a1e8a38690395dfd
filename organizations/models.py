import uuid
from datetime import timedelta

from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from identifiers.fields import HpioField


class Organization(models.Model):
    """A practice or clinic: the tenant every user and API client belongs to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    hpio_number = HpioField("HPI-O", max_length=16, blank=True, null=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["hpio_number"], name="organization_hpio_unique"),
        ]

    def __str__(self):
        return self.name


class ApiClient(models.Model):
    """An OAuth 2.0 client of one organization, with the scopes it may ask for.

    The credentials themselves live in django-oauth-toolkit's Application (secret hashed);
    this row ties them to a tenant.
    """

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="api_client"
    )
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(max_length=200)
    allowed_scopes = models.CharField(max_length=500, help_text="Space-separated scopes.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"  # not Django's "api client", which the admin shows as "Api clients"

    def __str__(self):
        return f"{self.name} ({self.organization})"

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.allowed_scopes.split())

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class IdempotencyKey(models.Model):
    """A POST's Idempotency-Key, per API client: the request it was first used with (a hash) and,
    once that request finished, its response, replayed to retries for 24 hours.

    `outcome_id` (what the request created) is written in the same transaction as the created
    row, so a request that dies after its commit but before its response is stored still leaves
    the key pointing at its result: a retry replays it instead of creating again.
    """

    api_client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    # Null while the first request is still running.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_location = models.CharField(max_length=500, blank=True)
    # Null until the work commits; set in the work's own transaction.
    outcome_id = models.UUIDField(null=True, blank=True, help_text="The id of what the request created.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Insert-first: the second of two concurrent requests with one key meets this constraint.
            models.UniqueConstraint(fields=["api_client", "key"], name="idempotency_key_per_client_unique"),
        ]
        indexes = [
            # The purge of expired keys.
            models.Index(fields=["created_at"], name="idempotency_key_created_idx"),
        ]

    def __str__(self):
        return f"Idempotency key of {self.api_client_id}"

    @classmethod
    def purge_expired(cls) -> int:
        """Delete the keys past their 24 hours (the worker's job, and `purge_idempotency_keys`)."""
        deleted, _ = cls.objects.filter(created_at__lte=timezone.now() - IDEMPOTENCY_KEY_TTL).delete()
        return deleted

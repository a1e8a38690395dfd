"""Who is acting: set at the edge (authentication, the admin, a command), read where the audit row is written.

The request id is plumbing and lives in core.request_id."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who made a change: an API client, a staff member, or the system (commands, workers)."""

    type: str
    id: str
    name: str

    API_CLIENT = "api_client"
    STAFF = "staff"
    SYSTEM = "system"
    SCIM = "scim"

    @classmethod
    def api_client(cls, api_client) -> "Actor":
        return cls(cls.API_CLIENT, api_client.application.client_id, api_client.name)

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(cls.STAFF, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(cls.SYSTEM, "", name)

    @classmethod
    def scim(cls, token) -> "Actor":
        """A SCIM bearer token (the identity provider's connection) of one organization."""
        return cls(cls.SCIM, str(token.pk), token.name)

"""Who is acting and under which request id: set at the edge, read where the audit row is written."""

import contextvars
import re
import uuid
from dataclasses import dataclass

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# A caller's id is echoed back and stored, so only short, printable tokens are trusted.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _SANE_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def get_request_id() -> str | None:
    return _request_id.get()


@dataclass(frozen=True)
class Actor:
    """Who made a change: an API client, a staff member, or the system (commands, workers)."""

    type: str
    id: str
    name: str

    API_CLIENT = "api_client"
    STAFF = "staff"
    SYSTEM = "system"

    @classmethod
    def api_client(cls, api_client) -> "Actor":
        return cls(cls.API_CLIENT, api_client.application.client_id, api_client.name)

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(cls.STAFF, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(cls.SYSTEM, "", name)

"""One rule for times: what people read (the admin, logs, operator commands' messages) is in
TIME_ZONE and names it; what programs read (the API, webhooks, export files) is UTC, RFC 3339.

The admin's lists and read-only fields get the zone from config/formats (the `T` of its formats);
its date-time inputs are read in TIME_ZONE and say so in their help text (zone_help)."""

import datetime

from django.conf import settings
from django.utils import timezone


def local_text(value: datetime.datetime) -> str:
    """2026-12-07 17:00:00 AEDT: a moment as an operator reads it."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


def local_stamp(value: datetime.datetime) -> str:
    """2026-12-07T17:00:00+11:00: the same moment in one token, for key=value lines."""
    return timezone.localtime(value).isoformat(timespec="seconds")


def zone_help() -> str:
    """'Australia/Sydney time (now AEDT, UTC+11:00)': the zone a date-time input is read in."""
    now = timezone.localtime()
    offset = now.strftime("%z")
    return f"{settings.TIME_ZONE} time (now {now.strftime('%Z')}, UTC{offset[:3]}:{offset[3:]})"

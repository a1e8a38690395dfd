"""When each provider is asked again: every HI_REVALIDATE_DAYS, spread over the period.

Each provider has a fixed phase in half a period, from its id. Its checks fall on the moments
`epoch + phase + k * period / 2`, and the next check after one at `checked_at` is the one such
moment in (checked_at + period / 2, checked_at + period]: never later than the period, and once a
provider has been checked on one of its moments it is checked exactly every period after. A first
pass that verified 100,000 providers within hours therefore spreads their revalidations evenly
over the following period instead of repeating its own burst."""

import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def period() -> timedelta:
    return timedelta(days=settings.HI_REVALIDATE_DAYS)


def phase_seconds(user_id) -> float:
    half = period().total_seconds() / 2
    return (uuid.UUID(str(user_id)).int % int(half * 1000)) / 1000


def next_check_at(*, user_id, checked_at: datetime) -> datetime:
    half = period().total_seconds() / 2
    target = checked_at + period()
    late_by = ((target - _EPOCH).total_seconds() - phase_seconds(user_id)) % half
    return target - timedelta(seconds=late_by)

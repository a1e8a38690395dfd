"""One request budget for the register across every process: HI_MAX_REQUESTS_PER_SECOND in all.

A single row holds the next free moment. Reserving a call locks it, takes that moment (or now,
if it has passed) and moves it on by 1 / rate, so the calls of every worker and every request
start at least 1 / rate apart: at most the rate in any second, however many processes ask. A
caller that would have to wait longer than it can afford takes nothing and leaves the work queued.
The moments are the callers' clocks (NTP-synchronised servers differ by milliseconds)."""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from verification.models import RequestBudget


def reserve(*, wait_at_most: float) -> float | None:
    """Reserve one call: the seconds to wait before making it, or None (nothing reserved) when
    the next free moment is more than `wait_at_most` away."""
    moment = reserve_moment(wait_at_most=wait_at_most)
    if moment is None:
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())


def reserve_moment(*, wait_at_most: float):
    """reserve(), as the moment the call may start (or None)."""
    interval = timedelta(seconds=1.0 / settings.HI_MAX_REQUESTS_PER_SECOND)
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement, the row locked only while it runs: every call of every worker passes here.
        table = connection.ops.quote_name(RequestBudget._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_free_at = GREATEST(next_free_at, %s) + %s "  # noqa: S608 (our table's name)
                "WHERE id = 1 AND GREATEST(next_free_at, %s) <= %s RETURNING next_free_at",
                [now, interval, now, now + timedelta(seconds=wait_at_most)],
            )
            row = cursor.fetchone()
        if row is not None:
            return row[0] - interval
        if RequestBudget.objects.filter(pk=1).exists():
            return None  # the next free moment is further off than the caller can wait
        RequestBudget.objects.get_or_create(pk=1)
        return reserve_moment(wait_at_most=wait_at_most)
    with transaction.atomic():
        budget = RequestBudget.objects.select_for_update().filter(pk=1).first()
        if budget is None:
            RequestBudget.objects.get_or_create(pk=1)
            budget = RequestBudget.objects.select_for_update().get(pk=1)
        start = max(budget.next_free_at, now)
        if (start - now).total_seconds() > wait_at_most:
            return None
        budget.next_free_at = start + interval
        budget.save(update_fields=["next_free_at"])
    return start


def acquire(*, wait_at_most: float) -> bool:
    """Reserve one call and wait for its moment; False when none is free within `wait_at_most`."""
    wait = reserve(wait_at_most=wait_at_most)
    if wait is None:
        return False
    if wait > 0:
        time.sleep(wait)
    return True

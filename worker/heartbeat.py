"""The worker's heartbeat: written by the `heartbeat` job (worker/jobs.py) every few seconds, read by
/healthz (its `worker` detail) and the admin's index, so a worker that stopped or hangs is seen.

A worker stuck in one job doesn't beat either: the jobs run one after another in one loop."""

import datetime
import os
import socket

from django.utils import timezone

from worker.models import WorkerHeartbeat

HEARTBEAT_STALE_AFTER = datetime.timedelta(minutes=1)


def heartbeat_record(*, now: datetime.datetime | None = None) -> None:
    """Upsert the one row: two workers beating at once both succeed, the later one wins."""
    row = WorkerHeartbeat(id=1, beat_at=now or timezone.now(), worker=f"{socket.gethostname()}:{os.getpid()}")
    WorkerHeartbeat.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["id"], update_fields=["beat_at", "worker"]
    )


def heartbeat_status(*, now: datetime.datetime | None = None) -> dict:
    """{"status": "ok" | "stale" | "never", "last_heartbeat_at": RFC 3339 in UTC or null}."""
    row = WorkerHeartbeat.objects.filter(id=1).only("beat_at").first()
    if row is None:
        return {"status": "never", "last_heartbeat_at": None}
    stale = (now or timezone.now()) - row.beat_at > HEARTBEAT_STALE_AFTER
    return {"status": "stale" if stale else "ok", "last_heartbeat_at": row.beat_at.astimezone(datetime.UTC).isoformat()}

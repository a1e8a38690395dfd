"""The admin index's line about the worker: when it last beat, and a warning when that is more than
a minute ago (worker/heartbeat.py)."""

from django import template
from django.utils import timezone

from core.admin_mixins import staff_member
from worker.heartbeat import HEARTBEAT_STALE_AFTER
from worker.models import WorkerHeartbeat

register = template.Library()


@register.simple_tag(takes_context=True)
def worker_heartbeat(context):
    """None for anyone but staff; else {"stale": bool, "beat_at": datetime or None, "worker": str}."""
    user = staff_member(context)
    if user is None:
        return None
    beat = WorkerHeartbeat.objects.filter(id=1).first()
    if beat is None:
        return {"stale": True, "beat_at": None, "worker": ""}
    age = timezone.now() - beat.beat_at
    return {"stale": age > HEARTBEAT_STALE_AFTER, "beat_at": beat.beat_at, "seconds": int(age.total_seconds()),
            "worker": beat.worker}

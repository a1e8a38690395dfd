from django.db import models


class WorkerHeartbeat(models.Model):
    """When a worker last went round its loop: one row, rewritten by whichever worker beats last.

    Several workers may run; while any one of them beats, the jobs are being done. A heartbeat older
    than HEARTBEAT_STALE_AFTER means no worker is running its jobs (stopped, or stuck in one)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    beat_at = models.DateTimeField()
    worker = models.CharField(max_length=200, help_text="host:pid of the worker that beat last")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="worker_heartbeat_single_row")]

    def __str__(self):
        return f"worker heartbeat at {self.beat_at.isoformat()}"

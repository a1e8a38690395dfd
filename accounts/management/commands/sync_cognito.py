"""Apply the pending Cognito work (the outbox in accounts.cognito.sync): once, or as a worker."""

import signal
import threading
import time

from django.core.management.base import CommandError
from django.db import close_old_connections

from accounts.cognito import sync
from accounts.models import CognitoSync
from core.commands import OperatorCommand
from core.operator_time import local_stamp

IDLE_SLEEP_MIN = 0.5
IDLE_SLEEP_MAX = 30.0


class Command(OperatorCommand):
    help = (
        "Apply pending Cognito sync tasks. Without options: one pass over every due task, then a summary. "
        "--loop runs a worker (several may run at once); --status shows the queue; --retry-failed revives "
        "failed tasks."
    )

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--loop", action="store_true", help="Run as a worker until SIGTERM/SIGINT.")
        mode.add_argument("--status", action="store_true", help="Counts by state and the failed tasks.")
        mode.add_argument("--retry-failed", action="store_true", help="Make every failed task pending again.")
        parser.add_argument("--batch-size", type=int, default=50, help="Tasks claimed per pass (default 50).")
        parser.add_argument(
            "--max-idle-seconds",
            type=float,
            default=None,
            help="With --loop: stop after the queue has been idle this long.",
        )
        parser.add_argument("--iterations", type=int, default=None, help="With --loop: stop after this many passes.")

    def handle(self, *args, loop, status, retry_failed, batch_size, max_idle_seconds, iterations, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if (max_idle_seconds is not None or iterations is not None) and not loop:
            raise CommandError("--max-idle-seconds and --iterations only apply with --loop.")
        if max_idle_seconds is not None and max_idle_seconds < 0:
            raise CommandError("--max-idle-seconds must not be negative.")
        if iterations is not None and iterations < 1:
            raise CommandError("--iterations must be at least 1.")

        if status:
            self._status()
        elif retry_failed:
            revived = sync.retry(CognitoSync.objects.all())
            self.stdout.write(f"{revived} failed task(s) are pending again.")
        elif loop:
            self._loop(batch_size, max_idle_seconds, iterations)
        else:
            self._once(batch_size)

    def _once(self, batch_size):
        applied = failed = 0
        while True:
            result = sync.process_due(batch_size)
            applied += result.applied
            failed += result.failed
            # A short batch means nothing else is due; a give-back means Cognito is unavailable.
            if result.released or result.applied + result.failed < batch_size:
                break
        self._summary(applied, failed)

    def _loop(self, batch_size, max_idle_seconds, iterations):
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"Cognito sync worker started (batch size {batch_size}).")
        applied = failed = passes = 0
        sleep = IDLE_SLEEP_MIN
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                close_old_connections()  # a long-lived worker must survive a database restart
                result = sync.process_due(batch_size, should_stop=stop.is_set)
                passes += 1
                applied += result.applied
                failed += result.failed
                if iterations is not None and passes >= iterations:
                    break
                if result.applied or (result.failed and not result.released):
                    sleep, idle_since = IDLE_SLEEP_MIN, time.monotonic()
                    continue  # more may be due right away
                # Idle, or Cognito unavailable: back off, up to IDLE_SLEEP_MAX.
                if max_idle_seconds is not None and time.monotonic() - idle_since >= max_idle_seconds:
                    break
                stop.wait(sleep)
                sleep = min(IDLE_SLEEP_MAX, sleep * 2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Cognito sync worker stopped.")
        self._summary(applied, failed)

    def _summary(self, applied, failed):
        counts = sync.state_counts()
        self.stdout.write(
            f"applied: {applied}  failed: {failed}  still pending: {counts[CognitoSync.State.PENDING]}  "
            f"failed total: {counts[CognitoSync.State.FAILED]}"
        )

    def _status(self):
        counts = sync.state_counts()
        self.stdout.write("  ".join(f"{state}: {count}" for state, count in counts.items()))
        failed = CognitoSync.objects.filter(state=CognitoSync.State.FAILED).order_by("updated_at")
        # User ids only: no emails or names in operator output.
        for row in failed.values("user_id", "attempts", "last_error", "updated_at"):
            self.stdout.write(
                f"failed user={row['user_id']} attempts={row['attempts']} "
                f"since={local_stamp(row['updated_at'])} error={row['last_error']}"
            )

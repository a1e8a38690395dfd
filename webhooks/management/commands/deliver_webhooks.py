"""One pass over the due webhook deliveries (the worker, run_worker, does the same continuously)."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from webhooks.delivery import LINGER_SECONDS, deliver_due


class Command(BaseCommand):
    help = "Send every due webhook delivery once; prints delivered, failed (retried later or given up)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200, help="attempts per pass (default 200)")
        parser.add_argument(
            "--loop", action="store_true", help="keep going, polling every --interval seconds; stops on SIGTERM/SIGINT"
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.WEBHOOK_POLL_SECONDS,
            help="seconds between polls when idle (default WEBHOOK_POLL_SECONDS, 0.2)",
        )

    def handle(self, *args, limit, loop, interval, **options):
        stopping = []
        if loop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopping.append(True))
        delivered = failed = 0
        while True:
            result = deliver_due(
                limit=limit, should_stop=lambda: bool(stopping), linger=LINGER_SECONDS if loop else 0.0
            )
            delivered += result.delivered
            failed += result.failed
            claimed = result.delivered + result.failed
            if stopping:
                break
            if claimed < limit:  # nothing more is due now
                if not loop:
                    break
                time.sleep(interval)
        self.stdout.write(f"{delivered} delivered, {failed} failed")

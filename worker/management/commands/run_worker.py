"""The one long-running background process: `python manage.py run_worker` (see worker/jobs.py)."""

import signal
import threading

from django.core.management.base import BaseCommand

from worker.runner import run_lanes


class Command(BaseCommand):
    help = (
        "Run the background worker until SIGTERM/SIGINT: Cognito sync, webhook delivery, access expiry, "
        "expired OAuth tokens and Idempotency-Keys, register checks in a thread of their own (worker/jobs.py). "
        "Several may run at once, on several machines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every job once, then exit.")

    def handle(self, *args, once, **options):
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()  # the current item finishes; claimed rows not yet started are given back

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            run_lanes(stop=stop, once=once)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

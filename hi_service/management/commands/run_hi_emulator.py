"""python manage.py run_hi_emulator [--port N] [--dir var/hi]: the local HI Service emulator."""

import shlex
import signal
import threading

from django.core.management.base import BaseCommand

from hi_service import fixtures
from hi_service.emulator import HIServiceEmulator


class Command(BaseCommand):
    help = (
        "Run the local HI Service emulator: HTTPS requiring a client certificate from a throwaway CA made "
        "at start. Writes the certificates and an env file (hi.env) into --dir and prints the HI_* settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8443)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--dir", default="var/hi", help="where the certificates and hi.env are written")
        parser.add_argument("--slow-seconds", type=float, default=5.0,
                            help="how long the 'slow' fixture practitioner takes to answer")
        parser.add_argument("--delay-ms", type=float, default=0.0, help="how long every answer takes (benchmarks)")
        parser.add_argument("--unknown-active", action="store_true",
                            help="answer any well-formed HPI-I no fixture holds as found, Active, with the "
                                 "details searched for (benchmarks with many providers)")

    def handle(self, *args, **options):
        emulator = HIServiceEmulator(directory=options["dir"], host=options["host"], port=options["port"],
                                     slow_seconds=options["slow_seconds"], delay_seconds=options["delay_ms"] / 1000,
                                     unknown_active=options["unknown_active"])
        emulator.start()
        self.stdout.write(f"HI Service emulator at {emulator.url}")
        self.stdout.write(f"Settings written to {emulator.files.env_file}; export them to use it:")
        for name, value in emulator.settings().items():
            self.stdout.write(f"{name}={shlex.quote(value)}")
        self.stdout.write(f"Fixture practitioners (HPI-O to send: {fixtures.FIXTURE_HPIO}):")
        for key, each in fixtures.PRACTITIONERS.items():
            self.stdout.write(f"  {key:15} {each.hpii} {each.registration_id} {each.family_name}")
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()

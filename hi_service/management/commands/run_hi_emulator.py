"""python manage.py run_hi_emulator [--port N] [--dir var/hi]: the local HI Service emulator."""

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the local HI Service emulator (HTTPS, client certificates from a throwaway CA)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8443)
        parser.add_argument("--dir", default="var/hi", help="where the certificates and hi.env are written")
        parser.add_argument("--slow-seconds", type=float, default=5.0)

    def handle(self, *args, **options):
        raise NotImplementedError

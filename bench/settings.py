"""The benchmark's deployment: the product's settings with a URLconf that adds the floor view.

Only bench/run.py selects it (DJANGO_SETTINGS_MODULE=bench.settings); the product never loads it."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

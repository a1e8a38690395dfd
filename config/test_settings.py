"""Settings for the test suite: the production module with test-friendly environment defaults."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")
os.environ.setdefault("DJANGO_TESTING", "true")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

# The suite's connections (and the servers and workers it starts, which inherit the environment)
# commit without waiting for the WAL flush: a test database is thrown away, so a commit lost to a
# machine crash costs nothing, while waiting for every flush costs the suite its commits' time.
os.environ.setdefault("PGOPTIONS", "-c synchronous_commit=off")

from config.settings import *  # noqa: F403

# Per-test-process caches keep throttle counters from leaking between tests.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Fast hashing for the suite only; set here, not by an environment flag a deployment could carry.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The inline Cognito sync's budget: a loaded machine running the suite's workers in parallel can take
# longer than the production 1.5 s for a create's calls to the in-process moto server, and the work
# is then left pending. The tests of the budget itself set the production value.
COGNITO_SYNC_INLINE_BUDGET_SECONDS = 5.0

# The same for the register's inline check, whose budget counts from the request's arrival: on a
# loaded machine a create's own work can take most of the production 2 s. The tests of the budget
# set their own.
HI_VERIFY_INLINE_BUDGET_SECONDS = 5.0

"""One settings module, driven by the environment (see docs/operators.md, "Configuration")."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.logging_filters import credential_logger_names

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _positive(name: str, default, cast=float):
    """A number from the environment that must be above 0: anything else stops the process at start
    with the variable's name, rather than every Cognito call failing later."""
    raw = env.str(name, default="").strip()
    if not raw:
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a number above 0, not {raw!r}.")
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Production has no default secret: a missing key must stop the process, not weaken it.
SECRET_KEY = env("DJANGO_SECRET_KEY") if not DEBUG else env(
    "DJANGO_SECRET_KEY", default="insecure-development-key-only-for-debug-runs-0123456789abcdef"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
TESTING = env.bool("DJANGO_TESTING", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "oauth2_provider",
    "simple_history",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "organizations",
    "audit",
    "accounts",
    "scim",
    # The top layer: the background worker (`run_worker`) may import every app.
    "worker",
]

MIDDLEWARE = [
    "core.request_id.RequestIdMiddleware",
    # /healthz: ahead of the host check and the HTTPS redirect (load balancers probe by address).
    "core.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "core.middleware.RequestBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session's user is known (a staff member's admin write takes its turn as them).
    "core.middleware.WriteGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DJANGO_DB_PREPARED_STATEMENTS", default=True):
        # Server-side parameters, and psycopg prepares a statement once it has run 5 times in a connection:
        # PostgreSQL then skips parsing and planning (0.4-0.9 ms for the token lookup and the users
        # list in EXPLAIN). Off for PgBouncer in transaction mode (older than 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The rate-limit counters live in the cache. The default is per process; a shared cache
# (`dbcache://api_cache` after `createcachetable`, or `rediscache://host:6379/1`) makes the limit
# one budget across every worker.
CACHES = {"default": env.cache_url("DJANGO_CACHE_URL", default="locmemcache://")}
# Redis (`redis://`, `rediss://` or `rediscache://`: django-environ 0.14 maps them all to Django's
# own RedisCache, which core/api/throttling.py relies on): bounded waits, so a hung Redis costs a
# request half a second, not a worker thread.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "health_check_interval": 30}
    )

AUTH_USER_MODEL = "accounts.User"
# Email uniqueness is the case-insensitive constraint `user_email_ci_unique`, stronger than the
# case-sensitive unique=True this check asks for; emails are also stored lower-cased.
SILENCED_SYSTEM_CHECKS = ["auth.E003"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-au"
# What people read (the admin, logs, operator commands) is in this zone and names it; the API is UTC
# (core/operator_time.py).
TIME_ZONE = "Australia/Sydney"
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Requests: the contract caps bodies at 1 MiB (413 beyond it).
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# Writes a server process runs at once (core/write_gate.py; 0: no limit), how long one waits
# for a turn before it is answered 503 `server_busy`, and how many writes one organization (or one
# staff member) may hold in a process at once, waiting or running; past it, 503 at once. Keep it
# below GUNICORN_THREADS: the threads above it are the others' (reads included) when one floods.
API_CONCURRENT_WRITES = env.int("API_CONCURRENT_WRITES", default=2)
# Threads per server process (gunicorn.conf.py serves with as many): each may call Cognito at once,
# so the Cognito client keeps a connection for each.
GUNICORN_THREADS = _positive("GUNICORN_THREADS", 32, int)
API_WRITE_QUEUE_TIMEOUT_SECONDS = env.float("API_WRITE_QUEUE_TIMEOUT_SECONDS", default=10.0)
API_WRITES_PER_ORGANIZATION = env.int("API_WRITES_PER_ORGANIZATION", default=16)
if API_CONCURRENT_WRITES < 0 or API_WRITE_QUEUE_TIMEOUT_SECONDS <= 0 or API_WRITES_PER_ORGANIZATION < 1:
    # Else every write would fail (a negative semaphore) or be refused at once.
    raise ImproperlyConfigured(
        "API_CONCURRENT_WRITES must be 0 (no limit) or more, API_WRITE_QUEUE_TIMEOUT_SECONDS above 0 "
        "and API_WRITES_PER_ORGANIZATION at least 1."
    )
# A request's whole body must arrive within this many seconds (core/body_deadline.py), else 408.
REQUEST_BODY_TIMEOUT_SECONDS = env.float("REQUEST_BODY_TIMEOUT_SECONDS", default=5.0)
if REQUEST_BODY_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("REQUEST_BODY_TIMEOUT_SECONDS must be above 0.")

# Security. Plain HTTP on loopback (the demo, the tests) turns the redirect off explicitly.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Under /v1 a CSRF refusal is a problem+json, never Django's HTML page (core/views.py).
CSRF_FAILURE_VIEW = "core.views.csrf_failure"
# How many proxies in front of the app append to X-Forwarded-For (core/client_address.py);
# 0: the socket's address is the client and the header is ignored.
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
# X-Forwarded-Proto is believed only from a proxy in front: without one, any client could send it,
# skip the HTTPS redirect and be treated as secure.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT > 0 else None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.ApiClientTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.permissions.HasRequiredScope"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["core.api.filtering.QueryStringFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.NewestFirstCursorPagination",
    "EXCEPTION_HANDLER": "core.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "accounts.api.schema.AccountsApiAutoSchema",
    # The write turn last: after authentication, the permission and the rate limit.
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiClientRateThrottle", "core.write_gate.WriteTurnThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_client": env("API_THROTTLE_RATE", default="6000/min"),
        # Per SCIM token (scim/throttling.py): an identity provider's whole connection.
        "scim_token": env("SCIM_THROTTLE_RATE", default="6000/min"),
    },
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 50,
}
# A retry that arrives while the first request with its Idempotency-Key still runs waits this long
# for its answer, then gets 409.
IDEMPOTENCY_WAIT_SECONDS = _positive("IDEMPOTENCY_WAIT_SECONDS", 5.0)
# OPTIONS describes no request schema (the OpenAPI document does): just `Allow`.
REST_FRAMEWORK["DEFAULT_METADATA_CLASS"] = "core.api.metadata.NoSchemaMetadata"

# Named explicitly so migrations can reference the (default) swappable models.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER = {
    "SCOPES": {
        "read:users": "Read the organization's users",
        "create:user": "Create users",
        "update:user": "Update users and set their roles",
        "delete:user": "Disable users",
        "read:audit": "Read history and audit events",
    },
    "DEFAULT_SCOPES": ["__all__"],
    "SCOPES_BACKEND_CLASS": "accounts.api.oauth.ApiClientScopes",
    "OAUTH2_VALIDATOR_CLASS": "accounts.api.oauth.ApiClientOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", default=3600),
    # Tokens are kept only as SHA-256 checksums: a database leak yields no usable token.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # Only the client-credentials grant is used; every other RFC 9700 gate is closed so
    # `check --deploy` is clean and nothing legacy can be switched on by accident.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "User management API",
    "DESCRIPTION": (
        "Staff accounts, prescribers, roles and audit for an Australian e-prescribing platform.\n\n"
        "**Authentication**: OAuth 2.0 client credentials; each operation names the scope it needs.\n\n"
        "**Errors**: every error is `application/problem+json` (RFC 9457) with a machine-readable `code`.\n\n"
        "**Rate limit**: "
        f"{REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['api_client']} requests per API client "
        "(all its tokens together), in bursts of up to that many, refilled continuously; beyond it, "
        "429 `rate_limited` with `Retry-After`.\n\n"
        "**Retries**: send an `Idempotency-Key` header on POST to make a retried create safe."
    ),
    "VERSION": "1.0.0",
    # 3.1: a nullable reference (`provider_details: null`) is `oneOf: [$ref, {type: null}]`, which validators
    # accept; 3.0.3 can only say `allOf` + `nullable` without a type, which strict validators reject for null.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components: input rejects unknown fields, output has read-only ones.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api.token_schema.add_token_endpoint",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- SCIM (docs/identity-providers.md) -----------------------------------------------------------------
# One PATCH applies at most this many operations, and one Groups PUT or PATCH names at most this many
# members: a longer one is refused at once (400 invalidValue), before any work. ServiceProviderConfig says so.
SCIM_MAX_PATCH_OPERATIONS = env.int("SCIM_MAX_PATCH_OPERATIONS", default=1000)
SCIM_MAX_GROUP_MEMBERS = env.int("SCIM_MAX_GROUP_MEMBERS", default=1000)
if SCIM_MAX_PATCH_OPERATIONS < 1 or SCIM_MAX_GROUP_MEMBERS < 1:
    raise ImproperlyConfigured("SCIM_MAX_PATCH_OPERATIONS and SCIM_MAX_GROUP_MEMBERS must be 1 or more.")

COGNITO_USER_POOL_ID = env("COGNITO_USER_POOL_ID", default="")
# boto3's own variables, read here so the client is built from these settings alone (credentials
# stay boto3's: its default chain).
COGNITO_REGION = env("AWS_REGION", default="") or env("AWS_DEFAULT_REGION", default="")
COGNITO_ENDPOINT_URL = env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", default="") or env(
    "AWS_ENDPOINT_URL", default=""
)
# The worker's client (accounts/cognito/clients.py): timeouts in seconds, and requests per call, the
# first one included. The inline sync has its own, cut to its budget.
COGNITO_CONNECT_TIMEOUT = _positive("COGNITO_CONNECT_TIMEOUT", 2.0)
COGNITO_READ_TIMEOUT = _positive("COGNITO_READ_TIMEOUT", 5.0)
COGNITO_MAX_ATTEMPTS = _positive("COGNITO_MAX_ATTEMPTS", 3, int)
# How long a worker holds a claimed sync task; must exceed the longest apply_state (a dozen calls,
# each bounded by the timeouts and attempts above).
COGNITO_SYNC_LEASE_SECONDS = _positive("COGNITO_SYNC_LEASE_SECONDS", 120, int)
# The sync runs inline after commit when Cognito answers; tests of the queue switch this off.
COGNITO_SYNC_INLINE = env.bool("COGNITO_SYNC_INLINE", default=True)
COGNITO_SEND_INVITATION = env.bool("COGNITO_SEND_INVITATION", default=False)
# The inline sync's total time (seconds) in a request; past it the work stays pending for the worker.
COGNITO_SYNC_INLINE_BUDGET_SECONDS = env.float("COGNITO_SYNC_INLINE_BUDGET_SECONDS", default=1.5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # asctime in TIME_ZONE (Django sets the process's TZ to it), with its offset.
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s", "datefmt": "%Y-%m-%d %H:%M:%S%z"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"
        },
    },
    # Every handler redacts credentials (query strings, Authorization headers, token responses),
    # whichever logger the record came from (core/logging_filters.py).
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_credentials"]},
        "django.server": {
            "class": "logging.StreamHandler", "formatter": "django.server", "filters": ["redact_credentials"]
        },
    },
    "filters": {"redact_credentials": {"()": "core.logging_filters.RedactCredentials"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's defaults would keep their own unfiltered handlers (console in DEBUG, mail_admins
        # with the request's query string): django.* goes to the root's handler instead. INFO as
        # Django's default, whatever DJANGO_LOG_LEVEL says: at DEBUG, django.db.backends would log
        # every query's parameters (names, dates of birth).
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # runserver's request lines carry the query string: its own handler, filtered too.
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # botocore logs request bodies (emails, names) at DEBUG; keep it quiet.
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        # oauthlib logs issued tokens at DEBUG: redacted at the source, whatever the level.
        **{name: {"filters": ["redact_credentials"]} for name in credential_logger_names()},
    },
}

# --- Webhooks (docs/integrators.md, "Webhooks") -----------------------------------------------
INSTALLED_APPS += ["webhooks"]
OAUTH2_PROVIDER["SCOPES"]["manage:webhooks"] = "Manage the organization's webhook endpoints and their deliveries"
# Development and tests only: also allow http:// and loopback or private addresses as targets.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Seconds between attempts: a delivery is tried once, then once after each gap, then it is `failed`.
_WEBHOOK_RETRY_DEFAULT = "5,30,120,600,1800,3600,7200,14400,28800,43200"
WEBHOOK_RETRY_SCHEDULE = [int(s) for s in env("WEBHOOK_RETRY_SCHEDULE", default=_WEBHOOK_RETRY_DEFAULT).split(",")]
# A 2xx within this many seconds is success.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# The longest a target's host name may take to resolve (at registration and within each attempt's timeout).
WEBHOOK_DNS_TIMEOUT_SECONDS = env.float("WEBHOOK_DNS_TIMEOUT_SECONDS", default=2.0)
# How long a worker holds a claimed delivery; must exceed the timeout by far.
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=60)
# Finished deliveries (with their attempts) and events left without one are deleted after this many days.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
if WEBHOOK_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("WEBHOOK_RETENTION_DAYS must be a whole number of days, 1 or more.")
# Attempts one worker has in flight at once (one per endpoint; organizations take turns for them).
WEBHOOK_DELIVERY_CONCURRENCY = env.int("WEBHOOK_DELIVERY_CONCURRENCY", default=8)
if WEBHOOK_DELIVERY_CONCURRENCY < 1:
    raise ImproperlyConfigured("WEBHOOK_DELIVERY_CONCURRENCY must be 1 or more.")
# An attempt longer than this marks its endpoint slow (a 2xx within the timeout still succeeds).
WEBHOOK_SLOW_SECONDS = env.float("WEBHOOK_SLOW_SECONDS", default=2.0)
# How often an idle worker looks for due deliveries.
WEBHOOK_POLL_SECONDS = env.float("WEBHOOK_POLL_SECONDS", default=0.2)
# Redeliveries one API client may ask for (POST .../redeliver), in DRF's rate notation.
WEBHOOK_REDELIVERY_RATE = env("WEBHOOK_REDELIVERY_RATE", default="30/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["webhook_redelivery"] = WEBHOOK_REDELIVERY_RATE
# httpx logs each request's URL at INFO: a webhook URL's query string may carry the receiver's credential.
LOGGING["loggers"].update({"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}})
# signxml logs each canonicalized SOAP part at DEBUG: a register search's HPI-I, name and date of birth.
LOGGING["loggers"]["signxml"] = {"level": "WARNING"}
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["WebhookEndpointStatusEnum"] = (
    "webhooks.models.WebhookEndpoint.Status"
)

# --- The HI Service (hi_service/client.py; docs/operators.md) ----------------------------
INSTALLED_APPS += ["hi_service"]
# The provider-individual search endpoint. Unset: the register is never asked.
HI_SERVICE_URL = env("HI_SERVICE_URL", default="")
# PEM paths. The TLS client pair (the NASH or contracted-service-provider certificate) ...
HI_SERVICE_CLIENT_CERT = env("HI_SERVICE_CLIENT_CERT", default="")
HI_SERVICE_CLIENT_KEY = env("HI_SERVICE_CLIENT_KEY", default="")
# ... the pair that signs each request (default: the TLS client pair) ...
HI_SERVICE_SIGNING_CERT = env("HI_SERVICE_SIGNING_CERT", default="") or HI_SERVICE_CLIENT_CERT
HI_SERVICE_SIGNING_KEY = env("HI_SERVICE_SIGNING_KEY", default="") or HI_SERVICE_CLIENT_KEY
# ... the CAs the register's TLS certificate is checked against (default: the system's) ...
HI_SERVICE_CA_BUNDLE = env("HI_SERVICE_CA_BUNDLE", default="")
# ... and the certificate the register signs its replies with (default: any certificate that
# chains to HI_SERVICE_CA_BUNDLE). A reply without a valid signature is never trusted.
HI_SERVICE_REPLY_SIGNING_CERT = env("HI_SERVICE_REPLY_SIGNING_CERT", default="")
# The product header: the vendor id and qualifier come with the product's registration (PCIN).
HI_PRODUCT_VENDOR_QUALIFIER = env("HI_PRODUCT_VENDOR_QUALIFIER", default="")
HI_PRODUCT_VENDOR_ID = env("HI_PRODUCT_VENDOR_ID", default="")
HI_PRODUCT_NAME = env("HI_PRODUCT_NAME", default="User Management")
HI_PRODUCT_VERSION = env("HI_PRODUCT_VERSION", default="1.0")
HI_PRODUCT_PLATFORM = env("HI_PRODUCT_PLATFORM", default="Linux")
# The qualifier of the local user id sent in the user header (a URI of the vendor's own).
HI_USER_QUALIFIER = env("HI_USER_QUALIFIER", default="")
# Seconds. A call never takes longer than connect + read (less when the caller gives a timeout).
HI_CONNECT_TIMEOUT = env.float("HI_CONNECT_TIMEOUT", default=3.0)
HI_READ_TIMEOUT = env.float("HI_READ_TIMEOUT", default=10.0)
# After this many consecutive failures (down, timing out, 5xx) the client answers `error` without
# calling for HI_PAUSE_SECONDS.
HI_FAILURES_BEFORE_PAUSE = env.int("HI_FAILURES_BEFORE_PAUSE", default=3)
HI_PAUSE_SECONDS = env.float("HI_PAUSE_SECONDS", default=30.0)
# Service-message codes meaning "the register knows this HPI-I or AHPRA number, not with these
# details" (outcome `mismatch`); the licensed SIS's message table names the real service's. The
# default is the emulator's (hi_service/fixtures.py).
HI_MISMATCH_CODES = env.list("HI_MISMATCH_CODES", default=["HI-EMU-MISMATCH"])

# The HI Service's verification of provider details (the verification app; the client and its
# connection settings are hi_service's).
INSTALLED_APPS += ["verification"]
# can_prescribe needs the register's `verified`. Off only while an operator watches the first
# outcomes of a roll-out: check --deploy warns.
HI_VERIFICATION_REQUIRED = env.bool("HI_VERIFICATION_REQUIRED", default=True)
# Every call to the register, inline and from every worker, shares this budget.
HI_MAX_REQUESTS_PER_SECOND = env.float("HI_MAX_REQUESTS_PER_SECOND", default=10.0)
if HI_MAX_REQUESTS_PER_SECOND <= 0:
    raise ImproperlyConfigured("HI_MAX_REQUESTS_PER_SECOND must be more than 0.")
# Register calls one worker has in flight at once (threads, each with its own database connection):
# the request budget, not one call's round trip, sets a worker's pace (50 a second at 100 ms a call
# needs 5).
HI_WORKER_CONCURRENCY = env.int("HI_WORKER_CONCURRENCY", default=8)
if HI_WORKER_CONCURRENCY < 1:
    raise ImproperlyConfigured("HI_WORKER_CONCURRENCY must be 1 or more.")
# Each provider is asked again within this many days, spread over the period.
HI_REVALIDATE_DAYS = env.int("HI_REVALIDATE_DAYS", default=30)
if HI_REVALIDATE_DAYS < 1:
    raise ImproperlyConfigured("HI_REVALIDATE_DAYS must be a whole number of days, 1 or more.")
# The attempt a write makes after its commit, before it answers; what it leaves, the worker does.
HI_VERIFY_INLINE_BUDGET_SECONDS = env.float("HI_VERIFY_INLINE_BUDGET_SECONDS", default=2.0)
HI_VERIFY_INLINE = env.bool("HI_VERIFY_INLINE", default=True)

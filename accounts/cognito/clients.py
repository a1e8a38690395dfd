"""Configuration, boto3 clients, errors and the inline budget of the Cognito gateway.

Imports no Django models. Configuration comes from django.conf.settings (config/settings.py reads
the environment): ``COGNITO_REGION`` and ``COGNITO_ENDPOINT_URL`` (boto3's ``AWS_REGION`` and
``AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER``), ``COGNITO_USER_POOL_ID``, and the worker's client
tuning ``COGNITO_CONNECT_TIMEOUT``, ``COGNITO_READ_TIMEOUT``, ``COGNITO_MAX_ATTEMPTS``; credentials
are boto3's default chain.

The inline sync's :class:`Budget` gets its own client: one attempt per call, a connect timeout of a
third of the budget and each read timeout cut to what is left of it (botocore's per-request
``read_timeout``, set by a before-call hook), so connect plus read never outlast the budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import threading
import time
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

# An inline call is not started with less than this left of the budget.
_MIN_CALL_SECONDS = 0.1

# AWS error codes after which a later retry may succeed: Cognito's own trouble, and credentials or
# permissions, which an operator fixes without the user changing.
_RETRYABLE_CODES = frozenset(
    {
        "InternalErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDeniedException",
    }
)
# Transport-level botocore exceptions (class names) that are worth retrying.
_RETRYABLE_TRANSPORT_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionError",
        "HTTPClientError",
        "ProxyConnectionError",
        "SSLError",
        "NoCredentialsError",
    }
)
TIMEOUTS = frozenset({"ConnectTimeoutError", "ReadTimeoutError"})


class CognitoError(Exception):
    """A failed Cognito call: the operation and the AWS error code (or the botocore exception's
    class name), never the AWS message, which may echo request values back.

    ``retryable``: whether retrying later may succeed (throttling, 5xx, connection problems,
    timeouts, credentials); anything else can't succeed by trying again.
    """

    def __init__(self, operation: str, code: str, *, retryable: bool = False, http_status: int | None = None) -> None:
        self.operation = operation
        self.code = code
        self.retryable = retryable
        self.http_status = http_status
        super().__init__(f"Cognito {operation} failed: {code}")


class CognitoConfigurationError(CognitoError):
    """The gateway is missing configuration (e.g. no user pool id). Retryable: an operator fixes
    the deployment, not the user."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(operation, code, retryable=True)


class CognitoBudgetExceeded(CognitoError):
    """The inline budget ran out: before a call, or a call timed out on the cut timeouts."""

    def __init__(self, operation: str) -> None:
        super().__init__(operation, "InlineBudgetExceeded", retryable=True)


def translate(operation: str, exc: Exception) -> CognitoError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        code = str(error.get("Code") or "UnknownError")
        retryable = code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
        return CognitoError(operation, code, retryable=retryable, http_status=status)
    names = {cls.__name__ for cls in type(exc).__mro__}
    return CognitoError(operation, type(exc).__name__, retryable=bool(names & _RETRYABLE_TRANSPORT_ERRORS))


# --- configuration and clients ----------------------------------------------------------------


def get_user_pool_id() -> str:
    """settings.COGNITO_USER_POOL_ID; a configuration error (retryable: an operator sets it) when unset."""
    pool_id = str(settings.COGNITO_USER_POOL_ID or "").strip()
    if not pool_id:
        raise CognitoConfigurationError("configure", "MissingUserPoolId")
    return pool_id


def _built_once(build):
    """lru_cache alone lets each of a burst of first calls (a gthread worker's threads) build its
    own client, about 10 MB and a service-model load each; this builds under a lock."""
    lock = threading.Lock()

    @functools.wraps(build)
    def locked(*args):
        with lock:
            return build(*args)

    locked.cache_clear = build.cache_clear
    return locked


@_built_once
@functools.lru_cache(maxsize=32)
def _build_client(
    region: str | None,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    max_pool_connections: int,
    retry_mode: str = "adaptive",
):
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # botocore's ``max_attempts`` counts retries; ``total_max_attempts`` counts requests,
        # which is what COGNITO_MAX_ATTEMPTS means (1 = a single try).
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        # The process's threads share this client (gunicorn.conf.py: GUNICORN_THREADS, default 32):
        # with botocore's default pool of 10, the 11th concurrent call opened a connection (a TLS
        # handshake, against AWS) and threw it away afterwards ("Connection pool is full").
        max_pool_connections=max_pool_connections,
    )
    # A private Session: boto3's default session is not thread-safe, clients are.
    return boto3.session.Session().client("cognito-idp", region_name=region, endpoint_url=endpoint_url, config=config)


def _client(connect_timeout: float, read_timeout: float, max_attempts: int, retry_mode: str = "adaptive"):
    try:
        return _build_client(
            settings.COGNITO_REGION or None,
            settings.COGNITO_ENDPOINT_URL or None,
            connect_timeout,
            read_timeout,
            max_attempts,
            max(10, settings.GUNICORN_THREADS),
            retry_mode,
        )
    except BotoCoreError as exc:  # e.g. NoRegionError
        raise translate("create_client", exc) from None


def get_client():
    """The process-wide ``cognito-idp`` client of the worker: full timeouts and retries."""
    return _client(settings.COGNITO_CONNECT_TIMEOUT, settings.COGNITO_READ_TIMEOUT, settings.COGNITO_MAX_ATTEMPTS)


# The read timeout of the inline call in flight in this thread (or task); None: the client's own.
_call_read_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("cognito_read_timeout", default=None)


def _cut_read_timeout(context, **kwargs):
    seconds = _call_read_timeout.get()
    if seconds is not None:
        context["read_timeout"] = seconds  # botocore's per-request override of the read timeout


@contextlib.contextmanager
def read_timeout_of_next_call(seconds: float | None):
    """Within this block, calls through the inline client wait ``seconds`` for a response."""
    token = _call_read_timeout.set(seconds)
    try:
        yield
    finally:
        _call_read_timeout.reset(token)


def get_inline_client(connect_timeout: float):
    """The inline sync's client: a single attempt per call (the standard retry mode, whose rate
    limiter never sleeps), this connect timeout, and each call's read timeout cut to what is left
    of the budget (set by the gateway, applied by a before-call hook)."""
    client = _client(connect_timeout, settings.COGNITO_READ_TIMEOUT, 1, "standard")
    client.meta.events.register(
        "before-call.cognito-idp", _cut_read_timeout, unique_id="accounts.cognito.gateway:cut_read_timeout"
    )
    return client


def reset_client() -> None:
    """Drop cached clients (they are also keyed on the settings they were built from)."""
    _build_client.cache_clear()


@dataclass(frozen=True)
class Budget:
    """A time limit for a series of calls (the inline sync's), from ``start`` (time.monotonic())."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.start + self.seconds - time.monotonic()

    def read_timeout(self, operation: str) -> float:
        """What is left for the next call's response, after its connect timeout; raises
        :class:`CognitoBudgetExceeded` when that is too little to start the call."""
        left = self.remaining() - self.connect_timeout
        if left < _MIN_CALL_SECONDS:
            raise CognitoBudgetExceeded(operation)
        return min(settings.COGNITO_READ_TIMEOUT, left)

    @property
    def connect_timeout(self) -> float:
        # A fresh connection is one round trip: a third of the budget is plenty. Derived from the
        # setting, not from what is left, so a process keeps one inline client per budget.
        third = math.floor(self.seconds / 3 * 10) / 10
        return max(_MIN_CALL_SECONDS, min(settings.COGNITO_CONNECT_TIMEOUT, third))

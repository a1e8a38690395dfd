"""Thin gateway around boto3's ``cognito-idp`` client.

This module deliberately imports no Django models so that it can be used (and
tested) without a configured Django project.  Everything the sync worker needs
is exposed through :class:`CognitoGateway`; :func:`get_gateway` builds one from
the environment.

Configuration comes only from boto3's own settings plus the pool id:

* region: ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (otherwise boto3's config
  file resolution);
* endpoint: ``AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`` or
  ``AWS_ENDPOINT_URL`` (resolved by boto3 itself);
* credentials: boto3's default credential chain (environment, role, ...);
* pool id: ``COGNITO_USER_POOL_ID`` (fallback: Django setting of the same name);
* client tuning: ``COGNITO_CONNECT_TIMEOUT`` (default 2 s),
  ``COGNITO_READ_TIMEOUT`` (default 5 s), ``COGNITO_MAX_ATTEMPTS`` (default 3,
  adaptive retry mode).  COGNITO_MAX_ATTEMPTS is the total number of requests
  per call, including the first one.

Privacy: nothing in this module logs or puts into an exception message any
PII (emails, names, phone numbers).  Only the Cognito username (a UUID), the
operation name and the AWS error code are ever logged or reported.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

__all__ = [
    "CUSTOM_ORGANIZATION_ID",
    "CognitoConfigurationError",
    "CognitoError",
    "CognitoGateway",
    "get_client",
    "get_gateway",
    "get_user_pool_id",
    "reset_client",
]

CUSTOM_ORGANIZATION_ID = "custom:organization_id"

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_MAX_ATTEMPTS = 3

# AWS error codes after which a later retry may succeed.
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
    }
)


class CognitoError(Exception):
    """A failed Cognito call.

    The message only contains the operation and the AWS error code (or the
    botocore exception class name for transport errors) and never the AWS
    error message, which may echo request values back.

    Attributes:
        operation: the boto3 method name, e.g. ``"admin_create_user"``.
        code: AWS error code (``"UserNotFoundException"``) or botocore
            exception class name (``"EndpointConnectionError"``).
        retryable: whether retrying later may succeed (throttling, 5xx,
            connection problems, timeouts).
        http_status: HTTP status code for service errors, else ``None``.
    """

    def __init__(
        self,
        operation: str,
        code: str,
        *,
        retryable: bool = False,
        http_status: int | None = None,
    ) -> None:
        self.operation = operation
        self.code = code
        self.retryable = retryable
        self.http_status = http_status
        super().__init__(f"Cognito {operation} failed: {code}")

    def __reduce__(self):  # keep picklable (e.g. for task queues)
        return (
            _rebuild_cognito_error,
            (type(self), self.operation, self.code, self.retryable, self.http_status),
        )


def _rebuild_cognito_error(cls, operation, code, retryable, http_status):
    return cls(operation, code, retryable=retryable, http_status=http_status)


class CognitoConfigurationError(CognitoError):
    """The gateway is missing configuration (e.g. no user pool id)."""


def _translate(operation: str, exc: Exception) -> CognitoError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(error.get("Code") or "UnknownError")
        status = meta.get("HTTPStatusCode")
        retryable = code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
        return CognitoError(operation, code, retryable=retryable, http_status=status)
    name = type(exc).__name__
    retryable = name in _RETRYABLE_TRANSPORT_ERRORS or any(
        cls.__name__ in _RETRYABLE_TRANSPORT_ERRORS for cls in type(exc).__mro__
    )
    return CognitoError(operation, name, retryable=retryable)


# --------------------------------------------------------------------------
# Configuration / client factory
# --------------------------------------------------------------------------


def _env_number(name: str, default: float, cast: type) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise CognitoConfigurationError("configure", f"Invalid{name}") from None
    if value <= 0:
        raise CognitoConfigurationError("configure", f"Invalid{name}")
    return value


def get_user_pool_id() -> str:
    """Return the configured user pool id.

    ``COGNITO_USER_POOL_ID`` from the environment wins; if it is unset and a
    Django settings module is available, ``settings.COGNITO_USER_POOL_ID`` is
    used.  Raises :class:`CognitoConfigurationError` if neither is set.
    """
    pool_id = os.environ.get("COGNITO_USER_POOL_ID", "").strip()
    if pool_id:
        return pool_id
    try:
        from django.conf import settings

        if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
            pool_id = str(getattr(settings, "COGNITO_USER_POOL_ID", "") or "").strip()
    except Exception:  # Django missing or settings not importable
        pool_id = ""
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
@functools.lru_cache(maxsize=8)
def _build_client(
    region: str | None,
    endpoint_url_service: str | None,
    endpoint_url_global: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
):
    # The endpoint env vars are part of the cache key only; boto3 resolves
    # AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER / AWS_ENDPOINT_URL itself.
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # botocore's ``max_attempts`` key counts *retries* (max_attempts=3 means
        # 4 requests); ``total_max_attempts`` counts requests, which is what
        # COGNITO_MAX_ATTEMPTS means (1 = a single try, no retry).
        retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        # The process's threads share this client (gunicorn.conf.py: GUNICORN_THREADS, default 32):
        # with botocore's default pool of 10, the 11th concurrent call opened a connection (a TLS
        # handshake, against AWS) and threw it away afterwards ("Connection pool is full").
        max_pool_connections=max(10, _env_number("GUNICORN_THREADS", 32, int)),
    )
    # A private Session: boto3's default session is not thread-safe, clients are.
    session = boto3.session.Session()
    return session.client("cognito-idp", region_name=region, config=config)


def get_client():
    """Return the process-wide ``cognito-idp`` client for the current env."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        return _build_client(
            region or None,
            os.environ.get("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER") or None,
            os.environ.get("AWS_ENDPOINT_URL") or None,
            _env_number("COGNITO_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, float),
            _env_number("COGNITO_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, float),
            _env_number("COGNITO_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, int),
        )
    except BotoCoreError as exc:  # e.g. NoRegionError
        raise _translate("create_client", exc) from None


def reset_client() -> None:
    """Drop cached clients (use after changing AWS_* / COGNITO_* env vars)."""
    _build_client.cache_clear()


# --------------------------------------------------------------------------
# Gateway
# --------------------------------------------------------------------------


def _desired_attributes(*, email: str, given_name: str, family_name: str, organization_id: str) -> dict[str, str]:
    return {
        "email": email,
        "email_verified": "true",
        "given_name": given_name,
        "family_name": family_name,
        CUSTOM_ORGANIZATION_ID: str(organization_id),
    }


def _as_attribute_list(attributes: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in attributes.items()]


class CognitoGateway:
    """Idempotent operations on Cognito user-pool accounts.

    ``client`` defaults to :func:`get_client` (resolved lazily, per call) and
    ``user_pool_id`` to :func:`get_user_pool_id` (resolved on first use).
    Every failure is raised as :class:`CognitoError`.
    """

    def __init__(self, client: Any = None, user_pool_id: str | None = None) -> None:
        self._client = client
        self._user_pool_id = user_pool_id

    # -- plumbing ---------------------------------------------------------

    @property
    def client(self):
        return self._client if self._client is not None else get_client()

    @property
    def user_pool_id(self) -> str:
        if not self._user_pool_id:
            self._user_pool_id = get_user_pool_id()
        return self._user_pool_id

    def _call(self, operation: str, username: str | None = None, **params: Any) -> Any:
        """Call ``client.<operation>(UserPoolId=..., **params)``.

        Translates botocore errors into :class:`CognitoError`.  ``username``
        (a UUID, never PII) is only used for logging; pass it as ``Username``
        in ``params`` too when the API needs it.
        """
        pool_id = self.user_pool_id
        try:
            return getattr(self.client, operation)(UserPoolId=pool_id, **params)
        except (ClientError, BotoCoreError) as exc:
            error = _translate(operation, exc)
        # Raised outside the except block so the original exception (whose
        # message may echo request values) is not chained into tracebacks.
        logger.debug(
            "cognito call failed operation=%s code=%s username=%s",
            operation,
            error.code,
            username,
        )
        raise error

    def _get_user(self, username: str) -> dict[str, Any] | None:
        try:
            return self._call("admin_get_user", username, Username=username)
        except CognitoError as exc:
            if exc.code == "UserNotFoundException":
                return None
            raise

    def _list_groups(self, username: str) -> set[str]:
        groups: set[str] = set()
        params: dict[str, Any] = {"Username": username, "Limit": 60}
        while True:
            page = self._call("admin_list_groups_for_user", username, **params)
            groups.update(g["GroupName"] for g in page.get("Groups", []))
            token = page.get("NextToken")
            if not token:
                return groups
            params["NextToken"] = token

    # -- account ----------------------------------------------------------

    def ensure_account(
        self,
        *,
        username: str,
        email: str,
        given_name: str,
        family_name: str,
        organization_id: str,
        send_invitation: bool,
    ) -> None:
        """Create the account if missing, otherwise update its attributes."""
        desired = _desired_attributes(
            email=email,
            given_name=given_name,
            family_name=family_name,
            organization_id=organization_id,
        )
        self._ensure_account(username, desired, send_invitation=send_invitation, current=None)

    def _ensure_account(
        self,
        username: str,
        desired: dict[str, str],
        *,
        send_invitation: bool,
        current: dict[str, Any] | None,
        fetched: bool = False,
    ) -> dict[str, Any]:
        """Converge attributes; return the user's (possibly new) AdminGetUser-ish dict."""
        if not fetched:
            current = self._get_user(username)
        if current is None:
            created = self._create(username, desired, send_invitation=send_invitation)
            if created is not None:
                return created
            # Lost a creation race: the account exists now, update it instead.
            current = self._get_user(username)
            if current is None:
                raise CognitoError("admin_create_user", "UserNotFoundException")
        existing = {a["Name"]: a.get("Value", "") for a in current.get("UserAttributes", [])}
        changed = {k: v for k, v in desired.items() if existing.get(k) != v}
        if changed:
            # email_verified must travel with email, or Cognito marks the new
            # address unverified and sends a verification code.
            if "email" in changed:
                changed["email_verified"] = desired["email_verified"]
            self._call(
                "admin_update_user_attributes",
                username,
                Username=username,
                UserAttributes=_as_attribute_list(changed),
            )
            logger.info(
                "cognito account updated username=%s attributes=%s",
                username,
                ",".join(sorted(changed)),  # attribute names only, no values
            )
        return current

    def _create(self, username: str, desired: dict[str, str], *, send_invitation: bool) -> dict[str, Any] | None:
        params: dict[str, Any] = {
            "Username": username,
            "UserAttributes": _as_attribute_list(desired),
        }
        if send_invitation:
            params["DesiredDeliveryMediums"] = ["EMAIL"]
        else:
            params["MessageAction"] = "SUPPRESS"
        try:
            response = self._call("admin_create_user", username, **params)
        except CognitoError as exc:
            if exc.code == "UsernameExistsException":
                return None
            raise
        logger.info(
            "cognito account created username=%s invitation=%s",
            username,
            send_invitation,
        )
        user = dict(response.get("User") or {})
        user.setdefault("Enabled", True)
        user["UserAttributes"] = user.pop("Attributes", [])
        return user

    # -- groups -----------------------------------------------------------

    def set_groups(self, *, username: str, groups: Iterable[str]) -> None:
        """Make the user's group memberships exactly ``groups``."""
        desired = set(groups)
        if any(not g for g in desired):
            raise ValueError("group names must be non-empty")
        current = self._list_groups(username)
        for group in sorted(desired - current):
            self._add_to_group(username, group)
        for group in sorted(current - desired):
            try:
                self._call(
                    "admin_remove_user_from_group",
                    username,
                    Username=username,
                    GroupName=group,
                )
            except CognitoError as exc:
                if exc.code != "ResourceNotFoundException":  # group gone already
                    raise
        if desired != current:
            logger.info(
                "cognito groups set username=%s added=%s removed=%s",
                username,
                ",".join(sorted(desired - current)),
                ",".join(sorted(current - desired)),
            )

    def _add_to_group(self, username: str, group: str) -> None:
        try:
            self._call("admin_add_user_to_group", username, Username=username, GroupName=group)
            return
        except CognitoError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        # The group does not exist yet (UserNotFoundException would have a
        # different code): create it, tolerating a concurrent creator.
        try:
            self._call("create_group", username, GroupName=group)
            logger.info("cognito group created group=%s", group)
        except CognitoError as exc:
            if exc.code != "GroupExistsException":
                raise
        self._call("admin_add_user_to_group", username, Username=username, GroupName=group)

    # -- enabled flag -----------------------------------------------------

    def disable(self, *, username: str) -> None:
        """Disable the account and revoke its sessions.  Idempotent."""
        self._call("admin_disable_user", username, Username=username)
        try:
            self._call("admin_user_global_sign_out", username, Username=username)
        except CognitoError as exc:
            # A disabled user can neither sign in nor refresh tokens; if
            # Cognito refuses the sign-out because the user is disabled the
            # goal (no usable session) is already met.
            if exc.code != "NotAuthorizedException":
                raise
        logger.info("cognito account disabled username=%s", username)

    def enable(self, *, username: str) -> None:
        """Enable the account.  Idempotent."""
        self._call("admin_enable_user", username, Username=username)
        logger.info("cognito account enabled username=%s", username)

    # -- full convergence -------------------------------------------------

    def apply_state(
        self,
        *,
        username: str,
        email: str,
        given_name: str,
        family_name: str,
        organization_id: str,
        groups: Iterable[str],
        enabled: bool,
        send_invitation: bool = False,
    ) -> None:
        """Converge the account onto this complete desired state.

        Order matters for safety: when the account must end up disabled it is
        disabled (and signed out) *before* other changes; when it must end up
        enabled it is enabled only *after* attributes and groups are correct.
        Enable/disable is issued only if the current ``Enabled`` flag differs.
        """
        desired_attrs = _desired_attributes(
            email=email,
            given_name=given_name,
            family_name=family_name,
            organization_id=organization_id,
        )
        desired_groups = set(groups)
        current = self._get_user(username)
        currently_enabled = True if current is None else bool(current.get("Enabled"))

        if current is not None and not enabled and currently_enabled:
            self.disable(username=username)
            currently_enabled = False

        user = self._ensure_account(
            username,
            desired_attrs,
            send_invitation=send_invitation and enabled,
            current=current,
            fetched=True,
        )
        if current is None:
            currently_enabled = bool(user.get("Enabled", True))
            if not enabled and currently_enabled:
                self.disable(username=username)
                currently_enabled = False

        self.set_groups(username=username, groups=desired_groups)

        if enabled and not currently_enabled:
            self.enable(username=username)

    # -- read side --------------------------------------------------------

    def describe(self, *, username: str) -> dict[str, Any] | None:
        """Return the account's state, or ``None`` if it does not exist."""
        user = self._get_user(username)
        if user is None:
            return None
        try:
            groups = self._list_groups(username)
        except CognitoError as exc:
            if exc.code == "UserNotFoundException":  # deleted in between
                return None
            raise
        return {
            "username": user.get("Username", username),
            "enabled": bool(user.get("Enabled")),
            "status": user.get("UserStatus"),
            "attributes": {a["Name"]: a.get("Value", "") for a in user.get("UserAttributes", [])},
            "groups": groups,
        }


def get_gateway() -> CognitoGateway:
    """Return a gateway using the cached client and the configured pool id."""
    return CognitoGateway()

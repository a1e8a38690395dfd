"""Thin gateway around boto3's ``cognito-idp`` client: idempotent operations on accounts.

This module imports no Django models, so it can be used (and tested) without a configured
Django project; configuration and clients are in :mod:`accounts.cognito.clients`.

A gateway made with a :class:`Budget` (the inline sync's) makes one attempt per call, with its
timeouts cut to what is left of the budget, and raises :class:`CognitoBudgetExceeded` instead of
starting a call it can't finish in time.

Privacy: nothing here logs or puts into an exception message any PII (emails, names, phone
numbers): only the Cognito username (a UUID), the operation name and the AWS error code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from accounts.cognito.clients import (
    TIMEOUTS,
    Budget,
    CognitoBudgetExceeded,
    CognitoConfigurationError,
    CognitoError,
    get_client,
    get_inline_client,
    get_user_pool_id,
    read_timeout_of_next_call,
    reset_client,
    translate,
)
from core.write_gate import released_while_waiting

# The names callers use, whichever module defines them.
__all__ = [
    "CUSTOM_ORGANIZATION_ID",
    "Budget",
    "CognitoBudgetExceeded",
    "CognitoConfigurationError",
    "CognitoError",
    "CognitoGateway",
    "get_client",
    "get_gateway",
    "get_inline_client",
    "get_user_pool_id",
    "reset_client",
]

logger = logging.getLogger(__name__)

CUSTOM_ORGANIZATION_ID = "custom:organization_id"
_READS = frozenset({"admin_get_user", "admin_list_groups_for_user"})

# --- the gateway ------------------------------------------------------------------------------


# The attributes the service owns, by the desired state's key. ``email_verified`` is not one of
# them: it is set with the account (true) and with each new e-mail (false), else left to Cognito.
_ATTRIBUTE_OF = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "organization_id": CUSTOM_ORGANIZATION_ID,
}


def _attributes(state: dict) -> dict[str, str]:
    return {attribute: str(state[key]) for key, attribute in _ATTRIBUTE_OF.items() if state.get(key) is not None}


def _as_attribute_list(attributes: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in attributes.items()]


class CognitoGateway:
    """Idempotent operations on Cognito user-pool accounts; every failure is a :class:`CognitoError`.

    ``client`` defaults to the worker's client (or, with a ``budget``, to the inline client cut to
    the budget) and ``user_pool_id`` to :func:`get_user_pool_id`. ``wrote`` says whether a call
    that may change the account was sent (for the outbox: is the last applied state still known?).
    """

    def __init__(self, client: Any = None, user_pool_id: str | None = None, *, budget: Budget | None = None) -> None:
        self._client = client
        self._user_pool_id = user_pool_id
        self._budget = budget
        self.wrote = False

    @property
    def client(self):
        return self._client if self._client is not None else get_client()

    @property
    def user_pool_id(self) -> str:
        if not self._user_pool_id:
            self._user_pool_id = get_user_pool_id()
        return self._user_pool_id

    def _call(self, operation: str, username: str | None = None, **params: Any) -> Any:
        """``client.<operation>(UserPoolId=..., **params)``; ``username`` (a UUID) only for logs."""
        pool_id = self.user_pool_id
        if self._budget is None:
            client, read_timeout = self.client, None
        else:
            client = self._client if self._client is not None else get_inline_client(self._budget.connect_timeout)
            read_timeout = self._budget.read_timeout(operation)  # after building a client: honest
        if operation not in _READS:
            self.wrote = True  # even if it fails: a timed-out write may have landed
        try:
            # The request's write slot is free for another write while this one waits on AWS.
            with read_timeout_of_next_call(read_timeout), released_while_waiting():
                return getattr(client, operation)(UserPoolId=pool_id, **params)
        except (ClientError, BotoCoreError) as exc:
            error = translate(operation, exc)
        if self._budget is not None and error.code in TIMEOUTS:
            error = CognitoBudgetExceeded(operation)
        # Raised outside the except block so the original exception (whose message may echo
        # request values) is not chained into tracebacks.
        logger.debug("cognito call failed operation=%s code=%s username=%s", operation, error.code, username)
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
            if not page.get("NextToken"):
                return groups
            params["NextToken"] = page["NextToken"]

    # -- single operations ----------------------------------------------------------------------

    def _create(self, username: str, attributes: dict[str, str], *, send_invitation: bool) -> bool:
        """Create the account, its e-mail verified; False when it exists already."""
        params: dict[str, Any] = {
            "Username": username,
            "UserAttributes": _as_attribute_list({**attributes, "email_verified": "true"}),
        }
        if send_invitation:
            params["DesiredDeliveryMediums"] = ["EMAIL"]
        else:
            params["MessageAction"] = "SUPPRESS"
        try:
            self._call("admin_create_user", username, **params)
        except CognitoError as exc:
            if exc.code == "UsernameExistsException":
                return False
            raise
        logger.info("cognito account created username=%s invitation=%s", username, send_invitation)
        return True

    def _update_attributes(self, username: str, changed: dict[str, str]) -> None:
        if not changed:
            return
        if "email" in changed:
            # A new address is unverified until its owner proves it (Cognito sends the code);
            # only the address the account was created with counts as verified.
            changed = {**changed, "email_verified": "false"}
        self._call(
            "admin_update_user_attributes", username, Username=username, UserAttributes=_as_attribute_list(changed)
        )
        # Attribute names only, no values.
        logger.info("cognito account updated username=%s attributes=%s", username, ",".join(sorted(changed)))

    def _add_to_group(self, username: str, group: str) -> None:
        try:
            self._call("admin_add_user_to_group", username, Username=username, GroupName=group)
            return
        except CognitoError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        # The group does not exist yet: create it, tolerating a concurrent creator.
        try:
            self._call("create_group", username, GroupName=group)
            logger.info("cognito group created group=%s", group)
        except CognitoError as exc:
            if exc.code != "GroupExistsException":
                raise
        self._call("admin_add_user_to_group", username, Username=username, GroupName=group)

    def _remove_from_group(self, username: str, group: str) -> None:
        try:
            self._call("admin_remove_user_from_group", username, Username=username, GroupName=group)
        except CognitoError as exc:
            if exc.code != "ResourceNotFoundException":  # the group is gone already
                raise

    def _change_groups(self, username: str, add: Iterable[str], remove: Iterable[str]) -> None:
        add, remove = sorted(add), sorted(remove)
        for group in add:
            self._add_to_group(username, group)
        for group in remove:
            self._remove_from_group(username, group)
        if add or remove:
            logger.info("cognito groups set username=%s added=%s removed=%s", username, ",".join(add), ",".join(remove))

    def set_groups(self, *, username: str, groups: Iterable[str]) -> None:
        """Make the user's group memberships exactly ``groups`` (reads the current ones first)."""
        desired = set(groups)
        if any(not g for g in desired):
            raise ValueError("group names must be non-empty")
        current = self._list_groups(username)
        self._change_groups(username, desired - current, current - desired)

    def disable(self, *, username: str) -> None:
        """Disable the account and revoke its sessions. Idempotent."""
        self._call("admin_disable_user", username, Username=username)
        try:
            self._call("admin_user_global_sign_out", username, Username=username)
        except CognitoError as exc:
            # A disabled user can neither sign in nor refresh; a refusal because the user is
            # disabled already meets the goal (no usable session).
            if exc.code != "NotAuthorizedException":
                raise
        logger.info("cognito account disabled username=%s", username)

    def enable(self, *, username: str) -> None:
        """Enable the account. Idempotent."""
        self._call("admin_enable_user", username, Username=username)
        logger.info("cognito account enabled username=%s", username)

    # -- convergence ----------------------------------------------------------------------------

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
        applied: dict | None = None,
        never_applied: bool = False,
    ) -> None:
        """Bring the account to this complete desired state, with as few calls as the caller's
        knowledge allows:

        * ``never_applied`` (the outbox has never applied a state): create the account and add
          its groups, no read first; if it exists already, converge as below;
        * ``applied`` (the state last applied, same shape): send only the differences; if the
          account has gone, converge as below;
        * otherwise read the account and its groups and converge on what differs.

        Whenever the account must end up disabled it is disabled (and signed out) before any
        other change; when it must end up enabled it is enabled only after the rest is right.
        """
        state = {
            "email": email,
            "given_name": given_name,
            "family_name": family_name,
            "organization_id": str(organization_id),
            "groups": set(groups),
            "enabled": enabled,
        }
        if any(not g for g in state["groups"]):
            raise ValueError("group names must be non-empty")
        if never_applied:
            if not self._create_with_groups(username, state, send_invitation=send_invitation):
                # The account exists (an earlier create landed unrecorded): an address that differs
                # from its own is a changed one, so it goes in unverified like any other change.
                self._converge(username, state, send_invitation=False)
        elif applied is not None:
            try:
                self._apply_differences(username, state, applied)
            except CognitoError as exc:
                if exc.code != "UserNotFoundException":  # deleted behind the service's back
                    raise
                self._converge(username, state, send_invitation=send_invitation)
        else:
            self._converge(username, state, send_invitation=send_invitation)

    def _create_with_groups(self, username: str, state: dict, *, send_invitation: bool) -> bool:
        """A new account in its state: no read first. False when the account exists already."""
        if not self._create(username, _attributes(state), send_invitation=send_invitation and state["enabled"]):
            return False
        if not state["enabled"]:  # brand new: no password yet, so no session to sign out
            self._call("admin_disable_user", username, Username=username)
            logger.info("cognito account disabled username=%s", username)
        self._change_groups(username, state["groups"], ())
        return True

    def _apply_differences(self, username: str, state: dict, applied: dict) -> None:
        was_enabled = bool(applied.get("enabled", True))
        if was_enabled and not state["enabled"]:
            self.disable(username=username)
        before = _attributes(applied)
        self._update_attributes(username, {k: v for k, v in _attributes(state).items() if before.get(k) != v})
        had = set(applied.get("groups") or ())
        self._change_groups(username, state["groups"] - had, had - state["groups"])
        if state["enabled"] and not was_enabled:
            self.enable(username=username)

    def _converge(self, username: str, state: dict, *, send_invitation: bool) -> None:
        desired = _attributes(state)
        current = self._get_user(username)
        if current is None:
            if self._create_with_groups(username, state, send_invitation=send_invitation):
                return
            current = self._get_user(username)  # lost a creation race: update it instead
            if current is None:
                raise CognitoError("admin_create_user", "UserNotFoundException")
        currently_enabled = bool(current.get("Enabled"))
        if currently_enabled and not state["enabled"]:
            self.disable(username=username)
        existing = {a["Name"]: a.get("Value", "") for a in current.get("UserAttributes", [])}
        changed = {k: v for k, v in desired.items() if existing.get(k) != v}
        self._update_attributes(username, changed)
        self.set_groups(username=username, groups=state["groups"])
        if state["enabled"] and not currently_enabled:
            self.enable(username=username)

    # -- read side ------------------------------------------------------------------------------

    def describe(self, *, username: str) -> dict[str, Any] | None:
        """The account's state, or ``None`` if it does not exist."""
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


def get_gateway(*, budget: Budget | None = None) -> CognitoGateway:
    """A gateway on the cached clients and the configured pool id; a ``budget`` for the inline sync."""
    return CognitoGateway(budget=budget)

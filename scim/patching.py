"""A PATCH of a User (RFC 7644 §3.5.2) is applied by scim2-models to the user's SCIM resource; this
module holds the two things the service adds around it, so that no 2xx leaves the user unchanged
where an operation asked for a change:

- Before: a path-less add or replace whose value is keyed by a filtered path (Entra ID's
  `{"emails[type eq \"work\"].value": ...}`) is spread into operations with that path, which
  scim2-models applies (it only reads plain attribute names and dotted paths as keys).
- After: what the patched resource asks for and the service can't keep is refused (400) instead of
  dropped: one e-mail address and one phone number (type `work`, primary), `active` and the
  provider extension present once set.

Everything else the schema declares is applied by scim2-models (or refused by it: read-only,
required and immutable attributes), then stored through scim_user_apply."""

import re

from scim.resources import AuPrescriber
from scim.services import ScimError

# Sub-attributes the service shows with one value, whatever is sent: setting them to anything else,
# or removing them, would answer 2xx and change nothing.
FIXED_SUB_ATTRIBUTES = {
    "emails.type": "work",
    "emails.primary": True,
    "phonenumbers.type": "work",
    "phonenumbers.primary": True,
}
_FILTER = re.compile(r"\[[^\]]*\]")


def spread_filtered_keys(payload: dict) -> dict:
    """The PatchOp body with each filtered-path key of a path-less value made an operation of its own."""
    operations = next((value for key, value in payload.items() if key.lower() == "operations"), None)
    if not isinstance(operations, list):
        return payload
    spread = []
    for operation in operations:
        value = operation.get("value") if isinstance(operation, dict) else None
        op = operation.get("op") if isinstance(operation, dict) else None
        if operation.get("path") if isinstance(operation, dict) else True:
            spread.append(operation)
            continue
        if not isinstance(value, dict) or not any("[" in key for key in value):
            spread.append(operation)
            continue
        plain = {}
        for key, item in value.items():
            if "[" in key:
                if plain:
                    spread.append({"op": op, "value": plain})
                    plain = {}
                spread.append({"op": op, "path": key, "value": item})
            else:
                plain[key] = item
        if plain:
            spread.append({"op": op, "value": plain})
    key = next(key for key in payload if key.lower() == "operations")
    return {**payload, key: spread}


def refuse_fixed_sub_attributes(operations) -> None:
    """An operation that sets or removes a sub-attribute the service keeps fixed is refused."""
    for operation in operations:
        op = operation.op.value
        if operation.path is not None:
            targets = [(_plain_name(str(operation.path)), operation.value)]
        elif isinstance(operation.value, dict):
            targets = [(_plain_name(key), value) for key, value in operation.value.items()]
        else:
            continue
        for name, value in targets:
            if name not in FIXED_SUB_ATTRIBUTES:
                continue
            attribute = _display_name(name)
            fixed = FIXED_SUB_ATTRIBUTES[name]
            if op == "remove" or value is None:
                raise ScimError(400, f"{attribute}: always {_json(fixed)} here; it can't be removed.", "mutability")
            if value != fixed and not (isinstance(value, str) and str(fixed).lower() == value.lower()):
                raise ScimError(400, f"{attribute}: the service keeps only {_json(fixed)}.", "invalidValue")


def refuse_what_is_not_kept(before, after) -> None:
    """Compare the patched resource with the stored one: what it asks and the service can't keep is a
    400. A removed `roles` is made an empty list: absent means "leave the roles" to scim_user_apply."""
    for attribute in ("emails", "phone_numbers"):
        entries = getattr(after, attribute) or []
        if entries == (getattr(before, attribute) or []):
            continue
        name = "emails" if attribute == "emails" else "phoneNumbers"
        what = "e-mail address (the user's sign-in address)" if attribute == "emails" else "phone number"
        if len(entries) > 1:
            raise ScimError(400, f"{name}: the service keeps one {what}; send one, type work, primary.", "invalidValue")
        for entry in entries:
            if entry.type is not None and entry.type.lower() != "work":
                raise ScimError(
                    400, f"{name}.type: the service keeps one {what}, type work (not {entry.type!r}).", "invalidValue"
                )
            if entry.primary is False:
                raise ScimError(400, f"{name}.primary: the one {what} kept is the primary one.", "invalidValue")
    if before.roles and after.roles is None:
        after.roles = []  # removing `roles` takes every assignable role away (member stays)
    if after.active is None and before.active is not None:
        raise ScimError(400, "active: can't be removed; replace it with false to disable the user.", "mutability")
    if before[AuPrescriber] is not None and after[AuPrescriber] is None:
        raise ScimError(
            400,
            f"{AuPrescriber.__schema__}: the provider details can't be removed as a whole; "
            "remove their attributes one by one.",
            "mutability",
        )


def _plain_name(path: str) -> str:
    """`phoneNumbers[type eq "work"].type` -> `phonenumbers.type` (the filter doesn't change the target)."""
    return _FILTER.sub("", path).lower()


def _display_name(name: str) -> str:
    return name.replace("phonenumbers", "phoneNumbers")


def _json(value) -> str:
    return "true" if value is True else f'"{value}"'

"""What a Groups PUT or PATCH asks of a group's membership, read from the request in one pass.

The groups are the service's roles: their only state is which users hold the role, so every
operation is read as a change of one set of user ids. Set arithmetic keeps a PATCH linear in its
operations and members (applying them to a scim2-models Group copies and compares the member list
at every operation, quadratic in both). Every path the published Group schema declares is either
applied or refused with a SCIM error: nothing is silently dropped.

A member value object is `{"value": <user id>}`, optionally with `"$ref"` (null or the member's
URI), `"type"` ("User") and `"display"` (informative: the display name follows the user's name)."""

import uuid
from urllib.parse import urlsplit

from scim2_models.path.expressions import AttrPath, CompareOperator, Comparison, LogicalExpr, LogicalOperator

from scim.services import ScimError

MEMBER_KEYS = {"value", "$ref", "type", "display"}


def count_member_objects(payload: dict) -> int:
    """How many member value objects a Group PUT or PatchOp body carries (for the cap, before any work)."""
    if isinstance(payload.get("members"), list):
        return len(payload["members"])
    total = 0
    for operation in _raw_operations(payload):
        value = operation.get("value") if isinstance(operation, dict) else None
        if isinstance(value, dict):
            value = next((item for key, item in value.items() if key.lower() == "members"), None)
        if isinstance(value, list):
            total += len(value)
        elif isinstance(value, dict):
            total += 1
    return total


def count_operations(payload: dict) -> int:
    return len(_raw_operations(payload))


def _raw_operations(payload: dict) -> list:
    operations = next((value for key, value in payload.items() if key.lower() == "operations"), None)
    return operations if isinstance(operations, list) else []


def members_of_put(payload: dict, *, role: str, base_url: str) -> set[str]:
    """The members a Group PUT says the group has: the whole membership (absent or [] means none)."""
    _check_display_name(payload.get("displayName"), role)
    _refuse_external_id(payload.get("externalId"))
    members = payload.get("members")
    if members is None:
        return set()
    if not isinstance(members, list):
        raise ScimError(400, "members: a list of member objects.", "invalidValue")
    return {member_id(item, base_url=base_url) for item in members}


def members_after_patch(operations, current: set[str], *, role: str, base_url: str) -> set[str]:
    """Apply a PatchOp[Group]'s operations, in order, to the set of member ids."""
    members = set(current)
    for operation in operations:
        op = operation.op.value
        if operation.path is None:
            if op == "remove":  # scim2-models refuses it first; kept so the rule reads whole here
                raise ScimError(400, "remove: a path is required.", "noTarget")
            if not isinstance(operation.value, dict):
                raise ScimError(400, f"{op}: without a path, the value is an object of attributes.", "invalidValue")
            for key, value in operation.value.items():
                members = _apply(op, key, None, value, members, role=role, base_url=base_url)
            continue
        binding = operation.path.resolve()
        if binding is None:
            continue  # an attribute the Group schema does not declare: ignored, as everywhere in SCIM here
        members = _apply(
            op,
            _scim_name(binding),
            (operation.path, binding),
            operation.value,
            members,
            role=role,
            base_url=base_url,
        )
    return members


def _scim_name(binding) -> str:
    name = binding.model._scim_name(binding.field_name)
    if binding.sub_field_name is not None:
        name += "." + binding.field_type._scim_name(binding.sub_field_name)
    return name


def _apply(op, key: str, parsed, value, members: set[str], *, role: str, base_url: str) -> set[str]:
    path, binding = parsed if parsed is not None else (None, None)
    name = key.split("[", 1)[0].lower()
    attribute = name.split(".", 1)[0]
    if attribute in ("schemas", "meta") and parsed is None:
        return members  # a path-less value may echo the resource's own bookkeeping
    if attribute == "displayname":
        if op == "remove":
            raise ScimError(400, "displayName: required; a group is named after its role.", "mutability")
        _check_display_name(value, role)
        return members
    if attribute == "externalid":
        if op != "remove":
            _refuse_external_id(value)
        return members
    if attribute == "id":
        if op == "remove" or value != role:
            raise ScimError(400, "id: set by the service (the role's name); it can't be changed.", "mutability")
        return members
    if attribute == "meta":
        raise ScimError(400, "meta: read-only.", "mutability")
    if attribute != "members":
        return members  # not declared by the Group schema
    if "." in name or (binding is not None and binding.sub_field_name is not None):
        raise ScimError(
            400,
            f"{key}: a member's sub-attributes are set by the service; add or remove the member as a whole.",
            "mutability",
        )
    value_filter = path.value_filter if path is not None else None
    if parsed is None and "[" in key:
        raise ScimError(400, f"{key}: a filtered path goes in the operation's path, not in its value.", "invalidPath")
    if value_filter is not None:
        if op != "remove":
            raise ScimError(
                400, f"{path}: a member filter selects members to remove; add members by value.", "invalidPath"
            )
        return members - _filtered_ids(value_filter)
    if op == "remove" and value is None:
        return set()
    items = value if isinstance(value, list) else [value]
    ids = {member_id(item, base_url=base_url) for item in items}
    if op == "add":
        return members | ids
    if op == "replace":
        return ids
    return members - ids  # remove with a value: the members it lists (Entra ID's form)


def member_id(item, *, base_url: str) -> str:
    """The user id of one member value object, after checking what else it says about the member."""
    if not isinstance(item, dict):
        raise ScimError(400, "members: each member is an object with a value (the user's id).", "invalidValue")
    fields = {key.lower(): value for key, value in item.items()}
    value = fields.get("value")
    if not isinstance(value, str) or not value.strip():
        raise ScimError(400, "members.value: each member needs the user's id as its value.", "invalidValue")
    value = _canonical_id(value.strip())
    ref = fields.get("$ref")
    if ref is not None and not _is_user_uri(ref, value, base_url):
        raise ScimError(400, f"members.$ref: send null or the member's URI ({base_url}/Users/{value}).", "invalidValue")
    kind = fields.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() != "user"):
        raise ScimError(400, "members.type: only users are members of these groups (type User).", "invalidValue")
    return value


def _canonical_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value  # not a user id: reported as an unknown member where it matters


def _is_user_uri(ref, value: str, base_url: str) -> bool:
    if not isinstance(ref, str):
        return False
    users_path = urlsplit(base_url).path.rstrip("/") + "/Users/"
    parts = urlsplit(ref)
    path = parts.path.rstrip("/")
    if parts.scheme or parts.netloc or path.startswith("/"):
        if parts.scheme and parts.scheme not in ("http", "https"):
            return False
        prefix = users_path
    else:
        prefix = "Users/"  # relative to the service's base URL
    if parts.query or parts.fragment or not path.startswith(prefix):
        return False
    return _canonical_id(path[len(prefix) :]) == value


def _filtered_ids(node) -> set[str]:
    """The ids a `members[value eq "..." or value eq "..."]` filter names; other filters are refused."""
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_ else (node,)
    ids = set()
    for term in terms:
        if not (
            isinstance(term, Comparison)
            and term.op == CompareOperator.eq
            and isinstance(term.attr_path, AttrPath)
            and term.attr_path.attr.lower() == "value"
            and term.attr_path.sub_attr is None
            and isinstance(term.value, str)
        ):
            raise ScimError(
                400, f"members[{node}]: only value eq filters (joined by or) select members.", "invalidFilter"
            )
        ids.add(_canonical_id(term.value.strip()))
    return ids


def _check_display_name(value, role: str) -> None:
    if value is not None and value != role:
        raise ScimError(501, f"Renaming a group: the groups are the service's roles; {role} keeps its name.")


def _refuse_external_id(value) -> None:
    if value not in (None, ""):
        raise ScimError(400, "externalId: the groups are the service's roles and keep no externalId.", "mutability")

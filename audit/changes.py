"""What an audit event's `changes` holds, built one way everywhere: {field: {"from": old, "to": new}}.

`snapshot` reads the fields of an instance as JSON values; `changes_between` keeps the fields whose
value changed (None and "" count as the same "empty"). `save_with_history` saves through save(), so
django-simple-history records the change with the actor in it.
"""

import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from audit.context import Actor

REASON_MAX_LENGTH = 500


def snapshot(instance, fields) -> dict:
    if instance is None:
        return {}
    return {field: jsonable(getattr(instance, field)) for field in fields}


def jsonable(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value


def changes_between(
    before: dict, after: dict, *, keys=None, rename: dict | None = None, render=None, blank_is_empty: bool = True
) -> dict:
    """The fields of `after` (or only `keys`) whose value differs from `before`. `rename` maps a field
    to the name the event shows; `render(field, value)` masks or shapes a value once compared;
    `blank_is_empty=False` tells None from "" (a value the event must show exactly)."""
    rename = rename or {}
    changes = {}
    for field in after if keys is None else keys:
        old, new = before.get(field), after.get(field)
        if old != new and not (blank_is_empty and old in (None, "") and new in (None, "")):
            if render is not None:
                old, new = render(field, old), render(field, new)
            changes[rename.get(field, field)] = {"from": old, "to": new}
    return changes


def save_with_history(instance, actor: Actor) -> None:
    # django-simple-history: the staff member as history_user, every actor in the change reason.
    # Set explicitly: otherwise the history middleware would pick up the API principal.
    instance._history_user = get_user_model()(pk=actor.id) if actor.type == Actor.STAFF else None
    instance._change_reason = f"{actor.type}:{actor.id or actor.name}"
    # A new row whose primary key is already set (ProviderDetails: the user's) would try an UPDATE
    # first under a plain save(); inserting straight away saves that query.
    instance.save(force_insert=instance._state.adding)


def validated_reason(reason) -> str:
    """The optional free-text reason of a disable or a deactivation, as the audit event keeps it."""
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise ValidationError({"reason": [ValidationError("Must be a string.", code="invalid")]})
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError({"reason": [ValidationError(
            f"The reason may be at most {REASON_MAX_LENGTH} characters (it has {len(reason)}).",
            code="max_length",
        )]})
    return reason

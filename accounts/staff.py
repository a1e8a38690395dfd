"""Platform staff and their privileges: who may change them, and the audit trail of every change.

Staff accounts, groups and permissions are managed by superusers only. A staff member who is not a
superuser, whatever permissions they hold, may change their own name and nothing else here: not
another staff member, not their own e-mail, active flag, password (that is /admin/password_change/,
which asks for the old one), groups, permissions or superuser flag, and no group's permissions.
The admin's pages ask `may_manage_staff` to decide what to offer; these services enforce it again,
whatever the page sent.

Every change of a staff member's privileges (is_staff, is_superuser, is_active, groups, permissions)
or of how they sign in (e-mail, password), and every change of a group's permissions, writes
`staff.privileges_changed` in the change's transaction. Staff belong to no organization, so the
event has none.
"""

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.models import User
from audit.changes import changes_between
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record

# What a staff member who is not a superuser may change, and only on their own account.
SELF_EDITABLE_FIELDS = frozenset({"given_name", "family_name"})
PRIVILEGE_KEYS = ("is_staff", "is_superuser", "is_active", "groups", "permissions")
# The stored columns compared to find out what a save would change (m2m are compared apart).
_COMPARED_FIELDS = ("email", "given_name", "family_name", "status", "is_staff", "is_superuser", "password")
# A staff member who did not exist yet held nothing.
_NO_PRIVILEGES = {"is_staff": False, "is_superuser": False, "is_active": False, "groups": [], "permissions": []}


def may_manage_staff(actor) -> bool:
    """Adding staff, changing another staff member, passwords, groups, permissions: superusers only."""
    return bool(actor is not None and actor.is_active and actor.is_staff and actor.is_superuser)


def may_edit_own_name(actor, member) -> bool:
    return bool(actor is not None and member is not None and actor.is_active and actor.pk == member.pk)


def _permissions_of(queryset) -> list[str]:
    """Permissions as app_label.codename, sorted: the spelling the audit trail uses."""
    rows = queryset.values_list("content_type__app_label", "codename")
    return sorted(f"{app_label}.{codename}" for app_label, codename in rows)


def permission_names(permissions) -> list[str]:
    return _permissions_of(Permission.objects.filter(pk__in=[permission.pk for permission in permissions]))


def staff_privileges(member: User) -> dict:
    """A stored staff member's privileges, read from the database."""
    return {
        "is_staff": member.is_staff,
        "is_superuser": member.is_superuser,
        "is_active": member.is_active,
        "groups": sorted(member.groups.values_list("name", flat=True)),
        "permissions": _permissions_of(member.user_permissions.all()),
    }


def _refuse(message: str):
    raise PermissionDenied(message)


def staff_member_save(*, actor: User, member: User, groups=None, permissions=None) -> User:
    """Create or change a platform staff member. `member` carries the new values (the admin's form
    put them there); the stored row, if any, is what they change. `groups` and `permissions`, when
    given, replace the member's. Refused (PermissionDenied, nothing written) unless the actor is a
    superuser, or it is the actor's own account and only their name changes."""
    with transaction.atomic():
        stored = User.objects.select_for_update().filter(pk=member.pk).first() if member.pk else None
        creating = stored is None
        if stored is not None and (stored.organization_id is not None or not stored.is_staff):
            _refuse("Only platform staff are managed here.")
        before = _NO_PRIVILEGES if creating else staff_privileges(stored)
        wanted_groups = None if groups is None else sorted(group.name for group in groups)
        wanted_permissions = None if permissions is None else permission_names(permissions)

        if not may_manage_staff(actor):
            if creating or not may_edit_own_name(actor, stored):
                _refuse("Only a superuser manages other staff members.")
            changed = {name for name in _COMPARED_FIELDS if getattr(stored, name) != getattr(member, name)}
            if wanted_groups is not None and wanted_groups != before["groups"]:
                changed.add("groups")
            if wanted_permissions is not None and wanted_permissions != before["permissions"]:
                changed.add("user_permissions")
            if changed - SELF_EDITABLE_FIELDS:
                _refuse("Only a superuser changes a staff member's e-mail, password, status or privileges.")

        member.is_staff = True
        member.organization = None
        member.full_clean(exclude=["password"])
        member.save()
        if groups is not None:
            member.groups.set(groups)
        if permissions is not None:
            member.user_permissions.set(permissions)

        after = staff_privileges(member)
        changes = changes_between(before, after, keys=PRIVILEGE_KEYS, blank_is_empty=False)
        if not creating and stored.email != member.email:
            # Whoever holds the new address signs in as this member: as privileged as a new password.
            changes["email"] = {"from": stored.email, "to": member.email}
        if changes:
            audit_event_record(
                action=AuditEvent.Action.STAFF_PRIVILEGES_CHANGED,
                actor=Actor.staff(actor),
                organization_id=None,
                user_id=member.pk,
                changes=changes,
            )
    return member


def ensure_may_set_password(*, actor: User) -> None:
    """Setting another's password (the admin's password page, no old password asked): superusers only,
    their own included; everyone changes their own through /admin/password_change/."""
    if not may_manage_staff(actor):
        _refuse("Only a superuser sets a staff member's password.")


def _locked_staff_member(member: User) -> User:
    """The member's row, locked for the change; refused unless it is platform staff."""
    stored = User.objects.select_for_update().filter(pk=member.pk).first()
    if stored is None or stored.organization_id is not None or not stored.is_staff:
        _refuse("Only platform staff are managed here.")
    return stored


def _password_change_record(*, actor: User, member: User, change: str) -> None:
    audit_event_record(
        action=AuditEvent.Action.STAFF_PRIVILEGES_CHANGED,
        actor=Actor.staff(actor),
        organization_id=None,
        user_id=member.pk,
        changes={"password": change},
    )


def staff_password_set(*, actor: User, member: User, password: str | None) -> User:
    """Set a staff member's password (None: no password sign-in at all); superusers only. The old
    password is not asked, so whoever does it could sign in as the member: it is recorded, without
    the password."""
    ensure_may_set_password(actor=actor)
    with transaction.atomic():
        stored = _locked_staff_member(member)
        if password is None:
            stored.set_unusable_password()
        else:
            stored.set_password(password)
        stored.save(update_fields=["password"])
        _password_change_record(actor=actor, member=stored, change="set" if password is not None else "removed")
    return stored


def staff_own_password_change(*, member: User, password: str) -> User:
    """A staff member changing their own password (/admin/password_change/, which asked for the old
    one). Recorded like any change of how a staff member signs in. The password is set on `member`
    itself, so the caller's session hash follows it."""
    with transaction.atomic():
        _locked_staff_member(member)
        member.set_password(password)
        member.save(update_fields=["password"])
        _password_change_record(actor=member, member=member, change="changed")
    return member


def group_save(*, actor: User, group: Group, permissions=None) -> Group:
    """Create or change a group (name and permissions); superusers only. A change of the group's
    permissions changes the privileges of everyone in it, so it is recorded naming the group."""
    if not may_manage_staff(actor):
        _refuse("Only a superuser manages groups.")
    with transaction.atomic():
        stored = Group.objects.select_for_update().filter(pk=group.pk).first() if group.pk else None
        before_name = stored.name if stored is not None else None
        before_permissions = _permissions_of(stored.permissions.all()) if stored is not None else []
        group.full_clean()
        group.save()
        if permissions is not None:
            group.permissions.set(permissions)
        after_permissions = _permissions_of(group.permissions.all())
        changes = {}
        if stored is not None and before_name != group.name:
            changes["name"] = {"from": before_name, "to": group.name}
        if before_permissions != after_permissions:
            changes["permissions"] = {"from": before_permissions, "to": after_permissions}
        if changes:
            _record_group_change(actor=actor, group=group, changes=changes)
    return group


def group_delete(*, actor: User, group: Group) -> None:
    """Delete a group; its members lose its permissions, which is recorded like any other change."""
    if not may_manage_staff(actor):
        _refuse("Only a superuser manages groups.")
    with transaction.atomic():
        permissions = _permissions_of(group.permissions.all())
        members = sorted(group.user_set.values_list("email", flat=True))
        changes = {"deleted": {"from": False, "to": True}, "members": members}
        if permissions:
            changes["permissions"] = {"from": permissions, "to": []}
        _record_group_change(actor=actor, group=group, changes=changes)
        group.delete()


def _record_group_change(*, actor, group, changes):
    audit_event_record(
        action=AuditEvent.Action.STAFF_PRIVILEGES_CHANGED,
        actor=Actor.staff(actor),
        organization_id=None,
        user_id=None,
        changes={"group": group.name, **changes},
    )

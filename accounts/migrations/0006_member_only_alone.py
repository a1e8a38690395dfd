"""Roles stored as ["admin", "member"] become ["admin"]: `member` appears only alone (roles.normalize_roles).

Rows are rewritten with a plain UPDATE (no history row: the access they grant is unchanged, only
its spelling). Historical rows keep what was written at the time.
"""

from django.db import migrations

MEMBER = "member"


def _normalized(roles):
    # accounts.roles.normalize_roles as of this migration (a migration must not follow later edits).
    unique = sorted(set(roles))
    if len(unique) > 1 and MEMBER in unique:
        unique.remove(MEMBER)
    return unique


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    users = User.objects.filter(roles__icontains=f'"{MEMBER}"').only("pk", "roles")
    for user in users.iterator(chunk_size=2000):
        if not isinstance(user.roles, list):
            continue
        roles = _normalized(user.roles)
        if roles != user.roles:
            User.objects.filter(pk=user.pk).update(roles=roles)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_email_ascii_and_access_expiry"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]

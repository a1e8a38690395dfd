"""The outbox machinery, once: claim due rows with a lease, renew it, finish or give rows back.

A queue of side effects is a plain table (Cognito sync tasks, webhook deliveries); both claim,
renew, finish and release through this one class. Each row has a lease (`claimed_until`) and the
claimant's `claim_token`. A worker claims due rows with
SELECT ... FOR UPDATE SKIP LOCKED (concurrent workers skip each other's rows) and stamps them
with one token and a lease; nobody takes a row whose lease is live, so no two workers do one
row's work at once, and a killed worker's rows come back when the lease lapses. Every result is
written only under the claimant's token (`finish`), so a worker that outlived its lease can't
overwrite the new holder's outcome.

Knows no app: give it the model, the lease length and what "due" means for that table. A queue
whose rows wait for their next attempt declares them as a LeasedRow.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, models, router, transaction
from django.db.models import Model, Q
from django.utils import timezone


class LeasedRow(models.Model):
    """The columns an Outbox claims by: when a row is next due, and the lease of whoever holds it.

    While a worker's lease (`claimed_until`) runs, no other worker takes the row; if the worker dies,
    the lease lapses and the row is due again. `claim_token` names the holder."""

    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Outbox:
    model: type[Model]
    lease: timedelta
    until_field: str = "claimed_until"
    token_field: str = "claim_token"  # noqa: S105 (a column name)

    def unclaimed(self, now) -> Q:
        """Rows nobody holds: never claimed, given back, or their lease has lapsed."""
        return Q(**{f"{self.until_field}__isnull": True}) | Q(**{f"{self.until_field}__lt": now})

    def claim_due(self, due: Q, *, order_by=("pk",), limit: int = 50) -> tuple[uuid.UUID, list]:
        """Claim up to `limit` rows matching `due` that nobody holds. Returns (token, pks)."""
        now = timezone.now()
        token = uuid.uuid4()
        with transaction.atomic():
            pks = list(
                # of=self: `due` may join other tables (an endpoint's status); lock only the queue's rows.
                self.model.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(due, self.unclaimed(now))
                .order_by(*order_by)
                .values_list("pk", flat=True)[:limit]
            )
            if pks:
                self.model.objects.filter(pk__in=pks).update(
                    **{self.until_field: now + self.lease, self.token_field: token}
                )
        return token, pks

    def claim_one(self, pk, due: Q) -> uuid.UUID | None:
        """Claim one row by a conditional UPDATE (no lock wait): its token, or None if not due or held."""
        now = timezone.now()
        token = uuid.uuid4()
        claimed = self.model.objects.filter(due, self.unclaimed(now), pk=pk).update(
            **{self.until_field: now + self.lease, self.token_field: token}
        )
        return token if claimed else None

    def claim_one_returning(self, pk, fields: tuple[str, ...], **due) -> tuple[uuid.UUID, tuple] | None:
        """claim_one, reading the claimed row's `fields` in the same statement (UPDATE ... RETURNING):
        one round trip where a claim and a read would take two. `due` is equality on fields.
        (token, values), or None if not due or held."""
        connection = connections[router.db_for_write(self.model)]
        quote = connection.ops.quote_name
        opts = self.model._meta
        now = timezone.now()
        token = uuid.uuid4()
        until, token_field = opts.get_field(self.until_field), opts.get_field(self.token_field)
        conditions = [(opts.pk, pk), *((opts.get_field(name), value) for name, value in due.items())]
        returned = [opts.get_field(name) for name in fields]
        # Names from the model's _meta; every value is a parameter.
        sql = (
            f"UPDATE {quote(opts.db_table)} SET {quote(until.column)} = %s, {quote(token_field.column)} = %s "  # noqa: S608
            f"WHERE {' AND '.join(f'{quote(field.column)} = %s' for field, _ in conditions)} "
            f"AND ({quote(until.column)} IS NULL OR {quote(until.column)} < %s) "
            f"RETURNING {', '.join(quote(field.column) for field in returned)}"
        )
        params = [
            until.get_db_prep_value(now + self.lease, connection),
            token_field.get_db_prep_value(token, connection),
            *(field.get_db_prep_value(value, connection) for field, value in conditions),
            until.get_db_prep_value(now, connection),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return token, tuple(
            field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
            for field, value in zip(returned, row, strict=True)
        )

    def renew(self, pk, token) -> bool:
        """Right before doing a row's work: extend the lease. False: the lease lapsed and another holds it."""
        return bool(
            self.model.objects.filter(pk=pk, **{self.token_field: token}).update(
                **{self.until_field: timezone.now() + self.lease}
            )
        )

    def renew_all(self, pks, token) -> set:
        """Extend the lease of several claimed rows at once: the pks still ours (the others lapsed)."""
        held = self.model.objects.filter(pk__in=list(pks), **{self.token_field: token})
        with transaction.atomic():
            still = set(held.select_for_update().values_list("pk", flat=True))
            held.update(**{self.until_field: timezone.now() + self.lease})
        return still

    def finish(self, pk, token, *, where: Q | None = None, **fields) -> bool:
        """Write the outcome and drop the lease, only while we still hold it (and `where` holds)."""
        held = self.model.objects.filter(pk=pk, **{self.token_field: token})
        if where is not None:
            held = held.filter(where)
        return bool(held.update(**fields, **{self.until_field: None, self.token_field: None}))

    def release(self, pks, token) -> int:
        """Give back claimed rows whose work was not started (a stopping worker): due again at once."""
        return self.model.objects.filter(pk__in=list(pks), **{self.token_field: token}).update(
            **{self.until_field: None, self.token_field: None}
        )

"""Tables written once and never changed (the audit trail, the register log): the ORM refuses an
update or a delete of their rows, whether of one instance or of a queryset."""

from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(self.model.append_only_refusal)

    def delete(self):
        raise TypeError(self.model.append_only_refusal)


class AppendOnlyModel(models.Model):
    append_only_refusal = "These rows are append-only."

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(self.append_only_refusal)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(self.append_only_refusal)

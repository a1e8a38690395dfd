"""django-simple-history's `Model.history` manager, built once per model.

Its descriptor builds a new manager class (Manager.from_queryset, which walks the queryset's
members with inspect) on every access, and every history row a save writes reads it: on a create,
with two history rows, that costs more CPU than either INSERT. The class depends only on the
descriptor's manager and queryset classes, so a subclass of the library's descriptor builds it
once; the manager instance stays per access. The library offers no option for this, so each
tracked model's descriptor is replaced by the subclass, built from the same public arguments.
"""

from django.apps import apps
from simple_history.manager import HistoryDescriptor


class HistoryDescriptorBuiltOnce(HistoryDescriptor):
    def __get__(self, instance, owner):
        manager_class = self.__dict__.get("_manager_with_queryset")
        if manager_class is None:
            manager_class = self._manager_with_queryset = self.manager_class.from_queryset(self.queryset_class)
        return manager_class(self.model, instance)


def build_history_managers_once() -> None:
    for model in apps.get_models():
        name = getattr(model._meta, "simple_history_manager_attribute", None)
        descriptor = model.__dict__.get(name) if name else None
        if type(descriptor) is HistoryDescriptor:
            setattr(model, name, HistoryDescriptorBuiltOnce(
                descriptor.model, manager=descriptor.manager_class, queryset=descriptor.queryset_class
            ))

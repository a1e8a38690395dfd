"""django-simple-history's `Model.history` manager, built once per model.

Its descriptor builds a new manager class (Manager.from_queryset, which walks the queryset's
members with inspect) on every access, and every history row a save writes reads it: on a create,
with two history rows, that was more CPU than either INSERT. The class it builds depends only on
the descriptor, so it is built once and reused; the manager instance stays per access.
"""

from simple_history.manager import HistoryDescriptor


def _history_manager(self, instance, owner):
    manager_class = self.__dict__.get("_manager_with_queryset")
    if manager_class is None:
        manager_class = self.manager_class.from_queryset(self.queryset_class)
        self._manager_with_queryset = manager_class
    return manager_class(self.model, instance)


def build_history_managers_once() -> None:
    HistoryDescriptor.__get__ = _history_manager

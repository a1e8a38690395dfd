"""Every history-tracked model's `history` manager class is built once, not on every access, and
the manager still reads the model's history."""

import pytest
from django.apps import apps

from accounts.models import User
from audit.history import HistoryDescriptorBuiltOnce


def test_every_tracked_model_builds_its_history_manager_class_once():
    tracked = [model for model in apps.get_models() if getattr(model._meta, "simple_history_manager_attribute", None)]
    assert {"User", "ProviderDetails", "Organization", "ApiClient"} <= {model.__name__ for model in tracked}
    for model in tracked:
        name = model._meta.simple_history_manager_attribute
        assert type(model.__dict__[name]) is HistoryDescriptorBuiltOnce, model
        assert type(getattr(model, name)) is type(getattr(model, name)), model


@pytest.mark.django_db
def test_the_history_manager_reads_a_users_history(alice):
    assert alice.history.count() >= 1
    assert User.history.filter(id=alice.pk).exists()

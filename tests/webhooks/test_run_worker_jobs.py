"""run_worker carries the webhook deliveries and the access expiry too: one process for every
background job (contract, "The worker")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from worker.jobs import JOBS
from worker.runner import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_runs_every_background_job():
    assert [job.name for job in JOBS] == [
        "heartbeat",
        "cognito_sync",
        "expired_tokens",
        "expired_idempotency_keys",
        "webhook_delivery",
        "access_expiry",
        "webhook_retention",
        "hi_verification",
    ]
    assert {job.name: job.interval for job in JOBS}["access_expiry"] <= 60  # "within a minute"


def test_worker_passes_disable_expired_access_and_deliver_its_events(organization, endpoint, receiver):
    user = services.user_create(
        organization=organization, actor=Actor.system("test"), email="locum@alice.example",
        given_name="Lou", family_name="Cum", roles=["rx_reader"],
    )
    # The API refuses a past expiry; a date that has since passed is what the worker finds.
    User.objects.filter(pk=user.pk).update(access_expires_at=timezone.now() - timedelta(seconds=1))

    worker = Worker()
    worker.run(once=True)  # delivers user.created; disables the expired user
    worker.run(once=True)  # delivers user.disabled

    user.refresh_from_db()
    assert user.is_disabled
    event = AuditEvent.objects.get(user=user, action="user.disabled")
    assert (event.actor_type, event.actor_name) == ("system", "access expiry")
    assert receiver.types() == ["user.created", "user.disabled"]
    assert worker.handled["access_expiry"] == 1
    assert worker.handled["webhook_delivery"] == 2

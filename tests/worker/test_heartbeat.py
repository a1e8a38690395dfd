"""The worker's heartbeat: each loop writes it, /healthz and the admin's index say when it is older
than a minute, so a stopped or stuck worker is seen."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import StaffFactory
from worker.heartbeat import heartbeat_record
from worker.models import WorkerHeartbeat
from worker.runner import Worker

pytestmark = pytest.mark.django_db


def _healthz_worker():
    response = Client().get("/healthz")
    assert response.status_code == 200  # a stale worker never takes the web process out of rotation
    return response.json()["worker"]


def test_a_worker_pass_writes_the_heartbeat_and_healthz_says_ok():
    assert _healthz_worker() == {"status": "never", "last_heartbeat_at": None}
    before = timezone.now()
    Worker().run(once=True)
    beat = WorkerHeartbeat.objects.get()
    assert beat.beat_at >= before
    worker = _healthz_worker()
    assert worker["status"] == "ok"
    assert dt.datetime.fromisoformat(worker["last_heartbeat_at"]) == beat.beat_at
    assert worker["last_heartbeat_at"].endswith("+00:00")


def test_a_heartbeat_older_than_a_minute_is_stale():
    heartbeat_record(now=timezone.now() - dt.timedelta(seconds=50))
    assert _healthz_worker()["status"] == "ok"
    heartbeat_record(now=timezone.now() - dt.timedelta(seconds=61))
    assert _healthz_worker()["status"] == "stale"
    assert WorkerHeartbeat.objects.count() == 1  # one row, rewritten


def test_the_admin_index_says_when_the_worker_is_stale_or_never_ran(client):
    client.force_login(StaffFactory(email="sam@platform.example"))
    page = client.get("/admin/").content.decode()
    assert 'id="worker-heartbeat"' in page and "No worker has run" in page
    heartbeat_record(now=timezone.now() - dt.timedelta(minutes=5))
    page = client.get("/admin/").content.decode()
    assert "Worker heartbeat is stale" in page
    heartbeat_record()
    page = client.get("/admin/").content.decode()
    assert "Worker heartbeat is stale" not in page and "No worker has run" not in page
    assert "Worker: last heartbeat" in page

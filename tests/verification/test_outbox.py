"""The register check is queued in the write's own transaction (the outbox): a write that commits
has its check on file even if nothing after the commit runs."""

import pytest
from django.utils import timezone

from accounts.models import ProviderDetails
from tests.verification.conftest import provider_of
from verification.models import RegisterCall, VerificationTask

pytestmark = pytest.mark.django_db


def test_a_committed_write_has_its_check_queued_though_nothing_after_the_commit_runs(
    hi_service, settings, practice_api, practice_users_url, django_capture_on_commit_callbacks
):
    settings.HI_VERIFICATION_REQUIRED = True
    # The test's transaction never commits: what the write left for after its commit (the inline
    # attempt) never runs, as when the process dies at the commit.
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        response = practice_api.post(practice_users_url, provider_of("active"), format="json")
    assert response.status_code == 201, response.content
    assert after_commit  # the inline attempt was left for after the commit
    user_id = response.json()["id"]
    assert ProviderDetails.objects.get(pk=user_id).verification_status == "pending"
    task = VerificationTask.objects.get(pk=user_id)
    assert task.priority == VerificationTask.Priority.CHANGE and task.next_attempt_at <= timezone.now()
    assert task.claimed_until is None  # due for any worker
    assert not RegisterCall.objects.exists()

"""Certificates: an expired one makes every request an error with the reason; their expiry is listed."""

from datetime import UTC, datetime, timedelta

from hi_service.client import certificate_expiry, reset_client
from tests.hi_service.helpers import ask, search_for


def test_an_expired_tls_client_certificate_is_an_error_with_the_reason(hi_service, settings):
    cert, key = hi_service.issue_client_certificate(name="expired tls client", expired=True)
    settings.HI_SERVICE_CLIENT_CERT, settings.HI_SERVICE_CLIENT_KEY = str(cert), str(key)
    reset_client()
    result = ask(search_for("active"))
    assert result.outcome == "error"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert result.reason == f"the HI Service TLS client certificate expired on {yesterday}"
    assert hi_service.received == []


def test_an_expired_signing_certificate_is_an_error_with_the_reason(hi_service, settings):
    cert, key = hi_service.issue_client_certificate(name="expired signing", expired=True)
    settings.HI_SERVICE_SIGNING_CERT, settings.HI_SERVICE_SIGNING_KEY = str(cert), str(key)
    reset_client()
    result = ask(search_for("active"))
    assert result.outcome == "error"
    assert result.reason.startswith("the HI Service signing certificate expired on ")


def test_a_missing_certificate_file_is_an_error_that_names_no_path(hi_service, settings):
    settings.HI_SERVICE_CLIENT_CERT = "/nonexistent/hi-client.pem"
    reset_client()
    result = ask(search_for("active"))
    assert result.outcome == "error"
    assert "can't be loaded" in result.reason and "/nonexistent" not in result.reason


def test_certificate_expiry_lists_the_client_and_signing_certificates(hi_service):
    listed = dict(certificate_expiry())
    assert set(listed) == {"HI Service TLS client certificate", "HI Service signing certificate"}
    for not_after in listed.values():
        assert not_after.tzinfo is not None
        assert timedelta(days=300) < not_after - datetime.now(UTC) < timedelta(days=366)


def test_certificate_expiry_lists_a_shared_pair_once(hi_service, settings):
    settings.HI_SERVICE_SIGNING_CERT = settings.HI_SERVICE_CLIENT_CERT
    settings.HI_SERVICE_SIGNING_KEY = settings.HI_SERVICE_CLIENT_KEY
    assert [label for label, _ in certificate_expiry()] == ["HI Service TLS client certificate"]


def test_the_client_pair_signs_when_no_signing_pair_is_set(hi_service, settings):
    settings.HI_SERVICE_SIGNING_CERT = ""
    settings.HI_SERVICE_SIGNING_KEY = ""
    reset_client()
    assert ask(search_for("active")).outcome == "found"


def test_certificate_expiry_is_empty_without_the_service(settings):
    settings.HI_SERVICE_URL = ""
    assert certificate_expiry() == []

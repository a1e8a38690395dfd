"""The API throttle's fallback key (a request with no API client) is the client address as
core.client_address counts it: X-Forwarded-For only behind DJANGO_TRUSTED_PROXY_COUNT proxies."""

from django.contrib.auth.models import AnonymousUser
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api.throttling import ApiClientRateThrottle


def _key(**meta) -> str:
    request = Request(APIRequestFactory().get("/v1/anything", **meta))
    request.user = AnonymousUser()
    return ApiClientRateThrottle().get_cache_key(request)


def test_forwarded_for_is_ignored_without_a_trusted_proxy():
    assert _key(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="10.1.1.1") == _key(
        REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="10.2.2.2"
    )
    assert _key(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="10.1.1.1").endswith("_198.51.100.7")


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_forwarded_for_is_honoured_behind_one_trusted_proxy():
    key = _key(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert key.endswith("_203.0.113.9")
    assert key == _key(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="5.6.7.8, 203.0.113.9")
    assert key != _key(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.10")

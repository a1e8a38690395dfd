"""Admin sign-in is limited per account (across addresses) and per client address (across accounts).
The address is the socket's unless DJANGO_TRUSTED_PROXY_COUNT says proxies forward it."""

import logging

import pytest
from django.core.cache import cache
from django.test import override_settings

from core.admin_security import LOCKED_OUT_MESSAGE, MAX_ACCOUNT_FAILURES, MAX_ADDRESS_FAILURES

pytestmark = pytest.mark.django_db

EMAIL = "sam@platform.example"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sign_in(client, staff):
    def attempt(password, *, username=EMAIL, address="198.51.100.7", forwarded=None):
        extra = {"REMOTE_ADDR": address}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)
        signed_in = "_auth_user_id" in client.session
        client.logout()
        return response, signed_in

    return attempt


def _locked(response) -> bool:
    return response.status_code == 200 and LOCKED_OUT_MESSAGE in response.text


def test_failures_on_one_account_from_many_addresses_lock_that_account(sign_in, caplog):
    typed = "my-actual-passphrase-typed-in-the-wrong-box"  # the username box may hold a password
    with caplog.at_level(logging.DEBUG):
        for n in range(MAX_ACCOUNT_FAILURES):
            response, _ = sign_in("wrong", username=typed, address=f"203.0.113.{n + 1}")
            assert not _locked(response)
    response, _ = sign_in("wrong", username=typed, address="192.0.2.200")
    assert _locked(response)
    assert typed not in caplog.text  # neither in a log line
    assert not any(typed in str(key) for key in cache._cache)  # nor in a cache key (locmem's store)

    for n in range(MAX_ACCOUNT_FAILURES):
        response, _ = sign_in("wrong", address=f"203.0.113.{n + 1}")
        assert not _locked(response)
    # Locked everywhere, even with the right password, and from an address never seen.
    response, signed_in = sign_in(PASSWORD, address="192.0.2.200")
    assert _locked(response) and not signed_in
    # Another account from one of those addresses is not affected.
    response, _ = sign_in("wrong", username="someone.else@platform.example", address="203.0.113.1")
    assert not _locked(response)


def test_failures_from_one_address_across_accounts_lock_that_address(sign_in):
    for n in range(MAX_ADDRESS_FAILURES):
        response, _ = sign_in("wrong", username=f"guess{n}@platform.example", address="198.51.100.66")
        assert not _locked(response)
    response, signed_in = sign_in(PASSWORD, address="198.51.100.66")
    assert _locked(response) and not signed_in
    # The account itself had no failure: from another address it signs in.
    response, signed_in = sign_in(PASSWORD, address="198.51.100.67")
    assert signed_in


def test_a_success_clears_the_accounts_count_not_the_addresss(sign_in, django_user_model):
    for _ in range(MAX_ACCOUNT_FAILURES - 1):
        sign_in("wrong")
    assert sign_in(PASSWORD)[1]
    for _ in range(MAX_ACCOUNT_FAILURES - 1):
        sign_in("wrong")
    assert sign_in(PASSWORD)[1]  # the success started the account's count again
    # The address has counted all eight failures: one valid account buys no more guesses elsewhere.
    for n in range(MAX_ADDRESS_FAILURES - 2 * (MAX_ACCOUNT_FAILURES - 1)):
        sign_in("wrong", username=f"guess{n}@platform.example")
    response, signed_in = sign_in(PASSWORD)
    assert _locked(response) and not signed_in


def test_forwarded_for_is_ignored_without_a_trusted_proxy(sign_in):
    """DJANGO_TRUSTED_PROXY_COUNT=0 (the default): the header is the client's own words."""
    for n in range(MAX_ADDRESS_FAILURES):
        sign_in("wrong", username=f"guess{n}@platform.example", address="198.51.100.66", forwarded=f"10.9.0.{n}")
    response, signed_in = sign_in(PASSWORD, address="198.51.100.66", forwarded="10.9.9.9")
    assert _locked(response) and not signed_in


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_forwarded_for_is_honoured_behind_one_trusted_proxy(sign_in):
    proxy = "10.0.0.2"  # every request arrives from the proxy's socket
    for n in range(MAX_ADDRESS_FAILURES):
        # What the client wrote itself (left) varies; what the proxy appended (right) is the address.
        sign_in("wrong", username=f"guess{n}@platform.example", address=proxy, forwarded=f"10.9.0.{n}, 203.0.113.9")
    response, signed_in = sign_in(PASSWORD, address=proxy, forwarded="203.0.113.9")
    assert _locked(response) and not signed_in
    # Another client through the same proxy is not locked out by the first one's failures.
    response, signed_in = sign_in(PASSWORD, address=proxy, forwarded="203.0.113.10")
    assert signed_in

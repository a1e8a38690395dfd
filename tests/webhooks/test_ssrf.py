"""Where webhooks may go: https:// to public addresses only, at registration and at every delivery."""

import threading
import time

import pytest

from webhooks import targets
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .conftest import deliver_all

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    return settings


@pytest.fixture
def dns(monkeypatch):
    """dns["host"] = [addresses]: what the resolver answers (anything else resolves for real)."""
    answers = {}
    real = targets.resolve

    def resolve(host, port):
        return answers[host] if host in answers else real(host, port)

    monkeypatch.setattr(targets, "resolve", resolve)
    return answers


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "http://hooks.example.org/hooks",  # plain http
        "https://10.1.2.3/hooks",
        "https://172.16.0.1/hooks",
        "https://192.168.1.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped IPv6
        "https://[::ffff:169.254.169.254]/hooks",
        "https://[fe80::1]/hooks",
        "https://[fc00::1]/hooks",
        "https://[64:ff9b::a9fe:a9fe]/hooks",  # NAT64 of the metadata address
        "https://0.0.0.0/hooks",
        "https://224.0.0.1/hooks",
        "https://100.64.0.1/hooks",  # carrier-grade NAT
        "https://[fec0::1]/hooks",  # site-local IPv6
        "https://198.18.0.1/hooks",  # benchmarking
        "https://[2001:db8::1]/hooks",  # documentation
        "https://site-local.example/hooks",  # a host name resolving to site-local IPv6
        "https://localhost/hooks",  # a host name resolving to loopback
        "https://rebind.example/hooks",  # one public and one private answer
        "https://user:pass@hooks.example.org/hooks",
        "ftp://hooks.example.org/",
        "not a url",
    ],
)
def test_registration_refuses_non_public_targets(strict, dns, webhooks_api, endpoints_url, url):
    dns["rebind.example"] = [PUBLIC, "127.0.0.1"]
    dns["hooks.example.org"] = [PUBLIC]
    dns["site-local.example"] = ["fec0::1"]
    response = webhooks_api.post(endpoints_url, {"url": url, "events": ["*"]}, format="json")
    assert response.status_code == 400, (url, response.content)
    body = response.json()
    assert body["code"] == "webhook_url_not_allowed"
    assert [e["field"] for e in body["errors"]] == ["url"]


def test_a_public_https_target_is_accepted(strict, dns, webhooks_api, endpoints_url):
    dns["hooks.example.org"] = [PUBLIC]
    response = webhooks_api.post(endpoints_url, {"url": "https://hooks.example.org/in", "events": ["*"]}, format="json")
    assert response.status_code == 201, response.content


def test_patching_the_url_is_checked_too(strict, dns, webhooks_api, endpoints_url):
    dns["hooks.example.org"] = [PUBLIC]
    created = webhooks_api.post(endpoints_url, {"url": "https://hooks.example.org/in", "events": ["*"]}, format="json")
    response = webhooks_api.patch(
        f"{endpoints_url}/{created.json()['id']}", {"url": "https://169.254.169.254/"}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "webhook_url_not_allowed"


def test_a_target_that_became_private_is_refused_at_delivery(strict, dns, make_endpoint, receiver, make_change):
    dns["hooks.example.org"] = [PUBLIC]
    make_endpoint("https://hooks.example.org/in")
    dns["hooks.example.org"] = ["127.0.0.1"]  # DNS now points at loopback (rebinding)
    make_change()
    deliver_all(rounds=1)
    attempt = WebhookAttempt.objects.get()
    assert not attempt.succeeded and attempt.status_code is None
    assert attempt.error.startswith("Target refused")
    assert receiver.requests == []


def test_delivery_connects_to_the_address_it_checked(dns, make_endpoint, receiver, make_change, monkeypatch):
    """The host is resolved once per attempt; the connection goes to that address, never a second lookup."""
    port = receiver.server.server_address[1]
    dns["hooks.example.test"] = ["127.0.0.1"]
    make_endpoint(f"http://hooks.example.test:{port}/in")
    lookups = []
    real = targets.resolve

    def counting(host, port):
        lookups.append(host)
        return real(host, port)

    monkeypatch.setattr(targets, "resolve", counting)
    make_change()
    deliver_all(rounds=1)
    assert lookups == ["hooks.example.test"]  # only the check resolved it: httpx connected to the IP
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{port}"


def test_redirects_are_not_followed(make_endpoint, receiver, make_change):
    make_endpoint(receiver.url)
    receiver.answer(302)
    make_change()
    deliver_all(rounds=1)
    assert [r.path for r in receiver.requests] == ["/hooks"]  # /elsewhere never asked for
    attempt = WebhookAttempt.objects.get()
    assert not attempt.succeeded and attempt.status_code == 302


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::1", False),  # 6to4 of loopback
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),  # the IPv6 metadata address
        ("ff02::1", False),
        ("240.0.0.1", False),
        # IPv4 special-purpose blocks Python calls global or merely not private
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("198.18.0.1", False),  # benchmarking
        ("192.0.0.8", False),  # IETF protocol assignments
        ("192.0.2.10", False),  # documentation
        ("192.88.99.1", False),  # 6to4 relay anycast
        ("192.31.196.1", False),  # AS112
        ("192.52.193.1", False),  # AMT
        ("192.175.48.1", False),  # AS112 direct delegation
        ("0.1.2.3", False),  # "this network"
        ("255.255.255.255", False),
        # IPv6 outside global unicast, or inside it but special-purpose
        ("fec0::1", False),  # site-local
        ("fe80::1%eth0", False),
        ("::", False),
        ("::10.0.0.1", False),  # IPv4-compatible (deprecated)
        ("100::1", False),  # discard-only
        ("5f00::1", False),  # SRv6 SIDs: reserved, outside 2000::/3
        ("2001:db8::1", False),  # documentation
        ("3fff::1", False),  # documentation (RFC 9637)
        ("2001:2::1", False),  # benchmarking
        ("2001:20::1", False),  # ORCHIDv2
        ("2001:4:112::1", False),  # AS112
        ("2620:4f:8000::1", False),  # AS112 direct delegation
        ("64:ff9b:1::1", False),  # local-use NAT64
        # IPv6 that carries an IPv4 address is judged by it
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo (client 10.0.0.1)
        ("2001:0:808:808:8000:63bf:3fff:fdd2", False),  # Teredo, even with a public server
        ("::ffff:100.64.0.1", False),
        ("::ffff:198.18.0.1", False),
        ("::ffff:7f00:1", False),
        ("2a00:1450:4001:80b::200e", True),
    ],
)
def test_is_public(address, public):
    assert targets.is_public(address) is public


@pytest.fixture
def hanging_dns(monkeypatch):
    """Names under .hang.example never resolve (the seam blocks until teardown releases it)."""
    release = threading.Event()
    real = targets.resolve

    def resolve(host, port):
        if host.endswith(".hang.example"):
            release.wait(30)
            raise OSError("released at teardown")
        return real(host, port)

    monkeypatch.setattr(targets, "resolve", resolve)
    yield
    release.set()
    for thread in threading.enumerate():
        if thread.name == "webhook-dns":
            thread.join(5)
    assert not [t for t in threading.enumerate() if t.name == "webhook-dns"]


def test_a_hanging_dns_lookup_is_a_failed_attempt_within_the_deadline(
    settings, hanging_dns, make_endpoint, receiver, make_change
):
    settings.WEBHOOK_DNS_TIMEOUT_SECONDS = 0.3
    endpoint, _ = make_endpoint(receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://receiver.hang.example/hooks")
    make_change()
    started = time.monotonic()
    assert deliver_all(rounds=1) == 1
    assert time.monotonic() - started < 1.5
    attempt = WebhookAttempt.objects.get()
    assert not attempt.succeeded and attempt.status_code is None
    assert attempt.error == "DNS resolution timed out after 0.3 s"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1  # retried on the schedule


def test_the_lookup_waits_no_longer_than_the_attempts_own_timeout(
    settings, hanging_dns, make_endpoint, receiver, make_change
):
    settings.WEBHOOK_DNS_TIMEOUT_SECONDS = 30
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.4
    endpoint, _ = make_endpoint(receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://receiver.hang.example/hooks")
    make_change()
    started = time.monotonic()
    deliver_all(rounds=1)
    assert time.monotonic() - started < 1.5
    assert WebhookAttempt.objects.get().error.startswith("DNS resolution timed out after 0.4")


def test_registration_refuses_a_host_that_does_not_resolve_in_time(
    settings, hanging_dns, webhooks_api, endpoints_url, staff_client, organization
):
    settings.WEBHOOK_DNS_TIMEOUT_SECONDS = 0.3
    started = time.monotonic()
    response = webhooks_api.post(
        endpoints_url, {"url": "https://hooks.hang.example/in", "events": ["*"]}, format="json"
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "webhook_url_not_allowed"
    assert [e["field"] for e in body["errors"]] == ["url"]
    assert "did not resolve within 0.3 s" in body["errors"][0]["message"]

    response = staff_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"organization": organization.pk, "url": "https://hooks.hang.example/in", "events": ["*"]},
    )
    assert response.status_code == 200 and "did not resolve within 0.3 s" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()

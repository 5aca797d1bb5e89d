"""Webhooks only to public addresses: the address rules, and refusal on every save path."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from alerts.models import Subscription
from alerts.services import save_subscription
from alerts.webhook_addresses import refusal, validate_webhook_url

pytestmark = pytest.mark.usefixtures("scoring")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "shared"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private or special-purpose"),  # documentation
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2001:db8::1", "private"),  # documentation
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, reason: str):
    assert reason in (refusal(ipaddress.ip_address(address)) or "")


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14"]
)
def test_public_addresses_are_accepted(address: str):
    assert refusal(ipaddress.ip_address(address)) is None


REFUSED_URLS = [
    ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://localhost:5432/", "localhost is this server itself"),
    ("http://app.localhost/", "app.localhost is this server itself"),
    ("http://10.0.0.5/hook", "10.0.0.5 is a private"),
    ("http://192.168.0.10/hook", "192.168.0.10 is a private"),
    ("http://[::1]:8000/hook", "::1 is a loopback address"),
    ("http://[fd00::5]/hook", "fd00::5 is a private"),
    ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is a loopback address"),
    ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
    ("http://intranet.example.org/hook", "intranet.example.org resolves to 192.168.4.4"),
    ("ftp://hooks.example.org/hook", "must start with https:// or http://"),
    ("https://user:secret@hooks.example.org/hook", "cannot carry a user name or password"),
]


@pytest.fixture(autouse=True)
def names(dns: dict[str, list[str]]) -> None:
    dns["hooks.example.org"] = ["93.184.215.14"]
    dns["intranet.example.org"] = ["93.184.215.14", "192.168.4.4"]


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_the_validator_refuses_non_public_targets_with_a_clear_error(url: str, message: str):
    with pytest.raises(ValidationError) as refused:
        validate_webhook_url(url)
    assert message in refused.value.messages[0]


def test_localhost_is_refused_however_it_is_spelled():
    for url in ("http://LOCALHOST./", "http://localhost.:80/", "http://Api.LocalHost/"):
        with pytest.raises(ValidationError, match="this server itself"):
            validate_webhook_url(url)


def test_public_urls_and_names_that_do_not_resolve_now_are_accepted():
    validate_webhook_url("https://hooks.example.org/hook")
    validate_webhook_url("https://93.184.215.14:8443/hook")
    validate_webhook_url("https://not-resolvable.example.org/hook")  # checked at each delivery
    validate_webhook_url("")


def test_the_setting_allows_named_hosts_addresses_and_networks(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["intranet.example.org", "10.0.0.0/8", "::1"]
    validate_webhook_url("http://intranet.example.org/hook")
    validate_webhook_url("http://10.20.30.40:8080/hook")
    validate_webhook_url("http://[::1]/hook")
    with pytest.raises(ValidationError):
        validate_webhook_url("http://192.168.0.10/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["*"]
    validate_webhook_url("http://localhost:8080/hook")
    with pytest.raises(ValidationError, match="user name or password"):
        validate_webhook_url("http://user:pw@localhost:8080/hook")


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS[:3])
def test_the_service_refuses_a_non_public_webhook(focal_point, url: str, message: str):
    with pytest.raises(ValidationError) as refused:
        save_subscription(
            subscription=Subscription(user=focal_point, all_countries=True, webhook_url=url),
            countries=[],
        )
    assert message in refused.value.message_dict["webhook_url"][0]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_the_subscription_form_refuses_a_non_public_webhook(
    client, focal_point, url: str, message: str
):
    client.force_login(focal_point)
    response = client.post(
        reverse("alerts:subscription_new"),
        {
            "all_countries": "on",
            "min_severity": "warning",
            "delivery": "immediate",
            "webhook_url": url,
            "active": "on",
        },
    )
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_the_api_refuses_a_non_public_webhook_as_a_field_error(focal_point, url: str, message: str):
    client = APIClient()
    client.force_authenticate(focal_point)
    response = client.post(
        "/api/v1/subscriptions/", {"all_countries": True, "webhook_url": url}, format="json"
    )
    assert response.status_code == 400
    assert message in response.json()["webhook_url"][0]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS[:3])
def test_the_admin_refuses_a_non_public_webhook(
    client, administrator, focal_point, url: str, message: str
):
    client.force_login(administrator)
    response = client.post(
        reverse("admin:alerts_subscription_add"),
        {
            "user": focal_point.pk,
            "all_countries": "on",
            "regions": "[]",
            "min_severity": "warning",
            "delivery": "immediate",
            "webhook_url": url,
            "active": "on",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_api_accepts_a_public_webhook(focal_point):
    client = APIClient()
    client.force_authenticate(focal_point)
    response = client.post(
        "/api/v1/subscriptions/",
        {"all_countries": True, "webhook_url": "https://hooks.example.org/hook"},
        format="json",
    )
    assert response.status_code == 201, response.json()

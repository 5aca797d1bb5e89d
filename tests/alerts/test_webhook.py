"""The signed JSON webhook, delivered to a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from alerts import services
from alerts.models import AlertEvent, Notification
from alerts.transports import SIGNATURE_HEADER
from tests.alerts.conftest import red_flags, subscribe

pytestmark = pytest.mark.usefixtures("scoring")
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)


@pytest.fixture
def receiver(settings):
    # The receiver is on loopback, which webhooks may reach only when allowed explicitly.
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    received: list[tuple[dict[str, str], bytes]] = []
    status: dict[str, Any] = {"code": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status["code"])
            if status.get("location"):
                self.send_header("Location", status["location"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, status
    server.shutdown()


def raise_red_flag() -> None:
    red_flags("SDN")


def test_the_webhook_posts_signed_json(receiver, focal_point):
    url, received, _ = receiver
    subscription = subscribe(focal_point, countries=("SDN",), webhook_url=url)
    raise_red_flag()
    assert services.dispatch_pending(now=NOW).sent == 2  # e-mail and webhook
    ((headers, body),) = received
    expected = hmac.new(subscription.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert (payload["country"], payload["rule"], payload["severity"]) == (
        "SDN",
        "red_flag",
        "critical",
    )
    assert payload["message_id"] == Notification.objects.get(channel="webhook").message_id


def test_a_webhook_answering_4xx_fails_at_once_and_5xx_retries(receiver, focal_point):
    url, _, status = receiver
    subscribe(focal_point, countries=("SDN",), webhook_url=url)
    raise_red_flag()
    status["code"] = 503
    result = services.dispatch_pending(now=NOW)
    assert (result.sent, result.retrying) == (1, 1)
    status["code"] = 404
    Notification.objects.filter(channel="webhook").update(next_attempt_at=NOW)
    assert services.dispatch_pending(now=NOW).failed == 1
    assert Notification.objects.get(channel="webhook").last_error == "HTTP 404 from webhook"


def webhook() -> Notification:
    return Notification.objects.get(channel="webhook")


def test_a_webhook_is_refused_at_send_time_when_its_host_now_resolves_to_loopback(
    receiver, focal_point, settings, dns
):
    # Saved while the name pointed to a public address; by delivery it points to the
    # loopback receiver (DNS rebinding). Nothing is posted, and the failure is visible.
    url, received, _ = receiver
    port = urlsplit(url).port
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = []  # nothing internal is allowed here
    dns["hooks.example.org"] = ["93.184.215.14"]
    subscribe(focal_point, countries=("SDN",), webhook_url=f"http://hooks.example.org:{port}/")
    dns["hooks.example.org"] = ["127.0.0.1"]
    raise_red_flag()
    result = services.dispatch_pending(now=NOW)
    assert (result.sent, result.failed) == (1, 1)  # the e-mail goes, the webhook does not
    assert received == []
    assert webhook().status == "failed"
    assert webhook().last_error == (
        "Webhook refused: hooks.example.org resolves to 127.0.0.1, a loopback address. "
        "Webhooks are only sent to public internet addresses; an administrator can allow an "
        "internal host with the WEBHOOK_ALLOW_PRIVATE_HOSTS setting."
    )
    failure = AlertEvent.objects.get(kind=AlertEvent.Kind.DELIVERY_FAILED)
    assert "loopback" in failure.message


def test_a_webhook_queued_to_a_private_address_before_the_rule_is_refused_when_sent(
    receiver, focal_point, settings
):
    url, received, _ = receiver
    subscribe(focal_point, countries=("SDN",), webhook_url=url)
    raise_red_flag()
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = []  # the deployment no longer allows it
    assert services.dispatch_pending(now=NOW).failed == 1
    assert received == []
    assert "127.0.0.1 is a loopback address" in webhook().last_error


def test_a_webhook_connects_to_the_address_that_was_checked(receiver, focal_point, settings, dns):
    # The system resolver knows nothing of this name: the POST can only have reached the
    # receiver through the address resolved and checked for the delivery.
    url, received, _ = receiver
    port = urlsplit(url).port
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = ["chat.internal"]
    dns["chat.internal"] = ["127.0.0.1"]
    subscribe(focal_point, countries=("SDN",), webhook_url=f"http://chat.internal:{port}/hook")
    raise_red_flag()
    assert services.dispatch_pending(now=NOW).sent == 2
    ((headers, _),) = received
    assert headers["host"] == f"chat.internal:{port}"


def test_a_webhook_redirect_is_not_followed(receiver, focal_point):
    url, received, status = receiver
    subscribe(focal_point, countries=("SDN",), webhook_url=url)
    raise_red_flag()
    status.update(code=302, location="http://169.254.169.254/latest/meta-data/")
    assert services.dispatch_pending(now=NOW).failed == 1
    assert len(received) == 1  # the first request only
    assert webhook().last_error == "HTTP 302 from webhook: redirects are not followed"

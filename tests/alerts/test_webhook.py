"""The signed JSON webhook, delivered to a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from alerts import services
from alerts.models import Notification
from alerts.transports import SIGNATURE_HEADER
from tests.alerts.conftest import red_flags, subscribe

pytestmark = pytest.mark.usefixtures("scoring")
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)


@pytest.fixture
def receiver():
    received: list[tuple[dict[str, str], bytes]] = []
    status = {"code": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status["code"])
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

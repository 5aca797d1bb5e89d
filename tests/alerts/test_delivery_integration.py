"""Alerts end to end on real services: a Celery worker on Redis and an SMTP server on loopback."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from alerts import services
from alerts.models import Alert, AlertEvent, Notification
from alerts.transports import site_url
from indicators.models import Observation
from indicators.services import record_observations
from tests.alerts.conftest import subscribe
from tests.conftest import ROOT, SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("scoring")]


@pytest.fixture
def celery_worker_env(smtp_server: SmtpSink) -> dict[str, str]:
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "SITE_URL": "http://testserver",
        "DEFAULT_FROM_EMAIL": "alerts@earlywarning.test",
    }


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    pytest.fail("timed out")


def test_a_red_flag_reaches_the_focal_point_by_email_and_is_acknowledged_once(
    celery_worker, smtp_server, focal_point, analyst, client
):
    subscribe(focal_point, countries=("MMR",))
    started = time.monotonic()
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "10.1",
                "observed_on": datetime.now(tz=UTC).date().isoformat(),
                "value": 1.0,
                "source": "UN fact-finding mission",
                "source_url": "https://www.ohchr.org/",
            }
        ],
        recorded_by=analyst,
    )
    received_at, message = wait_for(lambda: smtp_server.messages and smtp_server.messages[0])
    latency = received_at - started
    (ROOT / "artifacts").mkdir(exist_ok=True)
    Path(ROOT / "artifacts" / "red-flag-email-latency.txt").write_text(
        f"red-flag observation saved -> e-mail accepted by SMTP: {latency:.3f} s\n"
    )
    print(f"\nred-flag observation saved -> e-mail accepted by SMTP: {latency:.3f} s")

    # The red flag waited for the run its observation caused, and came with it.
    alert = Alert.objects.get(rule="red_flag")
    notification = Notification.objects.get(alert_message__alerts=alert)
    assert (alert.rule, alert.severity, alert.crime_type) == ("red_flag", "critical", "genocide")
    assert Notification.objects.count() == 1
    assert message["Subject"].strip().startswith("[Critical] Myanmar: ")
    assert message["To"] == focal_point.email
    assert message["Message-ID"] == notification.message_id
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Red flag: 10.1 " in body
    assert "assessed high (3 of 3) by UN fact-finding mission" in body
    assert "Country page: http://testserver/countries/MMR/" in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Acknowledge</a>" in html
    wait_for(
        lambda: Notification.objects.filter(pk=notification.pk, sent_at__isnull=False).exists()
    )

    ack_url = re.search(r"http://testserver(/alerts/ack/\S+/)", body).group(1)
    assert client.get(ack_url).status_code == 200  # a confirmation page; GET changes nothing
    assert Alert.objects.get().status == "open"
    confirmed = client.post(ack_url)
    assert confirmed.status_code == 200
    assert b"Acknowledged" in confirmed.content
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", focal_point)
    assert set(Alert.objects.values_list("status", flat=True)) == {"acknowledged"}
    replay = client.post(ack_url)
    assert replay.status_code == 400
    assert b"already been used" in replay.content


def test_smtp_down_for_an_hour_retries_shows_the_error_and_sends_once_when_back(
    focal_point, administrator, settings, client
):
    sink = SmtpSink()  # not started yet: the port refuses connections
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    subscribe(focal_point, countries=("MMR", "SDN"))
    now = datetime.now(tz=UTC)
    record_observations(
        rows=[
            {
                "country": c,
                "indicator": "12.1",
                "observed_on": now.date().isoformat(),
                "value": 1.0,
                "source": "analyst",
            }
            for c in ("MMR", "SDN")
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    services.evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True), now=now
    )
    pending = Notification.objects.filter(sent_at__isnull=True)

    # Down for an hour: the dispatcher (every minute in production) tries whenever a
    # retry is due; each attempt fails, is counted and keeps its error.
    moment = now
    while moment < now + timedelta(hours=1):
        assert services.dispatch_pending(now=moment).retrying == 2
        moment = min(pending.values_list("next_attempt_at", flat=True))
    assert moment - now == timedelta(seconds=3810)  # 30 s doubling: 7 attempts, next at 63.5 min
    for notification in pending:
        assert (notification.status, notification.attempts) == ("retrying", 7)
        assert "Connection refused" in notification.last_error or "111" in notification.last_error
    assert not Notification.objects.filter(failed_at__isnull=False).exists()
    assert not AlertEvent.objects.filter(kind=AlertEvent.Kind.DELIVERY_FAILED).exists()
    client.force_login(focal_point)
    myanmar = Alert.objects.get(country__iso3="MMR")
    page = client.get(reverse("alerts:detail", args=[myanmar.pk])).content.decode()
    assert "Retrying" in page
    assert pending.get(alert_message__alerts=myanmar).last_error in page

    # Back up: the next due attempt sends each pending notification, once.
    sink.start()
    try:
        assert services.dispatch_pending(now=moment).sent == 2
        assert services.dispatch_pending(now=moment + timedelta(days=1)).sent == 0
        wait_for(lambda: len(sink.messages) == 2, timeout=10)
        ids = sorted(m["Message-ID"] for _, m in sink.messages)
        assert ids == sorted(Notification.objects.values_list("message_id", flat=True))
        assert not Notification.objects.filter(sent_at__isnull=True).exists()
    finally:
        sink.stop()
    assert urlsplit(site_url()).scheme in {"http", "https"}

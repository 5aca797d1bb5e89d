"""Alert services against the database: evaluation, the outbox, lifecycle, reminders, digests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from alerts import services
from alerts.models import Alert, AlertEvent, Digest, Notification, RunEvaluation
from alerts.transports import TRANSPORTS, TransportError, acknowledgement_token
from indicators.models import Observation
from indicators.services import record_observations, refresh_scores
from tests.alerts.conftest import TODAY, observe, subscribe

pytestmark = pytest.mark.usefixtures("scoring")

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def syria_rises():
    """Syria: overall 30 (moderate) through May, 80 (very high) in June."""
    observe("SYR", "1.1", "2024-01-31", 0.3)
    observe("SYR", "1.1", "2024-06-01", 0.8, source="update")
    return refresh_scores(today=TODAY)


def test_a_run_raises_crossings_and_a_surge(syria_rises, focal_point):
    subscribe(focal_point, countries=("SYR",))
    alerts = services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    summary = sorted((a.rule, a.crime_type, a.severity) for a in alerts)
    assert summary == [
        ("level_crossing", "crimes_against_humanity", "critical"),
        ("level_crossing", "genocide", "critical"),
        ("level_crossing", "overall", "critical"),
        ("level_crossing", "war_crimes", "critical"),
        ("surge", "overall", "critical"),  # +50 points since March
    ]
    overall = Alert.objects.get(rule="level_crossing", crime_type="overall")
    assert (overall.score, overall.previous_score, overall.level, overall.previous_level) == (
        80.0,
        30.0,
        "very_high",
        "moderate",
    )
    assert overall.drivers == [["RF1", 50.0]]
    assert overall.run == syria_rises
    assert overall.events.get().kind == AlertEvent.Kind.OPENED
    # One e-mail notification per alert for the subscribed focal point.
    assert Notification.objects.filter(recipient=focal_point, channel="email").count() == 5


def test_evaluating_the_same_run_twice_creates_nothing_new(syria_rises, focal_point):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    counts = (Alert.objects.count(), AlertEvent.objects.count(), Notification.objects.count())
    assert services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW) == []
    assert (
        Alert.objects.count(),
        AlertEvent.objects.count(),
        Notification.objects.count(),
    ) == counts
    assert RunEvaluation.objects.get(run=syria_rises).escalations == 5


def test_a_further_rise_escalates_the_open_alert_instead_of_duplicating(syria_rises, focal_point):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    surge = Alert.objects.get(rule="surge")
    services.acknowledge(alert=surge, user=focal_point, now=NOW)
    # Another run with a higher June score: same alerts, escalated.
    observe("SYR", "1.1", "2024-06-10", 0.95, source="later")
    run = refresh_scores(today=TODAY)
    escalated = services.evaluate_scoring_run(run_id=run.pk, now=NOW + timedelta(hours=1))
    assert Alert.objects.count() == 5
    assert {a.pk for a in escalated} >= {surge.pk}
    surge.refresh_from_db()
    assert surge.escalation_count == 1
    assert surge.status == Alert.Status.OPEN  # reopened: it needs a fresh acknowledgement
    assert surge.score == pytest.approx(95.0)
    assert [e.kind for e in surge.events.all()] == ["opened", "acknowledged", "escalated"]
    assert surge.notifications.filter(round=1).count() == 1


def test_the_same_score_again_only_notes_it(syria_rises, focal_point):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    run = refresh_scores(today=TODAY)  # nothing changed
    assert services.evaluate_scoring_run(run_id=run.pk, now=NOW) == []
    surge = Alert.objects.get(rule="surge")
    assert surge.escalation_count == 0
    assert surge.events.last().message.startswith("Still present")


def test_a_resolved_alert_does_not_block_a_new_one(syria_rises, focal_point, administrator):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    surge = Alert.objects.get(rule="surge")
    services.resolve(alert=surge, user=administrator, note="Mission deployed", now=NOW)
    run = refresh_scores(today=TODAY)
    services.evaluate_scoring_run(run_id=run.pk, now=NOW)
    assert Alert.objects.filter(rule="surge").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "notified"),
    [
        ({"countries": ("SYR",)}, True),
        ({"regions": ("Asia",)}, True),
        ({"regions": ("Western Asia",)}, True),
        ({"all_countries": True}, True),
        ({"regions": ("Africa",)}, False),
        ({"countries": ("NOR",)}, False),
        ({"countries": ("SYR",), "delivery": "digest"}, False),  # the digest carries it
    ],
)
def test_who_is_notified_follows_subscriptions(syria_rises, focal_point, kwargs, notified):
    subscribe(focal_point, **kwargs)
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    assert Notification.objects.filter(recipient=focal_point).exists() is notified


def test_minimum_severity_filters_notifications(focal_point):
    subscribe(focal_point, countries=("SYR",), min_severity="critical")
    observe("SYR", "1.1", "2024-01-31", 0.3)
    observe("SYR", "1.1", "2024-06-01", 0.55, source="update")  # moderate -> high: warning
    run = refresh_scores(today=TODAY)
    alerts = services.evaluate_scoring_run(run_id=run.pk, now=NOW)
    assert {a.severity for a in alerts} == {"warning", "critical"}  # the surge is critical
    notified = {n.alert.rule for n in Notification.objects.filter(recipient=focal_point)}
    assert notified == {"surge"}


def test_red_flags_are_raised_from_observations_once_per_version(focal_point):
    subscribe(focal_point, countries=("MMR",))
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "10.1",
                "observed_on": "2024-06-01",
                "value": 1.0,
                "source": "analyst",
            }
        ],
        today=TODAY,
        recompute=False,
        evaluate_alerts=False,
    )
    observation = Observation.objects.get()
    (alert,) = services.evaluate_red_flags(observation_ids=[observation.pk], now=NOW)
    assert (alert.rule, alert.crime_type, alert.severity) == ("red_flag", "genocide", "critical")
    assert alert.observation == observation
    assert services.evaluate_red_flags(observation_ids=[observation.pk], now=NOW) == []
    assert Notification.objects.filter(alert=alert).count() == 1


def test_the_safety_net_evaluates_what_the_on_commit_path_missed(syria_rises, focal_point):
    observe("MMR", "12.1", "2024-06-01", 1.0)
    count = services.evaluate_missed(now=datetime.now(tz=UTC))
    assert count == 6  # five from the run, one red flag
    assert services.evaluate_missed(now=datetime.now(tz=UTC)) == 0


def test_dispatching_twice_sends_once(syria_rises, focal_point, mailoutbox):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    first = services.dispatch_pending(now=NOW)
    second = services.dispatch_pending(now=NOW)
    assert (first.sent, second.sent) == (5, 0)
    assert len(mailoutbox) == 5
    assert len({m.extra_headers["Message-ID"] for m in mailoutbox}) == 5
    assert not Notification.objects.filter(sent_at__isnull=True).exists()


def test_the_email_says_what_happened_and_carries_the_links(
    syria_rises, focal_point, mailoutbox, settings
):
    settings.SITE_URL = "https://ew.example.org"
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    services.dispatch_pending(now=NOW)
    message = next(m for m in mailoutbox if "surge" in m.subject)
    notification = Notification.objects.get(alert__rule="surge")
    assert message.subject == "[Critical] Syria: surge — Very high"
    assert message.to == [focal_point.email]
    assert message.extra_headers["Message-ID"] == notification.message_id
    assert "Score:       80.0 / 100 (very high)" in message.body
    assert "RF1: +50.0" in message.body
    assert "https://ew.example.org/countries/SYR/" in message.body
    assert "https://ew.example.org/alerts/ack/" in message.body
    html = message.alternatives[0][0]
    assert "Acknowledge</a>" in html


def test_a_transient_failure_retries_with_back_off_then_fails_visibly(
    syria_rises, focal_point, monkeypatch
):
    class Down:
        def send(self, notification):
            raise TransportError("Connection refused")

    monkeypatch.setitem(TRANSPORTS, "email", Down)
    subscribe(focal_point, countries=("SYR",), all_countries=False)
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    Notification.objects.exclude(alert__rule="surge").delete()
    notification = Notification.objects.get()
    moments = [NOW]
    for _ in range(4):
        result = services.dispatch_pending(now=moments[-1])
        assert result.retrying == 1
        notification.refresh_from_db()
        moments.append(notification.next_attempt_at)
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert gaps == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
    ]
    assert services.dispatch_pending(now=moments[-1] - timedelta(seconds=1)).retrying == 0
    assert services.dispatch_pending(now=moments[-1]).failed == 1
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert notification.attempts == 5
    assert notification.last_error == "Connection refused"
    event = notification.alert.events.get(kind=AlertEvent.Kind.DELIVERY_FAILED)
    assert "failed after 5 attempt(s)" in event.message


def test_a_permanent_failure_is_not_retried(syria_rises, focal_point, monkeypatch):
    class Refused:
        def send(self, notification):
            raise TransportError("recipient refused", permanent=True)

    monkeypatch.setitem(TRANSPORTS, "email", Refused)
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    assert services.dispatch_pending(now=NOW).failed == 5


def test_only_recipients_and_administrators_act_on_an_alert(
    syria_rises, focal_point, analyst, administrator
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    alert = Alert.objects.get(rule="surge")
    with pytest.raises(PermissionDenied):
        services.acknowledge(alert=alert, user=analyst, now=NOW)
    with pytest.raises(PermissionDenied):
        services.dismiss(alert=alert, user=analyst, reason="noise", now=NOW)
    services.acknowledge(alert=alert, user=focal_point, now=NOW)
    services.resolve(alert=alert, user=administrator, note="Handled", now=NOW)
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.resolved_by) == (
        "resolved",
        focal_point,
        administrator,
    )
    assert [e.kind for e in alert.events.all()] == ["opened", "acknowledged", "resolved"]


def test_a_dismissal_needs_a_reason(syria_rises, administrator):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    alert = Alert.objects.get(rule="surge")
    with pytest.raises(ValidationError, match="needs a reason"):
        services.dismiss(alert=alert, user=administrator, reason="  ", now=NOW)
    services.dismiss(alert=alert, user=administrator, reason="Data error", now=NOW)
    alert.refresh_from_db()
    assert (alert.status, alert.dismissal_reason) == ("dismissed", "Data error")


def test_the_acknowledgement_link_works_once(syria_rises, focal_point):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    notification = Notification.objects.get(alert__rule="surge")
    token = acknowledgement_token(notification)
    alert = services.acknowledge_with_token(token=token, now=NOW)
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", focal_point)
    with pytest.raises(ValidationError, match="already been used"):
        services.acknowledge_with_token(token=token, now=NOW)
    with pytest.raises(ValidationError, match="not valid"):
        services.acknowledge_with_token(token=token[:-2] + "xx", now=NOW)


def test_an_expired_acknowledgement_link_is_refused(syria_rises, focal_point, settings):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    token = acknowledgement_token(Notification.objects.get(alert__rule="surge"))
    settings.ALERT_ACK_LINK_MAX_AGE_DAYS = -1
    with pytest.raises(ValidationError, match="expired"):
        services.acknowledge_with_token(token=token, now=NOW)


def test_unacknowledged_critical_alerts_are_resent_and_escalated_once_per_period(
    syria_rises, focal_point, administrator
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    Alert.objects.exclude(rule="surge").update(status="resolved")
    surge = Alert.objects.get(rule="surge")
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=23, minutes=59)) == []
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=24)) == [surge]
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=30)) == []  # same period
    reminders = Notification.objects.filter(alert=surge, kind="reminder")
    escalations = Notification.objects.filter(alert=surge, kind="admin_escalation")
    assert [n.recipient for n in reminders] == [focal_point]
    assert [n.recipient for n in escalations] == [administrator]
    assert surge.events.filter(kind="reminded").count() == 1
    # Still unacknowledged a period later: again, as a new round.
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=48)) == [surge]
    assert Notification.objects.filter(alert=surge, kind="reminder", round=2).count() == 1
    # Acknowledged alerts are left alone.
    services.acknowledge(alert=surge, user=focal_point, now=NOW + timedelta(hours=49))
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=100)) == []


def test_daily_digest_for_digest_subscribers_once(syria_rises, focal_point, mailoutbox):
    subscribe(focal_point, countries=("SYR",), delivery="digest", min_severity="critical")
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    next_morning = NOW + timedelta(hours=19)  # 07:00 the next day
    assert services.send_daily_digests(now=next_morning) == 1
    assert services.send_daily_digests(now=next_morning + timedelta(hours=1)) == 0
    (message,) = mailoutbox
    assert message.subject == "Early-warning digest: 5 alerts on 15 Jun 2024"
    assert "Syria" in message.body
    assert Digest.objects.get().sent_at is not None
    assert not Notification.objects.exists()  # nothing immediate for digest subscribers


def test_weekly_summary_for_every_focal_point(syria_rises, focal_point, administrator, mailoutbox):
    subscribe(focal_point, regions=("Asia",), delivery="digest")
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    services.resolve(alert=Alert.objects.get(rule="surge"), user=administrator, note="ok", now=NOW)
    monday = datetime(2024, 6, 17, 7, 10, tzinfo=UTC)
    assert services.send_weekly_summaries(now=monday) == 1
    assert services.send_weekly_summaries(now=monday) == 0
    (message,) = mailoutbox
    assert message.subject == "Weekly early-warning summary: 5 new, 4 open, 1 resolved"
    assert "Biggest 3-month rises:" in message.body
    assert "- Syria: 80.0 (+50.0)" in message.body

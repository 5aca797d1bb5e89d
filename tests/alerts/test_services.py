"""Alert services against the database: evaluation, the outbox, lifecycle, reminders, digests."""

from __future__ import annotations

import http.client
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from alerts import services
from alerts.models import (
    Alert,
    AlertEvent,
    AlertSettings,
    Digest,
    Notification,
    RunEvaluation,
    ScoreBaseline,
)
from alerts.transports import TRANSPORTS, TransportError, acknowledgement_token
from indicators import methodology
from indicators.models import Observation, ScoringRun
from indicators.roles import Role
from indicators.services import record_observations, refresh_scores
from tests.alerts.conftest import SCORED_ON, TODAY, observe, subscribe
from tests.conftest import make_user, publish_methodology

pytestmark = pytest.mark.usefixtures("scoring")

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def evaluated_run(now: datetime = NOW - timedelta(days=1)):
    """A scoring run, evaluated: the baseline the next run is compared with."""
    run = refresh_scores(today=SCORED_ON)
    services.evaluate_scoring_run(run_id=run.pk, now=now)
    return run


@pytest.fixture
def syria_rises():
    """Syria at 30 (moderate) in an evaluated run; then a run with June at 80 (very high)."""
    observe("SYR", "1.1", "2024-01-31", 0.3)
    evaluated_run()
    observe("SYR", "1.1", "2024-06-01", 0.8, source="update")
    return refresh_scores(today=SCORED_ON)


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
    assert overall.drivers_crime == "genocide"  # the overall score's crime type (a tie)
    assert overall.compared_with == "previous_published"
    assert (overall.change_3m, overall.change_3m_z) == (None, None)  # not this comparison
    assert overall.run == syria_rises
    assert overall.events.get().kind == AlertEvent.Kind.OPENED
    # One message for the country and event, listing every trigger, the most urgent first.
    (notification,) = Notification.objects.filter(recipient=focal_point, channel="email")
    items = list(notification.alert_message.items.values_list("alert__rule", "alert__crime_type"))
    assert items == [
        ("level_crossing", "overall"),
        ("surge", "overall"),
        ("level_crossing", "crimes_against_humanity"),
        ("level_crossing", "genocide"),
        ("level_crossing", "war_crimes"),
    ]
    assert notification.alert == overall


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
    run = refresh_scores(today=SCORED_ON)
    escalated = services.evaluate_scoring_run(run_id=run.pk, now=NOW + timedelta(hours=1))
    assert Alert.objects.count() == 5
    assert {a.pk for a in escalated} >= {surge.pk}
    surge.refresh_from_db()
    assert surge.escalation_count == 1
    assert surge.status == Alert.Status.OPEN  # reopened: it needs a fresh acknowledgement
    assert surge.score == pytest.approx(95.0)
    assert [e.kind for e in surge.events.all()] == ["opened", "acknowledged", "escalated"]
    assert surge.notifications.filter(round=1).count() == 1


def test_a_run_on_unchanged_data_raises_notes_and_sends_nothing(syria_rises, focal_point):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    counts = (AlertEvent.objects.count(), Notification.objects.count())
    run = refresh_scores(today=SCORED_ON)  # nothing changed
    assert services.evaluate_scoring_run(run_id=run.pk, now=NOW) == []
    assert (AlertEvent.objects.count(), Notification.objects.count()) == counts
    assert Alert.objects.get(rule="surge").escalation_count == 0


def test_closed_alerts_stay_closed_when_nothing_rose_further(
    syria_rises, focal_point, administrator
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    surge = Alert.objects.get(rule="surge")
    services.resolve(alert=surge, user=administrator, note="Mission deployed", now=NOW)
    for alert in Alert.objects.filter(rule="level_crossing"):
        services.dismiss(alert=alert, user=administrator, reason="Known", now=NOW)
    notifications = Notification.objects.count()
    run = refresh_scores(today=SCORED_ON)  # the same data
    assert services.evaluate_scoring_run(run_id=run.pk, now=NOW + timedelta(hours=1)) == []
    assert not Alert.objects.filter(status__in=Alert.ACTIVE).exists()
    assert Notification.objects.count() == notifications


def test_a_rise_after_resolution_opens_a_new_alert(syria_rises, administrator):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    surge = Alert.objects.get(rule="surge")
    services.resolve(alert=surge, user=administrator, note="Mission deployed", now=NOW)
    observe("SYR", "1.1", "2024-06-10", 0.95, source="later")
    run = refresh_scores(today=SCORED_ON)
    (new,) = [
        a
        for a in services.evaluate_scoring_run(run_id=run.pk, now=NOW + timedelta(hours=1))
        if a.rule == "surge"
    ]
    assert new.pk != surge.pk
    assert new.previous_score == pytest.approx(30.0)  # three months earlier
    assert Alert.objects.filter(rule="surge").count() == 2


def test_a_backdated_observation_that_lifts_the_published_score_raises_a_crossing(focal_point):
    subscribe(focal_point, countries=("SYR",))
    observe("SYR", "1.1", "2024-01-31", 0.3)
    evaluated_run()
    # A late report dated February: every month from February on is now 80, so the new
    # run has no change within itself; the previous published run had June at 30.
    observe("SYR", "1.1", "2024-02-15", 0.8, source="late report")
    run = refresh_scores(today=SCORED_ON)
    alerts = services.evaluate_scoring_run(run_id=run.pk, now=NOW)
    overall = next(a for a in alerts if a.crime_type == "overall")
    assert (overall.rule, overall.previous_level, overall.level) == (
        "level_crossing",
        "moderate",
        "very_high",
    )
    assert (overall.previous_score, overall.score) == (30.0, 80.0)
    assert not any(a.rule == "surge" for a in alerts)  # no 3-month change in June
    assert Notification.objects.filter(alert_message__alerts=overall).count() == 1


def test_a_run_evaluated_after_a_newer_one_leaves_the_baseline_alone(focal_point):
    observe("SYR", "1.1", "2024-01-31", 0.3)
    older = refresh_scores(today=SCORED_ON)
    observe("SYR", "1.1", "2024-06-01", 0.8, source="update")
    newer = evaluated_run()
    assert services.evaluate_scoring_run(run_id=older.pk, now=NOW) == []
    assert ScoreBaseline.objects.get().run == newer


def test_a_new_methodology_version_is_a_baseline_only(
    syria_rises, django_capture_on_commit_callbacks
):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    observe("SYR", "1.1", "2024-06-10", 0.95, source="later")
    # New weights: its publication scores everything under a draft first, which warns no
    # one; once published, that run is evaluated against the old version's baselines.
    with django_capture_on_commit_callbacks(execute=True):
        version = publish_methodology(factor_weights={"RF1": 2.0}, today=SCORED_ON)
    run = ScoringRun.objects.get(methodology=version)
    assert RunEvaluation.objects.get(run=run).escalations == 0
    assert ScoreBaseline.objects.get().methodology == version
    assert not Alert.objects.filter(run=run).exists()
    assert services.evaluate_scoring_run(run_id=run.pk, now=NOW) == []  # once only


def test_a_drafts_scoring_run_is_not_evaluated(syria_rises):
    draft = methodology.create_draft(by=None)
    run = refresh_scores(today=SCORED_ON, methodology=draft)
    assert services.evaluate_scoring_run(run_id=run.pk, now=NOW) == []
    assert not RunEvaluation.objects.filter(run=run).exists()


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
    evaluated_run()
    observe("SYR", "1.1", "2024-06-01", 0.55, source="update")  # moderate -> high: warning
    run = refresh_scores(today=SCORED_ON)
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
    today = datetime.now(tz=UTC).date()
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "12.1",
                "observed_on": today.isoformat(),
                "value": 1.0,
                "source": "analyst",
            }
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    count = services.evaluate_missed(now=datetime.now(tz=UTC))
    assert count == 6  # five from the run, one red flag
    assert services.evaluate_missed(now=datetime.now(tz=UTC)) == 0


def test_dispatching_twice_sends_once(syria_rises, focal_point, mailoutbox):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    first = services.dispatch_pending(now=NOW)
    second = services.dispatch_pending(now=NOW)
    assert (first.sent, second.sent) == (1, 0)  # one message listing the five alerts
    assert len(mailoutbox) == 1
    assert len({m.extra_headers["Message-ID"] for m in mailoutbox}) == 1
    assert not Notification.objects.filter(sent_at__isnull=True).exists()


def test_the_email_says_what_happened_and_carries_the_links(
    syria_rises, focal_point, mailoutbox, settings
):
    settings.SITE_URL = "https://ew.example.org"
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    services.dispatch_pending(now=NOW)
    (message,) = mailoutbox
    notification = Notification.objects.get()
    assert message.subject == (
        "[Critical] Syria: overall risk moderate → very high and 4 more alerts"
    )
    assert message.to == [focal_point.email]
    assert message.extra_headers["Message-ID"] == notification.message_id
    body = message.body
    # Every trigger, the most urgent first, each saying what it compares.
    assert body.index("Overall risk rose from moderate to very high") < body.index(
        "Overall risk surged"
    )
    assert (
        "Change: +50.0 points against the previous published score (June 2024), 30.0 → 80.0"
    ) in body
    assert "Change: +50.0 points against the score three months earlier (March 2024)" in body
    assert "3-month change 0.0" not in body
    assert "https://ew.example.org/countries/SYR/" in body
    assert "https://ew.example.org/alerts/ack/" in body
    html = message.alternatives[0][0]
    assert "Acknowledge all 5</a>" in html


def test_email_drivers_name_the_factor(syria_rises, focal_point, mailoutbox):
    from indicators.models import RiskFactor

    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    services.dispatch_pending(now=NOW)
    title = RiskFactor.objects.get(code="RF1").title
    assert f"- RF1 {title}: +50.0" in mailoutbox[0].body


def test_a_transient_failure_retries_with_back_off_for_a_day_then_fails_visibly(
    syria_rises, focal_point, monkeypatch
):
    class Down:
        def send(self, notification):
            raise TransportError("Connection refused")

    monkeypatch.setitem(TRANSPORTS, "email", Down)
    subscribe(focal_point, countries=("SYR",), all_countries=False)
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    notification = Notification.objects.get()
    moments = [NOW]
    for _ in range(30):
        result = services.dispatch_pending(now=moments[-1])
        assert result.retrying == 1
        notification.refresh_from_db()
        moments.append(notification.next_attempt_at)
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    doubling = [timedelta(seconds=30 * 2**n) for n in range(7)]  # 30 s ... 32 min
    assert gaps == doubling + [timedelta(hours=1)] * 23
    # 31 attempts span 3810 s of doubling plus 23 h: about 24 h of outage.
    assert moments[-1] - NOW == timedelta(hours=24, seconds=210)
    assert services.dispatch_pending(now=moments[-1] - timedelta(seconds=1)).retrying == 0
    assert services.dispatch_pending(now=moments[-1]).failed == 1
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert notification.attempts == 31
    assert notification.last_error == "Connection refused"
    event = notification.alert.events.get(kind=AlertEvent.Kind.DELIVERY_FAILED)
    assert "failed after 31 attempt(s)" in event.message
    # Every alert the message carried says so, not only its first.
    assert AlertEvent.objects.filter(kind=AlertEvent.Kind.DELIVERY_FAILED).count() == 5


@pytest.mark.parametrize(
    "error",
    [ValueError("bad address"), http.client.HTTPException("bad status line"), KeyError("x")],
)
def test_any_error_counts_as_a_failed_attempt_and_the_batch_goes_on(
    syria_rises, focal_point, monkeypatch, mailoutbox, error
):
    real = TRANSPORTS["email"]

    class Broken:
        def send(self, notification):
            if notification.recipient == focal_point:
                raise error
            real().send(notification)

    monkeypatch.setitem(TRANSPORTS, "email", Broken)
    AlertSettings.objects.create(pk=1, max_delivery_attempts=2)
    subscribe(focal_point, countries=("SYR",))
    subscribe(make_user("fox", Role.FOCAL_POINT), countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    first = services.dispatch_pending(now=NOW)
    assert (first.sent, first.retrying, first.failed) == (1, 1, 0)
    assert len(mailoutbox) == 1
    surge = Notification.objects.get(recipient=focal_point)
    assert surge.last_error == f"{type(error).__name__}: {error}"
    assert surge.next_attempt_at == NOW + timedelta(seconds=30)
    assert services.dispatch_pending(now=NOW + timedelta(seconds=30)).failed == 1
    surge.refresh_from_db()
    assert (surge.status, surge.attempts) == ("failed", 2)
    assert surge.alert.events.filter(kind=AlertEvent.Kind.DELIVERY_FAILED).exists()


def test_sent_at_is_the_dispatch_time_given(syria_rises, focal_point, mailoutbox):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    services.dispatch_pending(now=NOW + timedelta(minutes=3))
    assert set(Notification.objects.values_list("sent_at", flat=True)) == {
        NOW + timedelta(minutes=3)
    }


def test_a_permanent_failure_is_not_retried(syria_rises, focal_point, monkeypatch):
    class Refused:
        def send(self, notification):
            raise TransportError("recipient refused", permanent=True)

    monkeypatch.setitem(TRANSPORTS, "email", Refused)
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    assert services.dispatch_pending(now=NOW).failed == 1


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
    notification = Notification.objects.get()
    token = acknowledgement_token(notification)
    result = services.acknowledge_with_token(token=token, now=NOW)
    # The message's five alerts are acknowledged together, for the recipient.
    assert len(result.acknowledged) == 5
    assert set(Alert.objects.values_list("status", "acknowledged_by")) == {
        ("acknowledged", focal_point.pk)
    }
    with pytest.raises(ValidationError, match="already been used"):
        services.acknowledge_with_token(token=token, now=NOW)
    with pytest.raises(ValidationError, match="not valid"):
        services.acknowledge_with_token(token=token[:-2] + "xx", now=NOW)


def test_an_old_acknowledgement_link_does_not_acknowledge_a_newer_escalation(
    syria_rises, focal_point
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    old_token = acknowledgement_token(Notification.objects.get())
    observe("SYR", "1.1", "2024-06-10", 0.95, source="later")
    run = refresh_scores(today=SCORED_ON)
    services.evaluate_scoring_run(run_id=run.pk, now=NOW + timedelta(hours=1))
    surge = Alert.objects.get(rule="surge")
    assert surge.escalation_count == 1  # one further rise: one escalation
    result = services.acknowledge_with_token(token=old_token, now=NOW + timedelta(hours=2))
    # The four alerts the old e-mail described are acknowledged; the surge rose since.
    assert len(result.acknowledged) == 4
    assert [(alert.pk, why) for alert, why in result.left] == [
        (surge.pk, "it has escalated since this e-mail was sent")
    ]
    surge.refresh_from_db()
    assert surge.status == "open"
    newer = Notification.objects.get(alert_message__alerts=surge, round=1)
    services.acknowledge_with_token(
        token=acknowledgement_token(newer), now=NOW + timedelta(hours=2)
    )
    surge.refresh_from_db()
    assert surge.status == "acknowledged"


def test_a_link_whose_every_alert_escalated_acknowledges_nothing(alert, focal_point):
    old_token = acknowledgement_token(Notification.objects.get())
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "12.3",
                "observed_on": "2024-06-10",
                "value": 1.0,
                "source": "analyst",
            }
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    services.evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True), now=NOW
    )
    with pytest.raises(ValidationError, match="escalated since this e-mail was sent"):
        services.acknowledge_with_token(token=old_token, now=NOW)


def test_an_expired_acknowledgement_link_is_refused(syria_rises, focal_point, settings):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    token = acknowledgement_token(Notification.objects.get())
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


def test_the_escalation_time_comes_from_the_alert_settings(syria_rises, focal_point, administrator):
    AlertSettings.objects.create(pk=1, escalation_hours=6)
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    Alert.objects.exclude(rule="surge").update(status="resolved")
    surge = Alert.objects.get(rule="surge")
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=5, minutes=59)) == []
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=6)) == [surge]
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=11)) == []
    assert services.escalate_unacknowledged(now=NOW + timedelta(hours=12)) == [surge]
    event = surge.events.filter(kind="reminded").first()
    assert event.message.startswith("Unacknowledged for 6 h")
    assert Notification.objects.filter(alert=surge, kind="admin_escalation").count() == 2


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


def test_a_focal_point_without_subscriptions_gets_a_weekly_summary_of_everything(
    syria_rises, focal_point, analyst, mailoutbox
):
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    monday = datetime(2024, 6, 17, 7, 10, tzinfo=UTC)
    assert services.send_weekly_summaries(now=monday) == 1  # not the analyst
    (message,) = mailoutbox
    assert message.to == [focal_point.email]
    assert message.subject == "Weekly early-warning summary: 5 new, 5 open, 0 resolved"
    assert "for every country: you have no alert subscription" in message.body


def test_a_focal_point_who_opted_out_of_the_weekly_summary_gets_none(
    syria_rises, focal_point, mailoutbox
):
    subscription = subscribe(focal_point, countries=("SYR",))
    subscription.weekly_summary = False
    subscription.save()
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    assert services.send_weekly_summaries(now=datetime(2024, 6, 17, 7, tzinfo=UTC)) == 0
    assert mailoutbox == []


def test_a_failed_digest_stays_unsent_and_goes_out_on_a_later_day(
    syria_rises, focal_point, mailoutbox, monkeypatch
):
    subscribe(focal_point, countries=("SYR",), delivery="digest")
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    real = services.send_mail_message

    def down(**kwargs):
        raise TransportError("Connection refused")

    monkeypatch.setattr(services, "send_mail_message", down)
    next_morning = NOW + timedelta(hours=19)
    assert services.send_daily_digests(now=next_morning) == 0
    digest = Digest.objects.get()
    assert (digest.sent_at, digest.attempts, digest.last_error) == (None, 1, "Connection refused")
    monkeypatch.setattr(services, "send_mail_message", real)
    # The day after, with no new alerts: yesterday's digest is retried, once.
    assert services.send_daily_digests(now=next_morning + timedelta(days=1)) == 1
    assert services.send_daily_digests(now=next_morning + timedelta(days=1, hours=1)) == 0
    (message,) = mailoutbox
    assert message.subject == "Early-warning digest: 5 alerts on 15 Jun 2024"
    digest.refresh_from_db()
    assert digest.sent_at == next_morning + timedelta(days=1)
    assert (digest.attempts, digest.last_error, digest.claimed_until) == (2, "", None)


def test_a_digest_claimed_by_another_worker_is_not_sent_until_its_lease_ends(
    syria_rises, focal_point, mailoutbox
):
    subscribe(focal_point, countries=("SYR",), delivery="digest")
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    next_morning = NOW + timedelta(hours=19)
    services._create_digest(
        focal_point,
        Digest.Kind.DAILY,
        datetime(2024, 6, 15, tzinfo=UTC),
        datetime(2024, 6, 16, tzinfo=UTC),
        next_morning,
    )
    Digest.objects.update(claimed_until=next_morning + timedelta(minutes=5))  # the other one
    assert services.send_daily_digests(now=next_morning, clock=lambda: next_morning) == 0
    assert mailoutbox == []
    later = next_morning + timedelta(minutes=6)
    assert services.send_daily_digests(now=later, clock=lambda: later) == 1
    assert len(mailoutbox) == 1


def test_a_red_flag_email_shows_the_countrys_published_score(focal_point, mailoutbox):
    subscribe(focal_point, countries=("SYR", "MMR"))
    observe("SYR", "1.1", "2024-01-31", 0.3)
    observe("SYR", "1.1", "2024-06-01", 0.8, source="update")
    refresh_scores(today=SCORED_ON)
    for country in ("SYR", "MMR"):
        observe(country, "12.1", "2024-06-01", 1.0)
    services.evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True), now=NOW
    )
    services.dispatch_pending(now=NOW)
    bodies = {m.subject: m.body for m in mailoutbox}
    syria = bodies["[Critical] Syria: red flag on 12.1"]
    assert (
        "Syria's latest published score (may not include these assessments yet): "
        "80.0 / 100 (very high), 3-month change +50.0 points, as of 30 Jun 2024"
    ) in syria
    assert "high (3 of 3)" in syria
    assert "1.00" not in syria
    assert "Myanmar has no published score yet" in bodies["[Critical] Myanmar: red flag on 12.1"]
    html = next(m for m in mailoutbox if "Syria" in m.subject).alternatives[0][0]
    assert "<strong>80.0</strong> / 100 (very high)" in html


def test_an_import_of_history_raises_no_red_flags(focal_point):
    subscribe(focal_point, all_countries=True)
    observe("SDN", "12.1", "2024-03-16", 1.0)  # 91 days before NOW
    observe("MMR", "12.1", "2024-03-17", 1.0)  # 90 days: still recent
    alerts = services.evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True), now=NOW
    )
    assert [a.country.iso3 for a in alerts] == ["MMR"]
    assert services.evaluate_missed(now=NOW) == 0  # not a missed candidate either


# --- One message per country and event ---------------------------------------------------


def assess(*rows: tuple[str, str, str, float], source: str = "analyst") -> list[int]:
    """Record assessments (values in [0, 1]) as one batch, without queueing anything."""
    record_observations(
        rows=[
            {"country": c, "indicator": i, "observed_on": d, "value": v, "source": source}
            for c, i, d, v in rows
        ],
        today=TODAY,
        recompute=False,
        evaluate_alerts=False,
    )
    return list(Observation.objects.values_list("pk", flat=True))


def test_a_batch_of_red_flags_is_one_alert_per_crime_type_and_one_message(focal_point):
    subscribe(focal_point, countries=("KEN",))
    ids = assess(
        ("KEN", "8.7", "2024-06-01", 2 / 3),
        ("KEN", "8.7", "2024-06-05", 1.0),
        ("KEN", "8.7", "2024-06-07", 1.0),
        ("KEN", "12.1", "2024-06-05", 1.0),
        ("KEN", "12.3", "2024-06-05", 2 / 3),
    )
    alerts = services.evaluate_red_flags(observation_ids=ids, now=NOW)
    assert sorted((a.crime_type, a.severity) for a in alerts) == [
        ("crimes_against_humanity", "critical"),
        ("overall", "critical"),
    ]
    assert not Alert.objects.filter(escalation_count__gt=0).exists()  # no "escalated 6x"
    incitement = Alert.objects.get(crime_type="overall")
    assert incitement.period == date(2024, 6, 7)  # as of the newest assessment
    assert [(f["indicator"], f["value"], f["observed_on"]) for f in incitement.red_flags] == [
        ("8.7", 1.0, "2024-06-07")
    ]
    plan = Alert.objects.get(crime_type="crimes_against_humanity")
    assert [f["indicator"] for f in plan.red_flags] == ["12.1", "12.3"]
    (notification,) = Notification.objects.all()
    assert notification.alert_message.items.count() == 2


def test_a_newer_higher_assessment_escalates_the_open_red_flag_and_notifies(focal_point):
    subscribe(focal_point, countries=("MMR",))
    first = assess(("MMR", "8.7", "2024-06-01", 2 / 3))
    (alert,) = services.evaluate_red_flags(observation_ids=first, now=NOW)
    assert (alert.severity, alert.period) == ("warning", date(2024, 6, 1))
    later = NOW + timedelta(hours=1)
    ids = assess(("MMR", "8.7", "2024-06-10", 1.0), source="later report")
    (escalated,) = services.evaluate_red_flags(observation_ids=ids, now=later)
    assert escalated.pk == alert.pk
    assert (escalated.severity, escalated.escalation_count) == ("critical", 1)
    assert escalated.period == date(2024, 6, 10)  # no longer "as of 1 June"
    assert escalated.value == 1.0
    assert "assessed high (3 of 3) by later report" in escalated.summary
    assert Notification.objects.filter(recipient=focal_point).count() == 2


def test_a_newer_assessment_no_higher_brings_the_red_flag_up_to_date_without_a_message(
    focal_point,
):
    subscribe(focal_point, countries=("MMR",))
    (alert,) = services.evaluate_red_flags(
        observation_ids=assess(("MMR", "8.7", "2024-06-01", 1.0)), now=NOW
    )
    ids = assess(("MMR", "8.7", "2024-06-12", 1.0), source="later report")
    assert services.evaluate_red_flags(observation_ids=ids, now=NOW + timedelta(hours=1)) == []
    alert.refresh_from_db()
    assert (alert.period, alert.escalation_count) == (date(2024, 6, 12), 0)
    assert alert.red_flags[0]["observed_on"] == "2024-06-12"
    assert alert.events.last().message.startswith("Confirmed by a newer assessment")
    assert Notification.objects.count() == 1  # the first message only


def test_red_flags_wait_for_the_run_their_observations_cause_and_come_with_it(focal_point):
    subscribe(focal_point, countries=("SYR",))
    observe("SYR", "1.1", "2024-01-31", 0.3)
    evaluated_run()
    # Recorded as an upload is: a recompute is requested in the same transaction.
    record_observations(
        rows=[
            {
                "country": "SYR",
                "indicator": i,
                "observed_on": "2024-06-01",
                "value": 1.0,
                "source": "upload",
            }
            for i in ("1.1", "12.1")
        ],
        today=TODAY,
        evaluate_alerts=False,
    )
    assert (
        services.evaluate_red_flags(
            observation_ids=Observation.objects.values_list("pk", flat=True), now=NOW
        )
        == []
    )
    assert not Notification.objects.exists()
    run = refresh_scores(today=SCORED_ON)
    alerts = services.evaluate_scoring_run(run_id=run.pk, now=NOW)
    assert {a.rule for a in alerts} == {"level_crossing", "surge", "red_flag"}
    (notification,) = Notification.objects.all()
    assert notification.alert_message.items.count() == len(alerts)


def test_a_red_flag_left_waiting_for_a_run_that_never_came_is_raised_by_the_safety_net(
    focal_point,
):
    subscribe(focal_point, countries=("MMR",))
    today = datetime.now(tz=UTC).date().isoformat()
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "12.1",
                "observed_on": today,
                "value": 1.0,
                "source": "upload",
            }
        ],
        evaluate_alerts=False,
    )
    now = datetime.now(tz=UTC)
    assert services.evaluate_missed(now=now) == 0  # its recompute is still to come
    assert services.evaluate_missed(now=now + timedelta(minutes=11)) == 1


def test_unacknowledged_alerts_of_one_country_are_reminded_in_one_message(
    syria_rises, focal_point, administrator
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    reminded = services.escalate_unacknowledged(now=NOW + timedelta(hours=24))
    assert len(reminded) == 5
    assert Notification.objects.filter(kind="reminder").count() == 1
    assert Notification.objects.filter(kind="admin_escalation").count() == 1
    message = Notification.objects.get(kind="reminder").alert_message
    assert (message.kind, message.items.count()) == ("reminder", 5)


def test_bulk_acknowledgement_takes_the_open_alerts_the_user_may_act_on(
    syria_rises, focal_point, analyst
):
    subscribe(focal_point, countries=("SYR",))
    services.evaluate_scoring_run(run_id=syria_rises.pk, now=NOW)
    alerts = list(Alert.objects.all())
    assert services.acknowledge_many(alerts=alerts, user=analyst, now=NOW) == 0
    assert services.acknowledge_many(alerts=alerts[:3], user=focal_point, now=NOW) == 3
    assert services.acknowledge_many(alerts=alerts, user=focal_point, now=NOW) == 2
    assert set(Alert.objects.values_list("status", flat=True)) == {"acknowledged"}

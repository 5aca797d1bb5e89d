"""Writes for alerts: evaluating runs and observations, the outbox, reminders, digests and
the alert lifecycle. Every step is safe to run twice."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from alerts import leases, rules, selectors
from alerts.models import (
    BASELINE_NUMBER_FIELDS,
    Alert,
    AlertEvent,
    Digest,
    Notification,
    RedFlagCheck,
    RunEvaluation,
    ScoreBaseline,
    Subscription,
)
from alerts.transports import ACK_SALT, TRANSPORTS, TransportError, absolute_url, send_mail_message
from alerts.webhook_addresses import validate_webhook_url
from countries.models import Country
from indicators.models import MethodologyVersion, Observation, ScoringRun
from indicators.roles import Role, has_role

logger = logging.getLogger(__name__)

# A dispatcher holds each notification from the moment it claims it, for this long, and
# renews the hold while the send runs (see alerts/leases.py): a row goes to another
# dispatcher only once its holder has stopped renewing, i.e. died. The stable Message-ID
# lets mail clients merge the one duplicate that can still happen (the holder died after
# the relay accepted the message and before the row was marked sent).
DELIVERY_LEASE = timedelta(minutes=5)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
RED_FLAG_SAFETY_WINDOW = timedelta(days=7)


# --- Evaluation ------------------------------------------------------------------------


def evaluate_scoring_run(*, run_id: int, now: datetime | None = None) -> list[Alert]:
    """Raise or escalate alerts for one finished scoring run, once per run.

    Each country's scores at the run's latest period are compared with its baseline
    (what the previous evaluated run had), which they then replace. A country whose
    baseline comes from a newer run is left alone: evaluating runs out of order never
    moves a baseline back.
    """
    now = now or timezone.now()
    run = (
        ScoringRun.objects.filter(pk=run_id, status=ScoringRun.Status.SUCCEEDED)
        .select_related("methodology")
        .first()
    )
    if run is None or run.methodology.status == MethodologyVersion.Status.DRAFT:
        # A draft's scores (its publication under way) warn no one until it is published;
        # then this run is evaluated, against baselines of the old version: a baseline only.
        return []
    with transaction.atomic():
        try:
            with transaction.atomic():
                evaluation = RunEvaluation.objects.create(run=run, evaluated_at=now)
        except IntegrityError:
            return []  # evaluated already, by this or another worker
        current = selectors.run_latest_scores(run)
        baseline = selectors.score_baselines(current["country"], for_update=True)
        newer = set(baseline.loc[baseline["run_started_at"] > run.started_at, "country"])
        current = current[~current["country"].isin(newer)]
        baseline = baseline[~baseline["country"].isin(newer)]
        escalations = rules.find_escalations(baseline, current, selectors.alert_thresholds())
        alerts = [alert for e in escalations if (alert := apply_escalation(e, run=run, now=now))]
        _save_baselines(run, current, now)
        evaluation.escalations = len(alerts)
        evaluation.save(update_fields=["escalations"])
    return alerts


def _save_baselines(run: ScoringRun, current: Any, now: datetime) -> None:
    ids = dict(Country.objects.filter(iso3__in=list(current["country"])).values_list("iso3", "id"))
    ScoreBaseline.objects.bulk_create(
        [
            ScoreBaseline(
                country_id=ids[row["country"]],
                run=run,
                run_started_at=run.started_at,
                methodology_id=run.methodology_id,
                period=row["period"],
                **{field: _float(row[field]) for field in BASELINE_NUMBER_FIELDS},
                contributions=row["contributions"] or {},
                evaluated_at=now,
            )
            for row in current.to_dict("records")
        ],
        update_conflicts=True,
        unique_fields=["country"],
        update_fields=[
            "run",
            "run_started_at",
            "methodology",
            "period",
            *BASELINE_NUMBER_FIELDS,
            "contributions",
            "evaluated_at",
        ],
    )


def _float(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # NaN != NaN


def evaluate_red_flags(
    *, observation_ids: Iterable[int], now: datetime | None = None
) -> list[Alert]:
    """Raise or escalate red-flag alerts for newly recorded observations, once per version."""
    now = now or timezone.now()
    thresholds = selectors.alert_thresholds()
    frame = selectors.observations_for_red_flags(observation_ids, thresholds=thresholds)
    if frame.empty:
        return []
    flags = {e.observation_id: e for e in rules.find_red_flags(frame, thresholds, today=now.date())}
    alerts: list[Alert] = []
    for row in frame.itertuples():
        if row.id not in flags:
            continue
        with transaction.atomic():
            try:
                with transaction.atomic():
                    RedFlagCheck.objects.create(
                        observation_id=row.id,
                        observation_updated_at=row.updated_at,
                        checked_at=now,
                    )
            except IntegrityError:
                continue  # this version of the observation was checked already
            alert = apply_escalation(
                flags[row.id], observation=Observation.objects.get(pk=row.id), now=now
            )
            if alert is not None:
                alerts.append(alert)
    return alerts


def evaluate_missed(*, now: datetime | None = None) -> int:
    """Safety net on a schedule: evaluate runs and red flags the on-commit path missed."""
    now = now or timezone.now()
    runs = ScoringRun.objects.filter(
        status=ScoringRun.Status.SUCCEEDED,
        evaluation__isnull=True,
        finished_at__gte=now - RED_FLAG_SAFETY_WINDOW,
    ).order_by("started_at")
    count = sum(len(evaluate_scoring_run(run_id=run.pk, now=now)) for run in runs)
    candidates = selectors.unchecked_red_flag_candidates(
        since=now - RED_FLAG_SAFETY_WINDOW,
        thresholds=selectors.alert_thresholds(),
        today=now.date(),
    )
    if candidates:
        count += len(evaluate_red_flags(observation_ids=candidates, now=now))
    return count


def apply_escalation(
    escalation: rules.Escalation,
    *,
    run: ScoringRun | None = None,
    observation: Observation | None = None,
    now: datetime,
) -> Alert | None:
    """Open an alert, or escalate the active one for the same (country, rule, crime type).

    Returns the alert opened or escalated, or None when the active alert already says as
    much (the evidence is still recorded in its history). Notifications are queued for
    every covering subscriber on immediate delivery.
    """
    country = Country.objects.get(iso3=escalation.country)
    fields = _alert_fields(escalation, run=run, observation=observation)
    with transaction.atomic():
        active = (
            Alert.objects.select_for_update()
            .filter(
                country=country,
                rule=escalation.rule,
                crime_type=escalation.crime_type,
                status__in=Alert.ACTIVE,
            )
            .first()
        )
        if active is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(country=country, opened_at=now, **fields)
            except IntegrityError:
                # Another worker opened it a moment ago: treat this as a further rise.
                active = Alert.objects.select_for_update().get(
                    country=country,
                    rule=escalation.rule,
                    crime_type=escalation.crime_type,
                    status__in=Alert.ACTIVE,
                )
            else:
                _record(
                    alert,
                    AlertEvent.Kind.OPENED,
                    escalation.summary,
                    now,
                    run=run,
                    observation=observation,
                    data=_numbers(escalation),
                )
                _queue_notifications(alert, kind=Notification.Kind.ALERT, round_=0, now=now)
                return alert
        if not rules.is_further_rise(
            escalation,
            severity=active.severity,
            score=active.score,
            value=active.value,
            indicator=active.indicator,
        ):
            # The rule fired (something changed since the previous run or observation)
            # but the active alert already says as much: keep the evidence only.
            _record(
                active,
                AlertEvent.Kind.NOTE,
                f"Raised again, no further rise: {escalation.summary}",
                now,
                run=run,
                observation=observation,
                data=_numbers(escalation),
            )
            return None
        for name, value in fields.items():
            setattr(active, name, value)
        active.status = Alert.Status.OPEN  # a further rise needs a fresh acknowledgement
        active.escalated_at = now
        active.escalation_count = F("escalation_count") + 1
        active.save()
        active.refresh_from_db()
        _record(
            active,
            AlertEvent.Kind.ESCALATED,
            escalation.summary,
            now,
            run=run,
            observation=observation,
            data=_numbers(escalation),
        )
        _queue_notifications(
            active, kind=Notification.Kind.ALERT, round_=active.escalation_count, now=now
        )
        return active


def _alert_fields(
    escalation: rules.Escalation, *, run: ScoringRun | None, observation: Observation | None
) -> dict[str, Any]:
    return {
        "rule": escalation.rule.value,
        "crime_type": escalation.crime_type,
        "severity": escalation.severity.value,
        "summary": escalation.summary,
        "period": escalation.period,
        "score": escalation.score,
        "previous_score": escalation.previous_score,
        "level": escalation.level or "",
        "previous_level": escalation.previous_level or "",
        "change_3m": escalation.change_3m,
        "change_3m_z": escalation.change_3m_z,
        "drivers": [list(d) for d in escalation.drivers],
        "indicator": escalation.indicator or "",
        "value": escalation.value,
        "run": run,
        "observation": observation,
    }


def _numbers(escalation: rules.Escalation) -> dict[str, Any]:
    return {
        "severity": escalation.severity.value,
        "score": escalation.score,
        "previous_score": escalation.previous_score,
        "level": escalation.level,
        "change_3m": escalation.change_3m,
        "change_3m_z": escalation.change_3m_z,
        "drivers": [list(d) for d in escalation.drivers],
        "indicator": escalation.indicator,
        "value": escalation.value,
    }


def _record(
    alert: Alert,
    kind: str,
    message: str,
    now: datetime,
    *,
    actor: Any = None,
    run: ScoringRun | None = None,
    observation: Observation | None = None,
    data: dict[str, Any] | None = None,
) -> AlertEvent:
    return AlertEvent.objects.create(
        alert=alert,
        kind=kind,
        actor=actor,
        message=message,
        run=run,
        observation=observation,
        data=data or {},
        created_at=now,
    )


# --- Notifications (the outbox) --------------------------------------------------------


def _queue_notifications(
    alert: Alert, *, kind: str, round_: int, now: datetime, users: Iterable[Any] | None = None
) -> list[Notification]:
    """Create one pending row per recipient and channel, then ask for a dispatch on commit.

    Recipients are the immediate subscribers covering the alert, or ``users``.
    """
    wanted: dict[tuple[int, str], Notification] = {}
    if users is None:
        subscriptions = selectors.covering_subscriptions(alert.country, alert.severity).filter(
            delivery=Subscription.Delivery.IMMEDIATE
        )
        pairs = [(s.user, s) for s in subscriptions]
    else:
        pairs = [(user, None) for user in users]
    for user, subscription in pairs:
        if user.email:
            wanted.setdefault(
                (user.pk, Notification.Channel.EMAIL),
                _notification(
                    alert, user, Notification.Channel.EMAIL, kind, round_, user.email, "", now
                ),
            )
        if subscription is not None and subscription.webhook_url:
            wanted.setdefault(
                (user.pk, Notification.Channel.WEBHOOK),
                _notification(
                    alert,
                    user,
                    Notification.Channel.WEBHOOK,
                    kind,
                    round_,
                    subscription.webhook_url,
                    subscription.webhook_secret,
                    now,
                ),
            )
    created = Notification.objects.bulk_create(wanted.values(), ignore_conflicts=True)
    if created:
        transaction.on_commit(_queue_dispatch)
    return created


def _notification(
    alert: Alert,
    user: Any,
    channel: str,
    kind: str,
    round_: int,
    target: str,
    secret: str,
    now: datetime,
) -> Notification:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return Notification(
        alert=alert,
        recipient=user,
        channel=channel,
        kind=kind,
        round=round_,
        target=target,
        webhook_secret=secret,
        created_at=now,
        next_attempt_at=now,
        message_id=f"<alert-{alert.pk}-{kind}-{round_}-{channel}-{user.pk}."
        f"{uuid.uuid4().hex[:12]}@{domain}>",
    )


def _queue_dispatch() -> None:
    from alerts import tasks  # tasks import this module

    tasks.dispatch_pending_notifications.delay()


@dataclass(frozen=True)
class DispatchResult:
    sent: int
    retrying: int
    failed: int


def dispatch_pending(
    *,
    now: datetime | None = None,
    limit: int = 200,
    lease: timedelta = DELIVERY_LEASE,
    clock: leases.Clock = timezone.now,
) -> DispatchResult:
    """Send pending notifications that are due; each row is claimed before it is sent.

    ``now`` decides which rows are due and is stored as their sent time. Leases run on
    ``clock`` (the real time, read at each claim and renewal): a row is claimed for
    ``lease`` from the moment it is claimed, and renewed while it is being sent, so two
    dispatchers never send the same row unless its holder died mid-send.

    Failures are retried with exponential back-off (30 s, 1 min, 2 min, ... capped at
    1 h; with the default 31 attempts the last comes about 24 h after the first). Any
    exception counts as a failed attempt, not only ``TransportError``: it is logged and
    stored, and the other rows are still sent. After the last attempt, or on a
    permanent failure, the row is marked failed and the failure is recorded on the
    alert. Running this twice sends once.
    """
    now = now or clock()
    max_attempts = selectors.alert_settings().max_delivery_attempts
    due = list(
        _due_notifications(now)
        .filter(leases.unclaimed(clock()))
        .values_list("pk", flat=True)[:limit]
    )
    sent = retrying = failed = 0
    for pk in due:
        held = leases.claim(
            _due_notifications(now),
            pk=pk,
            length=lease,
            clock=clock,
            attempts=F("attempts") + 1,
        )
        if held is None:
            continue  # another dispatcher has it, or has sent it
        notification = Notification.objects.select_related("alert__country", "recipient").get(pk=pk)
        try:
            with held.kept():
                TRANSPORTS[notification.channel]().send(notification)
        except Exception as exc:
            # Whatever the cause (a template error, a bad address, an HTTP library error),
            # one row must not stall the outbox or retry forever without a trace.
            permanent = isinstance(exc, TransportError) and exc.permanent
            error = str(exc) if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TransportError):
                logger.exception("Notification %s could not be sent", pk)
            # A row taken over meanwhile is the new holder's to finish: neither is counted.
            if permanent or notification.attempts >= max_attempts:
                if _mark_failed(notification, held, error, now):
                    failed += 1
            elif held.release(
                last_error=error, next_attempt_at=now + retry_delay(notification.attempts)
            ):
                retrying += 1
        else:
            sent += 1
            if not held.release(sent_at=now, last_error=""):
                # Our lease passed to another dispatcher during a send that outlasted it
                # without renewals (the database was unreachable): the relay may get this
                # message twice. It *was* sent, so record that, over whatever claim is left.
                logger.warning("Notification %s was sent after its lease was lost", pk)
                Notification.objects.filter(pk=pk, sent_at__isnull=True).update(
                    sent_at=now, claimed_until=None, last_error=""
                )
    return DispatchResult(sent=sent, retrying=retrying, failed=failed)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s doubling, capped at 1 h."""
    doublings = max(0, min(attempts - 1, 20))  # past 20 it is the cap anyway
    return min(RETRY_BASE * (1 << doublings), RETRY_CAP)


def _due_notifications(now: datetime) -> Any:
    """Unsent, unfailed rows whose next attempt is due at ``now``, held or not."""
    return Notification.objects.filter(
        sent_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "pk")


def _mark_failed(notification: Notification, held: leases.Lease, error: str, now: datetime) -> bool:
    """Mark the row failed and say so on the alert; False if the row is no longer ours."""
    with transaction.atomic():
        if not held.release(failed_at=now, last_error=error):
            return False
        _record(
            notification.alert,
            AlertEvent.Kind.DELIVERY_FAILED,
            f"{notification.get_channel_display()} to {notification.target} failed after "
            f"{notification.attempts} attempt(s): {error}",
            now,
            data={"notification": notification.pk},
        )
    return True


def retry_failed_notifications(
    *, notification_ids: Iterable[int], user: Any, now: datetime | None = None
) -> int:
    """Put failed notifications back in the outbox (administrators, e.g. after an outage)."""
    if not has_role(user, Role.ADMINISTRATOR):
        raise PermissionDenied("Only administrators can retry deliveries.")
    now = now or timezone.now()
    count = Notification.objects.filter(
        pk__in=list(notification_ids), failed_at__isnull=False, sent_at__isnull=True
    ).update(failed_at=None, next_attempt_at=now, attempts=0, claimed_until=None)
    if count:
        transaction.on_commit(_queue_dispatch)
    return count


# --- Reminders and escalation to administrators ----------------------------------------


def escalate_unacknowledged(*, now: datetime | None = None) -> list[Alert]:
    """Re-send critical alerts left unacknowledged and tell the administrators, once per
    escalation period (default 24 h) for as long as they stay unacknowledged."""
    now = now or timezone.now()
    period = timedelta(hours=selectors.alert_settings().escalation_hours)
    reminded = []
    candidates = Alert.objects.filter(
        status=Alert.Status.OPEN, severity=rules.Severity.CRITICAL
    ).select_related("country")
    for alert in candidates:
        since = max(filter(None, [alert.opened_at, alert.escalated_at, alert.last_reminder_at]))
        if now - since < period:
            continue
        with transaction.atomic():
            # Claim the reminder: only one worker wins for this period.
            won = Alert.objects.filter(
                pk=alert.pk, status=Alert.Status.OPEN, last_reminder_at=alert.last_reminder_at
            ).update(last_reminder_at=now)
            if not won:
                continue
            round_ = alert.events.filter(kind=AlertEvent.Kind.REMINDED).count() + 1
            recipients = {
                n.recipient
                for n in alert.notifications.filter(kind=Notification.Kind.ALERT).select_related(
                    "recipient"
                )
            }
            _queue_notifications(
                alert,
                kind=Notification.Kind.REMINDER,
                round_=round_,
                now=now,
                users=sorted(recipients, key=lambda u: u.pk),
            )
            admins = list(selectors.administrators())
            _queue_notifications(
                alert, kind=Notification.Kind.ADMIN_ESCALATION, round_=round_, now=now, users=admins
            )
            _record(
                alert,
                AlertEvent.Kind.REMINDED,
                f"Unacknowledged for {_hours(now - since)} h: re-sent to "
                f"{len(recipients)} recipient(s) and escalated to {len(admins)} "
                "administrator(s).",
                now,
            )
            reminded.append(alert)
    return reminded


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


# --- Lifecycle -------------------------------------------------------------------------


def can_act_on(alert: Alert, user: Any) -> bool:
    """Only the alert's recipients and administrators acknowledge, resolve or dismiss."""
    return has_role(user, Role.ADMINISTRATOR) or selectors.is_recipient(alert, user)


def alerts_user_can_act_on(alerts: Iterable[Alert], user: Any) -> set[int]:
    """``can_act_on`` for a page of alerts at once (the inbox's per-row actions)."""
    alerts = list(alerts)
    if has_role(user, Role.ADMINISTRATOR):
        return {alert.pk for alert in alerts}
    return selectors.alerts_received_or_covered(alerts, user)


def acknowledge(
    *, alert: Alert, user: Any, now: datetime | None = None, via_link: bool = False
) -> Alert:
    message = "Acknowledged from the e-mail link." if via_link else "Acknowledged."
    return _transition(
        alert,
        user,
        now,
        from_statuses=[Alert.Status.OPEN],
        kind=AlertEvent.Kind.ACKNOWLEDGED,
        message=message,
        refused="Only an open alert can be acknowledged.",
        status=Alert.Status.ACKNOWLEDGED,
        stamp="acknowledged",
    )


def resolve(*, alert: Alert, user: Any, note: str, now: datetime | None = None) -> Alert:
    return _transition(
        alert,
        user,
        now,
        from_statuses=Alert.ACTIVE,
        kind=AlertEvent.Kind.RESOLVED,
        message=note.strip() or "Resolved.",
        refused="Only an open or acknowledged alert can be resolved.",
        status=Alert.Status.RESOLVED,
        stamp="resolved",
        resolution_note=note.strip(),
    )


def dismiss(*, alert: Alert, user: Any, reason: str, now: datetime | None = None) -> Alert:
    if not reason.strip():
        _require(alert, user)
        raise ValidationError({"reason": "A dismissal needs a reason; it is kept."})
    return _transition(
        alert,
        user,
        now,
        from_statuses=Alert.ACTIVE,
        kind=AlertEvent.Kind.DISMISSED,
        message=reason.strip(),
        refused="Only an open or acknowledged alert can be dismissed.",
        status=Alert.Status.DISMISSED,
        stamp="dismissed",
        dismissal_reason=reason.strip(),
    )


def _transition(
    alert: Alert,
    user: Any,
    now: datetime | None,
    *,
    from_statuses: Iterable[str],
    kind: str,
    message: str,
    refused: str,
    status: str,
    stamp: str,
    **fields: Any,
) -> Alert:
    """Move an alert to ``status`` with a conditional UPDATE (so two people acting at once
    cannot both succeed), stamp ``<stamp>_at``/``<stamp>_by`` and record the event."""
    _require(alert, user)
    now = now or timezone.now()
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, status__in=list(from_statuses)).update(
            status=status, **{f"{stamp}_at": now, f"{stamp}_by": user}, **fields
        )
        if not changed:
            raise ValidationError(refused)
        _record(alert, kind, message, now, actor=user)
    alert.refresh_from_db()
    return alert


def add_note(*, alert: Alert, user: Any, text: str, now: datetime | None = None) -> AlertEvent:
    if not has_role(user):
        raise PermissionDenied("Only signed-in users with a role can add notes.")
    if not text.strip():
        raise ValidationError({"text": "A note cannot be empty."})
    return _record(alert, AlertEvent.Kind.NOTE, text.strip(), now or timezone.now(), actor=user)


def acknowledge_with_token(*, token: str, now: datetime | None = None) -> Alert:
    """Acknowledge through a signed e-mail link: it expires, works only once, and only for
    the escalation it was sent for (a later escalation needs its own e-mail's link)."""
    try:
        payload = signing.loads(
            token, salt=ACK_SALT, max_age=timedelta(days=settings.ALERT_ACK_LINK_MAX_AGE_DAYS)
        )
    except signing.SignatureExpired as exc:
        raise ValidationError("This acknowledgement link has expired.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This acknowledgement link is not valid.") from exc
    now = now or timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_related("alert", "recipient")
            .filter(pk=payload["n"])
            .first()
        )
        if notification is None:
            raise ValidationError("This acknowledgement link is not valid.")
        alert = notification.alert
        if alert.escalation_count != payload.get("e", 0):
            raise ValidationError(
                "This alert has escalated since this e-mail was sent: acknowledge it from "
                "the newer e-mail or the alert page, after reading what changed."
            )
        used = Notification.objects.filter(pk=notification.pk, ack_used_at__isnull=True).update(
            ack_used_at=now
        )
        if not used:
            raise ValidationError("This acknowledgement link has already been used.")
        if alert.status != Alert.Status.OPEN:
            raise ValidationError(f"This alert is already {alert.get_status_display().lower()}.")
        return acknowledge(alert=alert, user=notification.recipient, now=now, via_link=True)


def _require(alert: Alert, user: Any) -> None:
    if not can_act_on(alert, user):
        raise PermissionDenied("Only the alert's recipients and administrators can do this.")


# --- Subscriptions ---------------------------------------------------------------------


def save_subscription(*, subscription: Subscription, countries: Iterable[Country]) -> Subscription:
    """Create or update a subscription; a webhook gets its signing secret once.

    Raises ``ValidationError`` for a webhook URL that may not be posted to (see
    ``alerts.webhook_addresses``) and for a subscription that covers nothing.
    """
    try:
        validate_webhook_url(subscription.webhook_url)
    except ValidationError as exc:
        raise ValidationError({"webhook_url": exc.messages}) from exc
    if subscription.webhook_url and not subscription.webhook_secret:
        subscription.webhook_secret = Subscription.new_webhook_secret()
    if not subscription.all_countries and not subscription.regions and not list(countries):
        raise ValidationError("Choose countries, regions or all countries.")
    with transaction.atomic():
        subscription.save()
        subscription.countries.set(countries)
    return subscription


# --- Digests ---------------------------------------------------------------------------

# A digest is held like a notification (see DELIVERY_LEASE and alerts/leases.py).
DIGEST_LEASE = timedelta(minutes=10)
# Digests that could not be sent are retried on later runs for this long.
DIGEST_RETRY_WINDOW = timedelta(days=7)


def send_daily_digests(*, now: datetime | None = None, clock: leases.Clock = timezone.now) -> int:
    """Yesterday's alerts (UTC day) for digest subscribers, one e-mail each, at most once.

    A digest row is created per subscriber with alerts that day, then every unsent
    digest of the last week is claimed and sent, so a day's digest that failed goes
    out on a later run. Leases run on ``clock``, as in ``dispatch_pending``. Returns the
    number sent.
    """
    now = now or clock()
    end = _midnight(now)
    start = end - timedelta(days=1)
    alerts = list(selectors.alerts_between(start, end))
    for user, matched in _alerts_per_user(_digest_subscriptions(), alerts).items():
        if matched:
            _create_digest(user, Digest.Kind.DAILY, start, end, now)
    return sum(
        _send_digest(digest, now, clock, _daily_context)
        for digest in _unsent_digests(Digest.Kind.DAILY, now)
    )


def send_weekly_summaries(
    *, now: datetime | None = None, clock: leases.Clock = timezone.now
) -> int:
    """Last week's (Monday to Monday, UTC) new, open and resolved alerts and the biggest
    movers, for every focal point and every weekly-summary subscriber.

    A focal point without subscriptions gets every country (the e-mail says so); one
    whose subscriptions all opted out of the summary gets none. Rows are created on the
    Monday only; unsent ones are retried for a week. Returns the number sent.
    """
    now = now or timezone.now()
    end = _midnight(now) - timedelta(days=now.weekday())
    start = end - timedelta(days=7)
    if now - end < timedelta(days=1):
        for user in selectors.weekly_summary_recipients():
            _create_digest(user, Digest.Kind.WEEKLY, start, end, now)
    return sum(
        _send_digest(digest, now, clock, _weekly_context)
        for digest in _unsent_digests(Digest.Kind.WEEKLY, now)
    )


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _digest_subscriptions(user: Any = None) -> Any:
    subscriptions = Subscription.objects.filter(
        active=True, user__is_active=True, delivery=Subscription.Delivery.DIGEST
    )
    if user is not None:
        subscriptions = subscriptions.filter(user=user)
    return subscriptions.select_related("user").order_by("user_id")


def _daily_context(digest: Digest) -> dict[str, Any]:
    alerts = list(selectors.alerts_between(digest.period_start, digest.period_end))
    matched = _alerts_per_user(_digest_subscriptions(digest.user), alerts).get(digest.user, [])
    return {"alerts": matched, "start": digest.period_start, "end": digest.period_end}


def _weekly_context(digest: Digest) -> dict[str, Any]:
    start, end, user = digest.period_start, digest.period_end, digest.user
    week = list(
        Alert.objects.filter(
            Q(opened_at__gte=start, opened_at__lt=end)
            | Q(status__in=Alert.ACTIVE)
            | Q(resolved_at__gte=start, resolved_at__lt=end)
        ).select_related("country")
    )
    subscriptions = Subscription.objects.filter(
        user=user, active=True, weekly_summary=True
    ).order_by("pk")
    everything = not subscriptions.exists()
    matched = (
        week
        if everything
        else _alerts_per_user(subscriptions, week, any_severity=True).get(user, [])
    )
    return {
        "start": start,
        "end": end,
        "everything": everything,
        "new": [a for a in matched if start <= a.opened_at < end],
        "open": [a for a in matched if a.status in Alert.ACTIVE],
        "resolved": [a for a in matched if a.resolved_at and start <= a.resolved_at < end],
        "movers": selectors.biggest_movers(
            None if everything else _covered_countries(subscriptions)
        ),
    }


def _alerts_per_user(
    subscriptions: Any, alerts: list[Alert], *, any_severity: bool = False
) -> dict[Any, list[Alert]]:
    per_user: dict[Any, list[Alert]] = {}
    for subscription in subscriptions:
        allowed = subscription.min_severity
        countries = set(subscription.countries.values_list("pk", flat=True))
        regions = set(subscription.regions)
        bucket = per_user.setdefault(subscription.user, [])
        for alert in alerts:
            covers = (
                subscription.all_countries
                or alert.country_id in countries
                or {alert.country.region, alert.country.sub_region} & regions
            )
            severe = (
                any_severity or rules.Severity(alert.severity).rank >= rules.Severity(allowed).rank
            )
            if covers and severe and alert not in bucket:
                bucket.append(alert)
    return per_user


def _covered_countries(subscriptions: Any) -> list[Country] | None:
    if any(s.all_countries for s in subscriptions):
        return None
    regions = {r for s in subscriptions for r in s.regions}
    return list(
        Country.objects.filter(
            Q(subscriptions__in=list(subscriptions))
            | Q(region__in=regions)
            | Q(sub_region__in=regions)
        ).distinct()
    )


def _create_digest(user: Any, kind: str, start: datetime, end: datetime, now: datetime) -> None:
    if not user.email:
        return
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    Digest.objects.get_or_create(
        user=user,
        kind=kind,
        period_start=start,
        defaults={
            "period_end": end,
            "created_at": now,
            "message_id": f"<digest-{kind}-{user.pk}-{start:%Y%m%d}.{uuid.uuid4().hex[:12]}"
            f"@{domain}>",
        },
    )


def _unsent_digests(kind: str, now: datetime) -> list[Digest]:
    return list(
        Digest.objects.filter(
            kind=kind,
            sent_at__isnull=True,
            period_end__lte=now,
            period_end__gt=now - DIGEST_RETRY_WINDOW,
            user__is_active=True,
        )
        .select_related("user")
        .order_by("period_start", "pk")
    )


def _send_digest(digest: Digest, now: datetime, clock: leases.Clock, build: Any) -> int:
    """Claim one digest (a lease: two workers never both send it), send it, and only then
    mark it sent. A failure gives the claim up with the error, for a later run."""
    held = leases.claim(
        Digest.objects.filter(sent_at__isnull=True),
        pk=digest.pk,
        length=DIGEST_LEASE,
        clock=clock,
        attempts=F("attempts") + 1,
    )
    if held is None:
        return 0  # sent already, or another worker is sending it
    user, kind = digest.user, digest.kind
    try:
        with held.kept():
            context = {
                **build(digest),
                "user": user,
                "inbox_url": absolute_url("/alerts/"),
                "site_url": settings.SITE_URL,
            }
            count = len(context.get("alerts", context.get("new", [])))
            send_mail_message(
                to=user.email,
                subject=" ".join(
                    render_to_string(f"alerts/email/{kind}_subject.txt", context).split()
                ),
                text=render_to_string(f"alerts/email/{kind}.txt", context),
                html=render_to_string(f"alerts/email/{kind}.html", context),
                message_id=digest.message_id,
            )
    except Exception as exc:
        error = str(exc) if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}"
        held.release(last_error=error)
        logger.warning("Digest %s for %s failed: %s", kind, user, error)
        return 0
    if not held.release(sent_at=now, last_error="", alert_count=count):
        logger.warning("Digest %s was sent after its lease was lost", digest.pk)
        Digest.objects.filter(pk=digest.pk, sent_at__isnull=True).update(
            sent_at=now, claimed_until=None, last_error="", alert_count=count
        )
    return 1


def delete_subscription(*, subscription: Subscription) -> None:
    """Delete a subscription. Notifications already queued for its user are still sent:
    they belong to the alert and the recipient, not to the subscription that chose them."""
    subscription.delete()

"""Writes for alerts: evaluating runs and observations, the outbox, reminders, digests and
the alert lifecycle. Every step is safe to run twice."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from alerts import leases, rules, selectors
from alerts.models import (
    BASELINE_NUMBER_FIELDS,
    Alert,
    AlertEvent,
    AlertMessage,
    AlertMessageItem,
    Digest,
    Notification,
    RedFlagCheck,
    RunEvaluation,
    ScoreBaseline,
    Subscription,
)
from alerts.transports import (
    ACK_SALT,
    TRANSPORTS,
    TransportError,
    absolute_url,
    send_mail_message,
    site_url,
)
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
# An *event* is a scoring run, or a batch of observations recorded together (an upload,
# a form, an API batch). Everything one event raises for one country reaches each focal
# point as one message listing every trigger, most urgent first. The red flags of
# observations whose country is about to be rescored wait for that run, so that an
# upload's red flags and the crossings and surge it causes arrive together.

# A red flag left waiting for a run that never came (a failed or stuck recompute) is
# raised on its own by the safety net after this long.
RED_FLAG_WAIT_FOR_RUN = timedelta(minutes=10)


def evaluate_scoring_run(*, run_id: int, now: datetime | None = None) -> list[Alert]:
    """Raise or escalate alerts for one finished scoring run, once per run.

    Each country's scores at the run's latest period are compared with its baseline
    (what the previous evaluated run had), which they then replace. A country whose
    baseline comes from a newer run is left alone: evaluating runs out of order never
    moves a baseline back. Red flags of the run's countries recorded before the run
    started and not checked yet are part of the same event. Returns the alerts opened
    or escalated; each country's go to its focal points as one message.
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
        thresholds = selectors.alert_thresholds()
        escalations = rules.find_escalations(baseline, current, thresholds)
        flags = _claim_red_flags(
            selectors.unchecked_red_flag_candidates(
                since=now - RED_FLAG_SAFETY_WINDOW,
                thresholds=thresholds,
                today=now.date(),
                # Every country the run was asked to score, scored or not: a red flag
                # dated this month may be a country's first data (no month end yet).
                countries=run.countries or None,
                updated_before=run.started_at,
            ),
            thresholds=thresholds,
            now=now,
        )
        alerts = _apply_event([*escalations, *flags], run=run, now=now)
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
                overall_crime=row["overall_crime"] or "",
                contributions=row["contributions"] or {},
                factor_scores=row["factor_scores"] or {},
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
            "overall_crime",
            "contributions",
            "factor_scores",
            "evaluated_at",
        ],
    )


def _float(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # NaN != NaN


def evaluate_red_flags(
    *, observation_ids: Iterable[int], now: datetime | None = None
) -> list[Alert]:
    """Raise or escalate red-flag alerts for newly recorded observations, once per version.

    The observations are one event. Those a scoring run still to come will read (a
    recompute requested with them, or a run started since, not evaluated yet) are left
    to that run's evaluation, so that the country's focal points get one message with the red
    flags and whatever the new scores show; the safety net (``evaluate_missed``) raises
    them on their own if that run never comes. Returns the alerts opened or escalated.
    """
    now = now or timezone.now()
    thresholds = selectors.alert_thresholds()
    ids = list(observation_ids)
    frame = selectors.observations_for_red_flags(ids, thresholds=thresholds)
    if frame.empty:
        return []
    frame = frame[~selectors.awaiting_a_run(frame)]
    with transaction.atomic():
        flags = _claim_red_flags(frame, thresholds=thresholds, now=now)
        return _apply_event(flags, now=now)


def _claim_red_flags(
    frame: pd.DataFrame, *, thresholds: rules.AlertThresholds, now: datetime
) -> list[rules.Escalation]:
    """The red flags among candidate observations (``selectors.observations_for_red_flags``
    columns), each observation version checked once: versions another worker checked
    already are left out. Call inside a transaction: the checks commit with the alerts."""
    if frame.empty:
        return []
    claimed = _insert_red_flag_checks(zip(frame["id"], frame["updated_at"], strict=True), now)
    return rules.find_red_flags(frame[frame["id"].isin(claimed)], thresholds, today=now.date())


def _insert_red_flag_checks(versions: Iterable[tuple[int, Any]], now: datetime) -> set[int]:
    """Insert a check of each (observation id, updated_at) not checked yet, in a few
    statements (an upload's red flags are thousands); returns the observation ids whose
    check this call inserted. A version checked already (by another worker, even one
    still in its transaction, which this waits for) is skipped, never an error."""
    table = connection.ops.quote_name(RedFlagCheck._meta.db_table)
    field = RedFlagCheck._meta.get_field("observation_updated_at")
    checked_at = field.get_db_prep_value(now, connection)
    rows = [
        (
            int(observation_id),
            field.get_db_prep_value(pd.Timestamp(updated).to_pydatetime(), connection),
        )
        for observation_id, updated in versions
    ]
    claimed: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            cursor.execute(
                f"INSERT INTO {table} (observation_id, observation_updated_at, checked_at) "
                f"VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))} "
                "ON CONFLICT (observation_id, observation_updated_at) DO NOTHING "
                "RETURNING observation_id",
                [
                    value
                    for observation_id, updated in chunk
                    for value in (observation_id, updated, checked_at)
                ],
            )
            claimed.update(observation_id for (observation_id,) in cursor.fetchall())
    return claimed


def evaluate_missed(*, now: datetime | None = None) -> int:
    """Safety net on a schedule: evaluate runs and red flags the on-commit path missed.

    Red flags waiting for their country's run are left to it for
    ``RED_FLAG_WAIT_FOR_RUN``, then raised on their own.
    """
    now = now or timezone.now()
    runs = ScoringRun.objects.filter(
        status=ScoringRun.Status.SUCCEEDED,
        evaluation__isnull=True,
        finished_at__gte=now - RED_FLAG_SAFETY_WINDOW,
    ).order_by("started_at")
    count = sum(len(evaluate_scoring_run(run_id=run.pk, now=now)) for run in runs)
    thresholds = selectors.alert_thresholds()
    frame = selectors.unchecked_red_flag_candidates(
        since=now - RED_FLAG_SAFETY_WINDOW, thresholds=thresholds, today=now.date()
    )
    if frame.empty:
        return count
    frame = frame[
        ~selectors.awaiting_a_run(frame) | (frame["updated_at"] < now - RED_FLAG_WAIT_FOR_RUN)
    ]
    with transaction.atomic():
        flags = _claim_red_flags(frame, thresholds=thresholds, now=now)
        count += len(_apply_event(flags, now=now))
    return count


def _apply_event(
    escalations: list[rules.Escalation], *, run: ScoringRun | None = None, now: datetime
) -> list[Alert]:
    """Apply one event's escalations, then queue one message per country for the alerts
    it opened or escalated. Returns those alerts, the most urgent first per country."""
    observation_ids = [e.observation_id for e in escalations if e.observation_id]
    observations = Observation.objects.in_bulk(observation_ids)
    countries = Country.objects.in_bulk({e.country for e in escalations}, field_name="iso3")
    news: dict[str, list[Alert]] = {}
    for escalation in escalations:
        alert = apply_escalation(
            escalation,
            run=run,
            observation=observations.get(escalation.observation_id or 0),
            now=now,
            country=countries[escalation.country],
        )
        if alert is not None:
            news.setdefault(escalation.country, []).append(alert)
    alerts: list[Alert] = []
    for iso3 in sorted(news):
        ordered = sorted(news[iso3], key=_urgency)
        _send_message(countries[iso3], ordered, kind=AlertMessage.Kind.ALERT, run=run, now=now)
        alerts.extend(ordered)
    return alerts


def _urgency(alert: Alert) -> tuple[int, float, float, int, int]:
    return selectors.alert_urgency(alert)


def apply_escalation(
    escalation: rules.Escalation,
    *,
    run: ScoringRun | None = None,
    observation: Observation | None = None,
    now: datetime,
    country: Country | None = None,
) -> Alert | None:
    """Open an alert, or escalate the active one for the same (country, rule, crime type).

    Returns the alert opened or escalated (news for the focal points), or None when the
    active alert already says as much: the evidence is still recorded in its history,
    and a newer red-flag assessment no higher than the one held brings the alert's
    evidence and date up to date. Messages are the caller's (``_apply_event``).
    """
    country = country or Country.objects.get(iso3=escalation.country)
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
            fields = _alert_fields(escalation, run=run, observation=observation)
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
                return alert
        if escalation.rule is rules.Rule.RED_FLAG:
            return _apply_red_flags(active, escalation, run=run, now=now)
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
        fields = _alert_fields(escalation, run=run, observation=observation)
        return _escalate(active, fields, escalation, run=run, observation=observation, now=now)


def _escalate(
    active: Alert,
    fields: dict[str, Any],
    escalation: rules.Escalation,
    *,
    run: ScoringRun | None,
    observation: Observation | None,
    now: datetime,
) -> Alert:
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
        fields["summary"],
        now,
        run=run,
        observation=observation,
        data=_numbers(escalation),
    )
    return active


def _apply_red_flags(
    active: Alert, escalation: rules.Escalation, *, run: ScoringRun | None, now: datetime
) -> Alert | None:
    """Weigh an event's red flags against those an open alert holds, flag by flag."""
    held = _held_flags(active)
    verdict = rules.weigh_red_flags(
        escalation,
        {flag["indicator"]: (flag["value"], _date(flag["observed_on"])) for flag in held},
    )
    evidence = _merge_flags(held, [*verdict.rises, *verdict.confirmations])
    newest = max(_date(flag["observed_on"]) for flag in evidence)
    if verdict.rises:
        lead = verdict.rises[0]
        severity = max(
            rules.Severity(active.severity),
            rules.Severity(escalation.severity),
            key=lambda s: s.rank,
        )
        observation = Observation.objects.filter(pk=lead.observation_id).first()
        fields = {
            "severity": severity.value,
            "summary": rules.red_flag_summary(verdict.rises),
            "period": max(newest, active.period),
            "indicator": lead.indicator,
            "value": lead.value,
            "observation": observation,
            "red_flags": evidence,
            "run": run or active.run,
        }
        return _escalate(active, fields, escalation, run=run, observation=observation, now=now)
    if verdict.confirmations:
        newer = verdict.confirmations[0]
        active.red_flags = evidence
        active.period = max(newest, active.period)
        active.observation = Observation.objects.filter(pk=newer.observation_id).first()
        active.save(update_fields=["red_flags", "period", "observation"])
        _record(
            active,
            AlertEvent.Kind.NOTE,
            "Confirmed by a newer assessment, no higher than the one held: "
            + rules.red_flag_summary(verdict.confirmations),
            now,
            run=run,
            observation=active.observation,
            data=_numbers(escalation),
        )
        return None
    _record(
        active,
        AlertEvent.Kind.NOTE,
        f"Raised again, no further rise: {escalation.summary}",
        now,
        run=run,
        data=_numbers(escalation),
    )
    return None


def _held_flags(alert: Alert) -> list[dict[str, Any]]:
    """The red flags an alert holds; an alert opened before they were kept holds its one
    indicator and value, as of its period."""
    if alert.red_flags:
        return list(alert.red_flags)
    if not alert.indicator or alert.value is None:
        return []
    return [
        {
            "indicator": alert.indicator,
            "name": "",
            "value": alert.value,
            "observed_on": alert.period.isoformat(),
            "observation": alert.observation_id,
            "source": "",
            "dataset": "",
        }
    ]


def _flag_record(flag: rules.RedFlag) -> dict[str, Any]:
    return {
        "indicator": flag.indicator,
        "name": flag.name,
        "value": flag.value,
        "observed_on": flag.observed_on.isoformat(),
        "observation": flag.observation_id,
        "source": flag.source,
        "dataset": flag.dataset,
    }


def _merge_flags(
    held: list[dict[str, Any]], flags: Iterable[rules.RedFlag]
) -> list[dict[str, Any]]:
    """One record per indicator: the highest value, then the newest. Highest first."""
    merged = {record["indicator"]: record for record in held}
    for flag in flags:
        record = _flag_record(flag)
        kept = merged.get(flag.indicator)
        if kept is None or (record["value"], record["observed_on"]) > (
            kept["value"],
            kept["observed_on"],
        ):
            merged[flag.indicator] = record
    return sorted(
        merged.values(),
        key=lambda r: (-r["value"], -_date(r["observed_on"]).toordinal(), r["indicator"]),
    )


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _alert_fields(
    escalation: rules.Escalation, *, run: ScoringRun | None, observation: Observation | None
) -> dict[str, Any]:
    switch = escalation.crime_switch
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
        "drivers_crime": escalation.drivers_crime,
        "crime_switch": (
            None
            if switch is None
            else {"from": switch.from_crime, "to": switch.to_crime, "change": switch.change}
        ),
        "compared_with": escalation.compared_with,
        "baseline_period": escalation.baseline_period,
        "indicator": escalation.indicator or "",
        "value": escalation.value,
        "red_flags": _merge_flags([], escalation.flags),
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
        "flags": [_flag_record(flag) for flag in escalation.flags],
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


# --- Messages and notifications (the outbox) -------------------------------------------


def _send_message(
    country: Country,
    alerts: list[Alert],
    *,
    kind: str,
    now: datetime,
    run: ScoringRun | None = None,
    recipients: Iterable[Any] | None = None,
    administrators: Iterable[Any] = (),
    round_: int | None = None,
) -> AlertMessage:
    """One message about ``alerts`` (one country's, most urgent first) and one pending
    notification per recipient and channel; a dispatch is asked for on commit.

    Recipients are the immediate subscribers covering the country at the message's
    severity (its most severe alert), or ``recipients``; ``administrators`` get it as an
    escalation to administrators.
    """
    severity = max((rules.Severity(a.severity) for a in alerts), key=lambda s: s.rank)
    message = AlertMessage.objects.create(
        country=country, kind=kind, severity=severity.value, run=run, created_at=now
    )
    AlertMessageItem.objects.bulk_create(
        AlertMessageItem(
            message=message, alert=alert, position=position, escalation_count=alert.escalation_count
        )
        for position, alert in enumerate(alerts)
    )
    lead = alerts[0]
    round_ = lead.escalation_count if round_ is None else round_
    notification_kind = (
        Notification.Kind.ALERT if kind == AlertMessage.Kind.ALERT else Notification.Kind.REMINDER
    )
    wanted: dict[tuple[int, str, str], Notification] = {}
    if recipients is None:
        subscriptions = selectors.covering_subscriptions(country, severity.value).filter(
            delivery=Subscription.Delivery.IMMEDIATE
        )
        pairs = [(s.user, s) for s in subscriptions]
    else:
        pairs = [(user, None) for user in recipients]
    pairs += [(user, "admin") for user in administrators]
    for user, subscription in pairs:
        this_kind = (
            Notification.Kind.ADMIN_ESCALATION if subscription == "admin" else notification_kind
        )
        if user.email:
            wanted.setdefault(
                (user.pk, Notification.Channel.EMAIL, this_kind),
                _notification(
                    message,
                    lead,
                    user,
                    Notification.Channel.EMAIL,
                    this_kind,
                    round_,
                    user.email,
                    "",
                    now,
                ),
            )
        if isinstance(subscription, Subscription) and subscription.webhook_url:
            wanted.setdefault(
                (user.pk, Notification.Channel.WEBHOOK, this_kind),
                _notification(
                    message,
                    lead,
                    user,
                    Notification.Channel.WEBHOOK,
                    this_kind,
                    round_,
                    subscription.webhook_url,
                    subscription.webhook_secret,
                    now,
                ),
            )
    created = Notification.objects.bulk_create(wanted.values(), ignore_conflicts=True)
    if created:
        transaction.on_commit(_queue_dispatch)
    return message


def _notification(
    message: AlertMessage,
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
        alert_message=message,
        alert=alert,
        recipient=user,
        channel=channel,
        kind=kind,
        round=round_,
        target=target,
        webhook_secret=secret,
        created_at=now,
        next_attempt_at=now,
        message_id=f"<alert-{message.pk}-{kind}-{channel}-{user.pk}."
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
        notification = Notification.objects.select_related(
            "alert__country", "alert_message__country", "recipient"
        ).get(pk=pk)
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
        # Every alert the message carried shows that its news did not get through.
        for alert in notification.alert_message.alerts.all():
            _record(
                alert,
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
    escalation period (default 24 h) for as long as they stay unacknowledged.

    The alerts of one country due at once go out as one reminder message, to everyone
    who was sent any of them and to the administrators.
    """
    now = now or timezone.now()
    period = timedelta(hours=selectors.alert_settings().escalation_hours)
    reminded = []
    candidates = Alert.objects.filter(
        status=Alert.Status.OPEN, severity=rules.Severity.CRITICAL
    ).select_related("country")
    due: dict[int, list[tuple[Alert, datetime]]] = {}
    for alert in candidates:
        since = max(filter(None, [alert.opened_at, alert.escalated_at, alert.last_reminder_at]))
        if now - since >= period:
            due.setdefault(alert.country_id, []).append((alert, since))
    for country_alerts in due.values():
        with transaction.atomic():
            won = []
            for alert, since in country_alerts:
                # Claim the reminder: only one worker wins for this period.
                if Alert.objects.filter(
                    pk=alert.pk, status=Alert.Status.OPEN, last_reminder_at=alert.last_reminder_at
                ).update(last_reminder_at=now):
                    won.append((alert, since))
            if not won:
                continue
            alerts = sorted((alert for alert, _since in won), key=_urgency)
            recipients = sorted(
                {
                    n.recipient
                    for n in Notification.objects.filter(
                        alert_message__alerts__in=alerts, kind=Notification.Kind.ALERT
                    ).select_related("recipient")
                },
                key=lambda u: u.pk,
            )
            admins = list(selectors.administrators())
            round_ = alerts[0].events.filter(kind=AlertEvent.Kind.REMINDED).count() + 1
            _send_message(
                alerts[0].country,
                alerts,
                kind=AlertMessage.Kind.REMINDER,
                now=now,
                recipients=recipients,
                administrators=admins,
                round_=round_,
            )
            for alert, since in won:
                _record(
                    alert,
                    AlertEvent.Kind.REMINDED,
                    f"Unacknowledged for {_hours(now - since)} h: re-sent to "
                    f"{len(recipients)} recipient(s) and escalated to {len(admins)} "
                    "administrator(s).",
                    now,
                )
            reminded.extend(alerts)
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


@dataclass(frozen=True)
class LinkAcknowledgement:
    """What an e-mail's acknowledgement link did: the alerts it acknowledged, and those
    of the same message it left because they rose (or were acted on) since."""

    acknowledged: list[Alert]
    left: list[tuple[Alert, str]]


def notification_for_token(token: str) -> Notification:
    """The notification an acknowledgement link was sent with, for the page that asks to
    confirm. Raises ``ValidationError`` for an expired or forged link."""
    try:
        payload = signing.loads(
            token, salt=ACK_SALT, max_age=timedelta(days=settings.ALERT_ACK_LINK_MAX_AGE_DAYS)
        )
    except signing.SignatureExpired as exc:
        raise ValidationError("This acknowledgement link has expired.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This acknowledgement link is not valid.") from exc
    notification = (
        Notification.objects.select_related("alert_message__country", "recipient")
        .filter(pk=payload.get("n"))
        .first()
    )
    if notification is None:
        raise ValidationError("This acknowledgement link is not valid.")
    return notification


def acknowledge_with_token(*, token: str, now: datetime | None = None) -> LinkAcknowledgement:
    """Acknowledge through a signed e-mail link: it expires, works only once, and only for
    what the e-mail said. Every alert of its message that is still open and has not
    escalated since is acknowledged for the recipient; a later escalation needs its own
    e-mail's link (or the alert page). Raises ``ValidationError`` when nothing could be
    acknowledged."""
    notification = notification_for_token(token)
    now = now or timezone.now()
    with transaction.atomic():
        items = list(
            notification.alert_message.items.select_related("alert__country").order_by("position")
        )
        fresh = [
            item.alert for item in items if item.alert.escalation_count == item.escalation_count
        ]
        if not fresh:
            raise ValidationError(
                "This alert has escalated since this e-mail was sent: acknowledge it from "
                "the newer e-mail or the alert page, after reading what changed."
            )
        used = Notification.objects.filter(pk=notification.pk, ack_used_at__isnull=True).update(
            ack_used_at=now
        )
        if not used:
            raise ValidationError("This acknowledgement link has already been used.")
        acknowledged, left = [], []
        for item in items:
            alert = item.alert
            if alert.escalation_count != item.escalation_count:
                left.append((alert, "it has escalated since this e-mail was sent"))
            elif alert.status != Alert.Status.OPEN:
                left.append((alert, f"it is already {alert.get_status_display().lower()}"))
            else:
                acknowledged.append(
                    acknowledge(alert=alert, user=notification.recipient, now=now, via_link=True)
                )
        if not acknowledged:
            if len(items) == 1:
                raise ValidationError(
                    f"This alert is already {items[0].alert.get_status_display().lower()}."
                )
            raise ValidationError("These alerts are already acknowledged, resolved or dismissed.")
    return LinkAcknowledgement(acknowledged=acknowledged, left=left)


def acknowledge_many(*, alerts: Iterable[Alert], user: Any, now: datetime | None = None) -> int:
    """Acknowledge several open alerts at once (the inbox's bulk action); the ones the
    user may not act on, or that are no longer open, are left. Returns how many were."""
    alerts = [alert for alert in alerts if alert.status == Alert.Status.OPEN]
    allowed = alerts_user_can_act_on(alerts, user)
    count = 0
    for alert in alerts:
        if alert.pk not in allowed:
            continue
        try:
            acknowledge(alert=alert, user=user, now=now)
        except ValidationError:
            continue  # acknowledged by someone else meanwhile
        count += 1
    return count


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
    return {
        "alerts": matched,
        "groups": _by_country(matched),
        "start": digest.period_start,
        "end": digest.period_end,
    }


def _by_country(alerts: list[Alert]) -> list[selectors.CountryAlerts]:
    """Alerts grouped by country, the most urgent country and alert first."""
    groups: dict[int, list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: (_urgency(a), -a.pk)):
        groups.setdefault(alert.country_id, []).append(alert)
    return [selectors.CountryAlerts(country=g[0].country, alerts=g) for g in groups.values()]


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
        "new": sorted(
            (a for a in matched if start <= a.opened_at < end), key=lambda a: (_urgency(a), -a.pk)
        ),
        "open": sorted(
            (a for a in matched if a.status in Alert.ACTIVE), key=lambda a: (_urgency(a), -a.pk)
        ),
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
                "site_url": site_url(),
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

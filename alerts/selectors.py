"""Reads for alerts: scores to evaluate, who covers what, inbox and digest contents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Q, QuerySet

from alerts.models import (
    BASELINE_NUMBER_FIELDS,
    Alert,
    AlertSettings,
    Notification,
    ScoreBaseline,
    Subscription,
)
from alerts.rules import AlertThresholds, Severity, red_flag_window_start
from countries.models import Country
from indicators import selectors as indicator_selectors
from indicators.models import (
    RISK_SCORE_NUMBER_FIELDS,
    Observation,
    RiskLevel,
    RiskScore,
    ScoringRun,
)
from indicators.roles import Role
from indicators.scoring import Thresholds

SCORE_COLUMNS = ["country", "period", *RISK_SCORE_NUMBER_FIELDS, "contributions"]


def alert_settings() -> AlertSettings:
    return AlertSettings.objects.filter(pk=1).first() or AlertSettings(pk=1)


def alert_thresholds() -> AlertThresholds:
    published = indicator_selectors.published_methodology()
    levels = Thresholds(**published.thresholds) if published else Thresholds()
    current = alert_settings()
    return AlertThresholds(
        moderate_from=levels.moderate_from,
        high_from=levels.high_from,
        very_high_from=levels.very_high_from,
        min_coverage=levels.min_coverage,
        surge_points=current.surge_points,
        surge_z=current.surge_z,
        red_flag_severity=current.red_flag_severity,
        red_flag_window_days=current.red_flag_window_days,
    )


def run_latest_scores(run: ScoringRun) -> pd.DataFrame:
    """Each country's scores at the run's last period, as written by ``run`` (a country
    whose row a later run has overwritten since is left to that run), with the
    contributions three months earlier (``contributions_3m_before``), the window of
    ``change_3m``. Columns: SCORE_COLUMNS, methodology, contributions_3m_before. Two
    queries."""
    columns = [*SCORE_COLUMNS, "methodology", "contributions_3m_before"]
    if run.period_end is None:
        return pd.DataFrame(columns=columns)
    rows = list(
        RiskScore.objects.filter(
            methodology_id=run.methodology_id, period=run.period_end, run=run
        ).values_list("country__iso3", *SCORE_COLUMNS[1:], "methodology_id")
    )
    window_start = (pd.Timestamp(run.period_end) - pd.offsets.MonthEnd(3)).date()
    earlier = dict(
        RiskScore.objects.filter(
            methodology_id=run.methodology_id,
            period=window_start,
            country__iso3__in=[row[0] for row in rows],
        ).values_list("country__iso3", "contributions")
    )
    frame = pd.DataFrame.from_records(rows, columns=[*SCORE_COLUMNS, "methodology"])
    frame["contributions_3m_before"] = [earlier.get(iso3) for iso3 in frame["country"]]
    return frame


def score_baselines(countries: Iterable[str], *, for_update: bool = False) -> pd.DataFrame:
    """The scores the alert rules last evaluated for these ISO3 codes: the columns of
    SCORE_COLUMNS but change_12m, with methodology and run_started_at. One query;
    ``for_update`` locks the rows (inside a transaction) so that two evaluations of the
    same country take turns."""
    fields = [*BASELINE_NUMBER_FIELDS, "contributions"]
    baselines = ScoreBaseline.objects.filter(country__iso3__in=list(countries))
    if for_update:
        baselines = baselines.select_for_update(of=("self",))
    rows = baselines.order_by("country_id").values_list(
        "country__iso3", "period", *fields, "methodology_id", "run_started_at"
    )
    return pd.DataFrame.from_records(
        list(rows), columns=["country", "period", *fields, "methodology", "run_started_at"]
    )


def observations_for_red_flags(
    observation_ids: Iterable[int], *, thresholds: AlertThresholds
) -> pd.DataFrame:
    """Of these observations, those that could be red flags under ``thresholds`` (on a
    red-flag factor or indicator, severe enough): the rule in ``alerts.rules`` decides.

    Columns id, country, indicator, factor, observed_on, value, source, updated_at. The
    database does the first cut, so a batch of 100,000 rows reads only its candidates.
    """
    candidates = Observation.objects.filter(
        pk__in=list(observation_ids), value__gte=thresholds.red_flag_severity - 1e-9
    ).filter(
        Q(indicator__factor__code__in=thresholds.red_flag_factors)
        | Q(indicator__code__in=thresholds.red_flag_indicators)
    )
    rows = candidates.values_list(
        "id",
        "country__iso3",
        "indicator__code",
        "indicator__factor__code",
        "observed_on",
        "value",
        "source",
        "updated_at",
    )
    return pd.DataFrame.from_records(
        list(rows),
        columns=[
            "id",
            "country",
            "indicator",
            "factor",
            "observed_on",
            "value",
            "source",
            "updated_at",
        ],
    )


def unchecked_red_flag_candidates(
    *, since: datetime, thresholds: AlertThresholds, today: date
) -> list[int]:
    """Observations changed since ``since`` that could be red flags and were not checked."""
    return list(
        Observation.objects.filter(
            updated_at__gte=since,
            value__gte=thresholds.red_flag_severity - 1e-9,
            observed_on__gte=red_flag_window_start(today, thresholds),
        )
        .filter(
            Q(indicator__factor__code__in=thresholds.red_flag_factors)
            | Q(indicator__code__in=thresholds.red_flag_indicators)
        )
        .exclude(red_flag_checks__observation_updated_at=F("updated_at"))
        .values_list("id", flat=True)
    )


def covering_subscriptions(country: Country, severity: str) -> QuerySet[Subscription]:
    """Active subscriptions of active users that cover ``country`` at ``severity``."""
    allowed = [s.value for s in Severity if s.rank <= Severity(severity).rank]
    candidates = Subscription.objects.filter(
        active=True, user__is_active=True, min_severity__in=allowed
    )
    if connection.features.supports_json_field_contains:
        covering = candidates.filter(
            Q(all_countries=True)
            | Q(countries=country)
            | Q(regions__contains=[country.region])
            | Q(regions__contains=[country.sub_region])
        )
    else:
        # SQLite cannot look inside JSON lists; subscriptions are few, so filter here.
        covering = candidates.filter(
            pk__in=[
                s.pk
                for s in candidates.prefetch_related("countries")
                if s.all_countries
                or country in s.countries.all()
                or {country.region, country.sub_region} & set(s.regions)
            ]
        )
    return covering.select_related("user").distinct().order_by("user_id", "pk")


def administrators() -> QuerySet[Any]:
    """Active users holding the Administrator role, with an e-mail address."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name=Role.ADMINISTRATOR.value))
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )


def weekly_summary_recipients() -> QuerySet[Any]:
    """Who gets the weekly summary: every active focal point with an e-mail address, and
    anyone else with an active subscription that asks for it; minus focal points whose
    subscriptions all opted out of it."""
    subscribed = Subscription.objects.filter(active=True)
    opted_out = subscribed.values("user").exclude(
        user__in=subscribed.filter(weekly_summary=True).values("user")
    )
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(groups__name=Role.FOCAL_POINT.value)
            | Q(alert_subscriptions__in=subscribed.filter(weekly_summary=True))
        )
        .exclude(email="")
        .exclude(pk__in=opted_out)
        .distinct()
        .order_by("pk")
    )


def is_recipient(alert: Alert, user: Any) -> bool:
    """Whether ``user`` received the alert, or covers it through a subscription."""
    if Notification.objects.filter(alert=alert, recipient=user).exists():
        return True
    return covering_subscriptions(alert.country, alert.severity).filter(user=user).exists()


def alerts_received_or_covered(alerts: Iterable[Alert], user: Any) -> set[int]:
    """The ids among ``alerts`` that ``is_recipient`` holds for: received by ``user``, or
    covered by one of their subscriptions at the alert's severity. Three queries for
    any number of alerts (alerts need their country loaded)."""
    alerts = list(alerts)
    received = set(
        Notification.objects.filter(
            alert_id__in=[a.pk for a in alerts], recipient=user
        ).values_list("alert_id", flat=True)
    )
    subscriptions = list(
        Subscription.objects.filter(user=user, active=True, user__is_active=True).prefetch_related(
            "countries"
        )
    )
    covered = {
        alert.pk
        for alert in alerts
        if any(
            Severity(s.min_severity).rank <= Severity(alert.severity).rank
            and (
                s.all_countries
                or alert.country in s.countries.all()
                or {alert.country.region, alert.country.sub_region} & set(s.regions)
            )
            for s in subscriptions
        )
    }
    return received | covered


def inbox(
    *, status: str = "", severity: str = "", region: str = "", recipient: Any = None
) -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("country", "acknowledged_by")
    if status == "active":
        alerts = alerts.filter(status__in=Alert.ACTIVE)
    elif status:
        alerts = alerts.filter(status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    if region:
        alerts = alerts.filter(Q(country__region=region) | Q(country__sub_region=region))
    if recipient is not None:
        alerts = alerts.filter(notifications__recipient=recipient).distinct()
    return alerts.order_by("-opened_at", "-pk")


def active_alerts_for_country(country: Country) -> QuerySet[Alert]:
    return Alert.objects.filter(country=country, status__in=Alert.ACTIVE).order_by("-opened_at")


def alert_markers(country: Country) -> list[tuple[Any, str]]:
    """(date, label) of the newest 200 alerts on a country, oldest first, for its trend
    chart. One query."""
    return [
        (period, f"{severity.capitalize()}: {summary}")
        for period, severity, summary in reversed(
            Alert.objects.filter(country=country)
            .order_by("-period", "-pk")
            .values_list("period", "severity", "summary")[:200]
        )
    ]


def alerts_between(start: datetime, end: datetime) -> QuerySet[Alert]:
    """Alerts opened or escalated in [start, end)."""
    return (
        Alert.objects.filter(
            Q(opened_at__gte=start, opened_at__lt=end)
            | Q(escalated_at__gte=start, escalated_at__lt=end)
        )
        .select_related("country")
        .order_by("-opened_at")
    )


def latest_published_score(country: Country) -> dict[str, Any] | None:
    """The country's newest published overall score: period, overall, level, level_label
    and change_3m; None before it has one. One query after the methodology lookup."""
    methodology = indicator_selectors.published_methodology()
    if methodology is None:
        return None
    score = (
        RiskScore.objects.filter(methodology=methodology, country=country)
        .order_by("-period")
        .values("period", "overall", "level", "change_3m")
        .first()
    )
    if score is None or score["overall"] is None:
        return None
    return {**score, "level_label": RiskLevel(score["level"]).label.lower()}


def biggest_movers(countries: Iterable[Country] | None, *, limit: int = 5) -> list[dict[str, Any]]:
    """The largest 3-month rises at the newest scored period of the published scores."""
    methodology = indicator_selectors.published_methodology()
    if methodology is None:
        return []
    scores = RiskScore.objects.filter(methodology=methodology)
    latest = scores.order_by("-period").values_list("period", flat=True).first()
    scores = scores.filter(period=latest, change_3m__isnull=False)
    if countries is not None:
        scores = scores.filter(country__in=list(countries))
    return list(
        scores.order_by("-change_3m").values(
            "country__name", "country__iso3", "overall", "change_3m", "level"
        )[:limit]
    )


# --- REST API ----------------------------------------------------------------------------


def alerts_for_api() -> QuerySet[Alert]:
    """Alerts with the users the API names, and ``severity_rank`` to order by severity.

    ``severity_rank`` is 0 for info, 1 for warning, 2 for critical (``SEVERITY_ORDER``):
    ordering by the severity text would put critical first and warning last.
    """
    from django.db.models import Case, IntegerField, Value, When

    from alerts.rules import SEVERITY_ORDER

    rank = Case(
        *(When(severity=s.value, then=Value(i)) for i, s in enumerate(SEVERITY_ORDER)),
        output_field=IntegerField(),
    )
    return Alert.objects.select_related(
        "country", "acknowledged_by", "resolved_by", "dismissed_by"
    ).annotate(severity_rank=rank)


def subscriptions_of(user: Any) -> QuerySet[Subscription]:
    """The user's own subscriptions, with their countries."""
    return Subscription.objects.filter(user=user).prefetch_related("countries")

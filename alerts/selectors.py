"""Reads for alerts: scores to evaluate, who covers what, inbox and digest contents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Q, QuerySet

from alerts.models import Alert, AlertSettings, Notification, Subscription
from alerts.rules import AlertThresholds, Severity
from countries.models import Country
from indicators import selectors as indicator_selectors
from indicators.models import Observation, RiskScore, ScoringRun
from indicators.roles import Role

SCORE_COLUMNS = [
    "country",
    "period",
    "overall",
    "genocide",
    "crimes_against_humanity",
    "war_crimes",
    "coverage",
    "change_3m",
    "change_12m",
    "change_3m_z",
    "contributions",
]


def alert_settings() -> AlertSettings:
    return AlertSettings.objects.filter(pk=1).first() or AlertSettings(pk=1)


def alert_thresholds() -> AlertThresholds:
    levels = indicator_selectors.scoring_thresholds()
    current = alert_settings()
    return AlertThresholds(
        moderate_from=levels.moderate_from,
        high_from=levels.high_from,
        very_high_from=levels.very_high_from,
        min_coverage=levels.min_coverage,
        surge_points=current.surge_points,
        surge_z=current.surge_z,
        red_flag_severity=current.red_flag_severity,
    )


def run_score_frames(run: ScoringRun) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(previous, current): each country's scores one month before the run's last period,
    and at its last period, as written by ``run``. One query."""
    if run.period_end is None:
        empty = pd.DataFrame(columns=SCORE_COLUMNS)
        return empty, empty
    last = pd.Timestamp(run.period_end)
    previous_period = (last - pd.offsets.MonthEnd(1)).date()
    rows = RiskScore.objects.filter(
        run=run, period__in=[previous_period, run.period_end]
    ).values_list(
        "country__iso3",
        "period",
        "overall",
        "genocide",
        "crimes_against_humanity",
        "war_crimes",
        "coverage",
        "change_3m",
        "change_12m",
        "change_3m_z",
        "contributions",
    )
    frame = pd.DataFrame.from_records(list(rows), columns=SCORE_COLUMNS)
    return (
        frame[frame["period"] == previous_period].reset_index(drop=True),
        frame[frame["period"] == run.period_end].reset_index(drop=True),
    )


def observations_for_red_flags(observation_ids: Iterable[int]) -> pd.DataFrame:
    """Columns id, country, indicator, factor, observed_on, value, source, updated_at."""
    rows = Observation.objects.filter(pk__in=list(observation_ids)).values_list(
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


def unchecked_red_flag_candidates(*, since: datetime, thresholds: AlertThresholds) -> list[int]:
    """Observations changed since ``since`` that could be red flags and were not checked."""
    return list(
        Observation.objects.filter(
            updated_at__gte=since, value__gte=thresholds.red_flag_severity - 1e-9
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


def is_recipient(alert: Alert, user: Any) -> bool:
    """Whether ``user`` received the alert, or covers it through a subscription."""
    if Notification.objects.filter(alert=alert, recipient=user).exists():
        return True
    return covering_subscriptions(alert.country, alert.severity).filter(user=user).exists()


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


def biggest_movers(countries: Iterable[Country] | None, *, limit: int = 5) -> list[dict[str, Any]]:
    """The largest 3-month rises at the newest scored period of the published scores."""
    from indicators.services import published_methodology

    methodology = published_methodology()
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

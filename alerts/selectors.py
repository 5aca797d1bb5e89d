"""Reads for alerts: scores to evaluate, who covers what, inbox and digest contents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from alerts.models import (
    BASELINE_NUMBER_FIELDS,
    Alert,
    AlertMessageItem,
    AlertSettings,
    Notification,
    ScoreBaseline,
    Subscription,
)
from alerts.rules import (
    CRIME_WORDS,
    AlertThresholds,
    Severity,
    red_flag_window_start,
    urgency_key,
)
from countries.models import Country
from indicators import selectors as indicator_selectors
from indicators.models import (
    RISK_SCORE_NUMBER_FIELDS,
    Indicator,
    MethodologyVersion,
    Observation,
    RecomputeRequest,
    RiskFactor,
    RiskLevel,
    RiskScore,
    ScoringRun,
)
from indicators.roles import Role
from indicators.scoring import CRIME_TYPES, Thresholds, crime_contributions

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
    whose row a later run has overwritten since is left to that run), with what the
    alert rules need to explain them: overall_crime, factor_scores and
    contributions_by_crime ({crime type: {factor: points}}), and the same three months
    earlier, the window of ``change_3m`` (period_3m_before, overall_crime_3m_before,
    contributions_3m_before, contributions_by_crime_3m_before; None where that month is
    not scored). Columns: SCORE_COLUMNS, methodology, and those. Three queries."""
    later = ["overall_crime", "factor_scores", "contributions_by_crime"]
    earlier_columns = [
        "period_3m_before",
        "overall_crime_3m_before",
        "contributions_3m_before",
        "contributions_by_crime_3m_before",
    ]
    columns = [*SCORE_COLUMNS, "methodology", *later, *earlier_columns]
    if run.period_end is None:
        return pd.DataFrame(columns=columns)
    rows = list(
        RiskScore.objects.filter(
            methodology_id=run.methodology_id, period=run.period_end, run=run
        ).values_list(
            "country__iso3", *SCORE_COLUMNS[1:], "methodology_id", "overall_crime", "factor_scores"
        )
    )
    window_start = (pd.Timestamp(run.period_end) - pd.offsets.MonthEnd(3)).date()
    earlier = {
        iso3: (crime, contributions, factor_scores)
        for iso3, crime, contributions, factor_scores in RiskScore.objects.filter(
            methodology_id=run.methodology_id,
            period=window_start,
            country__iso3__in=[row[0] for row in rows],
        ).values_list("country__iso3", "overall_crime", "contributions", "factor_scores")
    }
    explain = _crime_contributions_of(run.methodology)
    frame = pd.DataFrame.from_records(
        [row[:-1] for row in rows], columns=[*SCORE_COLUMNS, "methodology", "overall_crime"]
    )
    frame["factor_scores"] = [row[-1] or {} for row in rows]
    frame["contributions_by_crime"] = [explain(row[-1]) for row in rows]
    before = [earlier.get(iso3) for iso3 in frame["country"]]
    frame["period_3m_before"] = [window_start if b else None for b in before]
    frame["overall_crime_3m_before"] = [b[0] if b else None for b in before]
    frame["contributions_3m_before"] = [b[1] if b else None for b in before]
    frame["contributions_by_crime_3m_before"] = [explain(b[2]) if b else None for b in before]
    return frame


def _crime_contributions_of(methodology: Any) -> Any:
    """A function from stored factor scores to {crime type: {factor: points}} under
    ``methodology``'s factor weights (``indicators.scoring.crime_contributions``)."""
    groups = dict(RiskFactor.objects.values_list("code", "group"))
    weights = {code: float(w) for code, w in (methodology.factor_weights or {}).items()}

    def explain(factor_scores: dict[str, Any] | None) -> dict[str, dict[str, float]] | None:
        if not factor_scores:
            return None
        return {
            crime: crime_contributions(
                factor_scores, factor_weights=weights, factor_groups=groups, crime=crime
            )
            for crime in CRIME_TYPES
        }

    return explain


def score_baselines(countries: Iterable[str], *, for_update: bool = False) -> pd.DataFrame:
    """The scores the alert rules last evaluated for these ISO3 codes: the columns of
    SCORE_COLUMNS but change_12m, with overall_crime, factor_scores,
    contributions_by_crime (None for baselines kept before factor scores were), methodology
    and run_started_at. Two queries; ``for_update`` locks the rows (inside a transaction)
    so that two evaluations of the same country take turns."""
    fields = [*BASELINE_NUMBER_FIELDS, "overall_crime", "contributions", "factor_scores"]
    baselines = ScoreBaseline.objects.filter(country__iso3__in=list(countries))
    if for_update:
        baselines = baselines.select_for_update(of=("self",))
    rows = list(
        baselines.order_by("country_id").values_list(
            "country__iso3", "period", *fields, "methodology_id", "run_started_at"
        )
    )
    frame = pd.DataFrame.from_records(
        rows, columns=["country", "period", *fields, "methodology", "run_started_at"]
    )
    versions = {
        version.pk: _crime_contributions_of(version)
        for version in MethodologyVersion.objects.filter(pk__in={row[-2] for row in rows})
    }
    frame["contributions_by_crime"] = [
        versions[methodology](factor_scores)
        for methodology, factor_scores in zip(
            frame["methodology"], frame["factor_scores"], strict=True
        )
    ]
    return frame


def observations_for_red_flags(
    observation_ids: Iterable[int], *, thresholds: AlertThresholds
) -> pd.DataFrame:
    """Of these observations, those that could be red flags under ``thresholds`` (on a
    red-flag factor or indicator, severe enough): the rule in ``alerts.rules`` decides.

    Columns id, country, indicator, indicator_name, factor, observed_on, value, source,
    dataset (the data set's short name; empty for an analyst's assessment), updated_at.
    The database does the first cut, so a batch of 100,000 rows reads only its
    candidates.
    """
    candidates = Observation.objects.filter(value__gte=thresholds.red_flag_severity - 1e-9).filter(
        Q(indicator__factor__code__in=thresholds.red_flag_factors)
        | Q(indicator__code__in=thresholds.red_flag_indicators)
    )
    columns = {
        "id": "id",
        "country": "country__iso3",
        "indicator": "indicator__code",
        "indicator_name": "indicator__label",
        "factor": "indicator__factor__code",
        "observed_on": "observed_on",
        "value": "value",
        "source": "source",
        "dataset": "dataset__short",
        "updated_at": "updated_at",
    }
    rows = [
        row
        for part in _with_ids(candidates, list(observation_ids))
        for row in part.values_list(*columns.values())
    ]
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    frame["dataset"] = frame["dataset"].fillna("")
    return frame


def _with_ids(queryset: QuerySet[Observation], ids: list[int]) -> list[QuerySet[Observation]]:
    """``queryset`` limited to these primary keys, in as few queries as the database
    allows: one array parameter on PostgreSQL (a 100,000-row upload's ids as 100,000
    parameters cost a second to build), batches within SQLite's variable limit."""
    if connection.vendor == "postgresql":
        return [queryset.filter(pk__in=RawSQL("SELECT unnest(%s::bigint[])", [ids]))]
    return [queryset.filter(pk__in=ids[i : i + 10_000]) for i in range(0, len(ids), 10_000)]


def unchecked_red_flag_candidates(
    *,
    since: datetime,
    thresholds: AlertThresholds,
    today: date,
    countries: Iterable[str] | None = None,
    updated_before: datetime | None = None,
) -> pd.DataFrame:
    """Observations changed since ``since`` (and before ``updated_before``), of
    ``countries`` (ISO3; default all), that could be red flags and whose current version
    was not checked: the columns of ``observations_for_red_flags``."""
    candidates = (
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
    )
    if countries is not None:
        candidates = candidates.filter(country__iso3__in=list(countries))
    if updated_before is not None:
        candidates = candidates.filter(updated_at__lte=updated_before)
    return observations_for_red_flags(
        candidates.values_list("id", flat=True), thresholds=thresholds
    )


def awaiting_a_run(candidates: pd.DataFrame) -> pd.Series:
    """For each candidate observation (columns country, updated_at), whether a scoring run
    that will read it is still to come or to be evaluated: a recompute request of its
    country (or of every country) made with it or later and not done yet, or a run
    started after it was recorded that the alert rules have not evaluated yet. Its red
    flag then waits for that run's evaluation, so that the country's focal points get
    one message per event. Two queries."""
    if candidates.empty:
        return pd.Series(dtype=bool, index=candidates.index)
    since = candidates["updated_at"].min()
    # Requests made with (or after) the data: the same transaction writes both.
    requests = list(
        RecomputeRequest.objects.filter(done_at__isnull=True, requested_at__gte=since).values_list(
            "country__iso3", "requested_at"
        )
    )
    runs = list(
        ScoringRun.objects.filter(
            status__in=[ScoringRun.Status.RUNNING, ScoringRun.Status.SUCCEEDED],
            started_at__gte=since,
            evaluation__isnull=True,
        ).values_list("countries", "started_at")
    )
    coming = [(None if iso3 is None else {iso3}, when) for iso3, when in requests]
    coming += [(set(scored) if scored else None, when) for scored, when in runs]
    return pd.Series(
        [
            any(
                when >= updated_at and (scope is None or country in scope) for scope, when in coming
            )
            for country, updated_at in zip(
                candidates["country"], candidates["updated_at"], strict=True
            )
        ],
        index=candidates.index,
        dtype=bool,
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
    if Notification.objects.filter(alert_message__alerts=alert, recipient=user).exists():
        return True
    return covering_subscriptions(alert.country, alert.severity).filter(user=user).exists()


def alerts_received_or_covered(alerts: Iterable[Alert], user: Any) -> set[int]:
    """The ids among ``alerts`` that ``is_recipient`` holds for: received by ``user``, or
    covered by one of their subscriptions at the alert's severity. Three queries for
    any number of alerts (alerts need their country loaded)."""
    alerts = list(alerts)
    received = set(
        AlertMessageItem.objects.filter(
            alert_id__in=[a.pk for a in alerts], message__notifications__recipient=user
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
    """Alerts matching the inbox's filters (``status`` "active": open or acknowledged;
    ``recipient``: only alerts sent to that user), newest first."""
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
        alerts = alerts.filter(
            pk__in=AlertMessageItem.objects.filter(
                message__notifications__recipient=recipient
            ).values("alert_id")
        )
    return alerts.order_by("-opened_at", "-pk")


@dataclass(frozen=True)
class CountryAlerts:
    """One country's alerts in the inbox or on the overview, the most urgent first."""

    country: Country
    alerts: list[Alert]

    @property
    def severity(self) -> str:
        return max((Severity(a.severity) for a in self.alerts), key=lambda s: s.rank).value

    @property
    def open_count(self) -> int:
        return sum(1 for alert in self.alerts if alert.status == Alert.Status.OPEN)


def alert_urgency(alert: Any) -> tuple[int, float, float, int, int]:
    """``rules.urgency_key`` of an alert (or a row with its fields): severity, the size
    of its rise, then the newest activity (its escalation, else its opening)."""
    moment = alert.escalated_at or alert.opened_at
    change = (
        None
        if alert.score is None or alert.previous_score is None
        else alert.score - alert.previous_score
    )
    return urgency_key(
        severity=alert.severity,
        change=change,
        moment=moment.timestamp(),
        crime_type=alert.crime_type,
        rule=alert.rule,
    )


@dataclass(frozen=True)
class _UrgencyRow:
    pk: int
    country_id: int
    severity: str
    crime_type: str
    rule: str
    score: float | None
    previous_score: float | None
    opened_at: datetime
    escalated_at: datetime | None


def alerts_by_urgency(alerts: QuerySet[Alert]) -> list[tuple[int, list[int]]]:
    """(country id, alert ids) of ``alerts`` grouped by country, the most urgent country
    first (by its most urgent alert: severity, then the size of the rise, then the
    newest), and each country's alerts in the same order. One light query: only the
    fields the order needs are read, so any number of alerts can be ordered."""
    rows = [
        _UrgencyRow(*values)
        for values in alerts.order_by().values_list(
            "pk",
            "country_id",
            "severity",
            "crime_type",
            "rule",
            "score",
            "previous_score",
            "opened_at",
            "escalated_at",
        )
    ]
    rows.sort(key=lambda row: (alert_urgency(row), -row.pk))
    groups: dict[int, list[int]] = {}
    for row in rows:
        groups.setdefault(row.country_id, []).append(row.pk)
    return list(groups.items())


def country_groups(groups: list[tuple[int, list[int]]]) -> list[CountryAlerts]:
    """The alerts of some ``alerts_by_urgency`` groups, loaded in one query, in order."""
    ids = [pk for _country, pks in groups for pk in pks]
    loaded = Alert.objects.select_related("country", "acknowledged_by").in_bulk(ids)
    return [
        CountryAlerts(country=loaded[pks[0]].country, alerts=[loaded[pk] for pk in pks])
        for _country, pks in groups
    ]


def open_alerts_overview(*, countries: int = 8) -> tuple[list[CountryAlerts], dict[str, int]]:
    """The most urgent countries with active alerts, for the overview: critical first, so
    no critical alert hides behind older warnings; and what was left out
    ({"countries": n, "critical": countries among them with a critical alert})."""
    groups = alerts_by_urgency(Alert.objects.filter(status__in=Alert.ACTIVE))
    shown, rest = groups[:countries], groups[countries:]
    critical = set(
        Alert.objects.filter(
            status__in=Alert.ACTIVE,
            severity=Severity.CRITICAL,
            country_id__in=[country for country, _ids in rest],
        ).values_list("country_id", flat=True)
    )
    return country_groups(shown), {"countries": len(rest), "critical": len(critical)}


def active_alerts_for_country(country: Country) -> list[Alert]:
    """The country's open and acknowledged alerts, the most urgent first."""
    return sorted(
        Alert.objects.filter(country=country, status__in=Alert.ACTIVE).select_related("country"),
        key=lambda alert: (alert_urgency(alert), -alert.pk),
    )


def framework_names() -> dict[str, dict[str, str]]:
    """The words for codes: {"factors": {code: title}, "indicators": {code: label},
    "crimes": {crime type: words}}, for pages and e-mails. Two queries."""
    return {
        "factors": dict(RiskFactor.objects.values_list("code", "title")),
        "indicators": dict(Indicator.objects.values_list("code", "label")),
        "crimes": dict(CRIME_WORDS),
    }


def deliveries_of(alert: Alert) -> QuerySet[Notification]:
    """Every notification of a message that carried ``alert``, oldest first."""
    return (
        Notification.objects.filter(alert_message__alerts=alert)
        .select_related("recipient")
        .order_by("created_at", "pk")
    )


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

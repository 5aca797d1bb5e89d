"""Reads for scoring: the only place where observations and weights leave the ORM as frames."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, ExtractYear, Rank

from countries.models import Country
from indicators.models import (
    DEFAULT_STALENESS_DAYS,
    CrimeGroup,
    DataSet,
    Indicator,
    MethodologyEvent,
    MethodologyVersion,
    Observation,
    ObservationUpload,
    ProfileAssignment,
    RecomputeRequest,
    RiskFactor,
    RiskScore,
    ScoringRun,
    SituationScore,
)
from indicators.scoring import Thresholds, assign_levels
from indicators.sources.mapping import DatasetInfo, SourceMapping, VariableMapping

OBSERVATION_COLUMNS = ["country", "indicator", "observed_on", "value", "overrides"]


def observations_frame(*, country_ids: Collection[int] | None = None) -> pd.DataFrame:
    """Every observation (or those of some countries) in one query.

    Columns: country (ISO3), indicator (code), observed_on (datetime64; NaT for a date
    pandas cannot hold, before 1677 or after 2262), value (float), overrides (bool: an
    analyst's assessment replacing the data-derived values that day).
    """
    queryset = Observation.objects.all()
    if country_ids is not None:
        queryset = queryset.filter(country_id__in=list(country_ids))
    if connection.vendor == "postgresql":
        frame = _observations_by_copy(queryset)
    else:
        rows = queryset.values_list(
            "country__iso3", "indicator__code", "observed_on", "value", "overrides_data"
        )
        frame = pd.DataFrame.from_records(
            list(rows.iterator(chunk_size=20_000)), columns=OBSERVATION_COLUMNS
        )
        # Never fail on one row dated 0204 (a typo that got in before dates were
        # bounded): it becomes NaT, for the caller to leave out.
        frame["observed_on"] = pd.to_datetime(frame["observed_on"], errors="coerce")
        frame["overrides"] = frame["overrides"].astype(bool)
    frame["value"] = frame["value"].astype(float)
    return frame


# One row of ``COPY (SELECT country_id, indicator_id, observed_on, value, overrides_data)
# TO STDOUT (FORMAT binary)``: a field count, then each field's length and big-endian
# value (bigint, bigint, date as days since 2000-01-01, double, boolean). Every column is
# NOT NULL and fixed in width, so every row has this one layout.
_OBSERVATION_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("country_len", ">i4"),
        ("country_id", ">i8"),
        ("indicator_len", ">i4"),
        ("indicator_id", ">i8"),
        ("day_len", ">i4"),
        ("day", ">i4"),
        ("value_len", ">i4"),
        ("value", ">f8"),
        ("overrides_len", ">i4"),
        ("overrides", ">i1"),
    ]
)
_COPY_BINARY_HEADER = 19  # signature (11 bytes), flags, header extension length
_COPY_BINARY_TRAILER = 2  # a field count of -1
_POSTGRES_EPOCH = np.datetime64("2000-01-01", "D")
# The dates, as days since 2000-01-01, that pandas' nanosecond timestamps can hold.
_FIRST_DAY_PANDAS_HOLDS = (pd.Timestamp.min.ceil("D").date() - date(2000, 1, 1)).days
_LAST_DAY_PANDAS_HOLDS = (pd.Timestamp.max.floor("D").date() - date(2000, 1, 1)).days


def _observations_by_copy(queryset: QuerySet[Observation]) -> pd.DataFrame:
    """The observations streamed by a binary COPY of ids, dates, values and flags: no
    joins, no text to format or parse, several times faster than a cursor for a million
    rows; codes are looked up afterwards."""
    numbers = queryset.order_by().values_list(
        "country_id", "indicator_id", "observed_on", "value", "overrides_data"
    )
    sql, params = numbers.query.sql_with_params()
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        copy = cursor.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", params)
        cursor.copy_expert(copy.decode(), buffer)
    data = buffer.getbuffer()
    count = (len(data) - _COPY_BINARY_HEADER - _COPY_BINARY_TRAILER) // _OBSERVATION_ROW.itemsize
    rows = np.frombuffer(data, dtype=_OBSERVATION_ROW, count=count, offset=_COPY_BINARY_HEADER)
    if count and not (rows["fields"] == 5).all():
        raise RuntimeError("Unexpected COPY row layout for observations.")
    iso3 = pd.Series(dict(Country.objects.values_list("id", "iso3")), dtype=object)
    codes = pd.Series(dict(Indicator.objects.values_list("id", "code")), dtype=object)
    days = rows["day"].astype(np.int64)
    # Never fail on one row dated 0204 (a typo that got in before dates were bounded):
    # it becomes NaT, for the caller to leave out.
    holdable = (days >= _FIRST_DAY_PANDAS_HOLDS) & (days <= _LAST_DAY_PANDAS_HOLDS)
    observed_on = (_POSTGRES_EPOCH + np.where(holdable, days, 0)).astype("datetime64[ns]")
    observed_on[~holdable] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "country": iso3.reindex(rows["country_id"].astype(np.int64)).to_numpy(),
            "indicator": codes.reindex(rows["indicator_id"].astype(np.int64)).to_numpy(),
            "observed_on": observed_on,
            "value": rows["value"].astype(np.float64),
            "overrides": rows["overrides"] == 1,
        },
        columns=OBSERVATION_COLUMNS,
    )


def factors_frame() -> pd.DataFrame:
    """Columns: factor (code), group."""
    rows = RiskFactor.objects.values_list("code", "group")
    return pd.DataFrame.from_records(list(rows), columns=["factor", "group"])


def indicators_frame() -> pd.DataFrame:
    """Columns: indicator (code), factor (code)."""
    rows = Indicator.objects.annotate(factor_code=F("factor__code")).values_list(
        "code", "factor_code"
    )
    return pd.DataFrame.from_records(list(rows), columns=["indicator", "factor"])


def weights_frames(version: MethodologyVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The factor and indicator frames with ``version``'s weights and staleness limits.

    A factor or indicator the version does not know (added to the framework after it)
    weighs 0 under it: a version is frozen, and new parts enter through a new version.
    """
    factors = factors_frame()
    factors["weight"] = factors["factor"].map(version.factor_weights).fillna(0.0).astype(float)
    indicators = indicators_frame()
    indicators["weight"] = (
        indicators["indicator"].map(version.indicator_weights).fillna(0.0).astype(float)
    )
    indicators["staleness_days"] = (
        indicators["indicator"]
        .map(version.staleness_days)
        .fillna(DEFAULT_STALENESS_DAYS)
        .astype(int)
    )
    return factors, indicators


def published_methodology() -> MethodologyVersion | None:
    """The version analysts see: the one published (None before the first)."""
    return MethodologyVersion.objects.filter(status=MethodologyVersion.Status.PUBLISHED).first()


def version_for_viewing(
    number: str | None, *, administrator: bool = False
) -> MethodologyVersion | None:
    """The version a page was asked for with ``?version=N`` (published or superseded;
    drafts only for administrators), else the published one; None if N is no such
    version."""
    if not number:
        return published_methodology()
    allowed = [MethodologyVersion.Status.PUBLISHED, MethodologyVersion.Status.SUPERSEDED]
    if administrator:
        allowed.append(MethodologyVersion.Status.DRAFT)
    try:
        wanted = int(number)
    except ValueError:
        return None
    return MethodologyVersion.objects.filter(number=wanted, status__in=allowed).first()


# --- Dashboard -------------------------------------------------------------------------
# Each page reads the published scores with one ``.values()`` query per need, so the
# number of queries never grows with the number of countries or periods.

CRIMES = ("overall", "genocide", "crimes_against_humanity", "war_crimes")
_SCORE_NUMBERS = [
    "overall",
    "genocide",
    "crimes_against_humanity",
    "war_crimes",
    "coverage",
    "change_3m",
    "change_12m",
    "change_3m_z",
]
_RANKING_FIELDS = {
    "iso3": "country__iso3",
    "name": "country__name",
    "region": "country__region",
    **{name: name for name in _SCORE_NUMBERS},
    "overall_crime": "overall_crime",
    "level": "level",
}
_HISTORY_FIELDS = [
    "period",
    *_SCORE_NUMBERS,
    "overall_crime",
    "level",
    "factor_scores",
    "contributions",
]


@dataclass(frozen=True)
class IndicatorRow:
    """An indicator of the framework, with the weight in force."""

    id: int
    code: str
    label: str
    weight: float
    staleness_days: int
    verification: str
    verification_label: str


@dataclass(frozen=True)
class FactorRow:
    """A risk factor of the framework, with the weight in force and its indicators."""

    id: int
    code: str
    title: str
    group: str
    group_label: str
    summary: str
    note: str
    weight: float
    indicators: list[IndicatorRow]


def framework_rows(*, methodology: MethodologyVersion | None = None) -> list[FactorRow]:
    """The 14 factors with their indicators in two queries.

    Weights and staleness limits are those of ``methodology`` (default: the published
    version; with none yet, the equal weights a first version will have).
    """
    version = methodology or published_methodology()
    factor_weights = version.factor_weights if version else {}
    indicator_weights = version.indicator_weights if version else {}
    staleness = version.staleness_days if version else {}
    default_weight = 0.0 if version else 1.0
    verification_labels = dict(Indicator.Verification.choices)
    group_labels = dict(CrimeGroup.choices)
    by_factor: dict[int, list[IndicatorRow]] = {}
    for row in Indicator.objects.order_by("factor__number", "position").values(
        "id", "code", "label", "verification", "factor_id"
    ):
        by_factor.setdefault(row["factor_id"], []).append(
            IndicatorRow(
                id=row["id"],
                code=row["code"],
                label=row["label"],
                weight=float(indicator_weights.get(row["code"], default_weight)),
                staleness_days=int(staleness.get(row["code"], DEFAULT_STALENESS_DAYS)),
                verification=row["verification"],
                verification_label=verification_labels.get(
                    row["verification"], row["verification"]
                ),
            )
        )
    return [
        FactorRow(
            id=row["id"],
            code=row["code"],
            title=row["title"],
            group=row["group"],
            group_label=group_labels.get(row["group"], row["group"]),
            summary=row["summary"],
            note=row["note"],
            weight=float(factor_weights.get(row["code"], default_weight)),
            indicators=by_factor.get(row["id"], []),
        )
        for row in RiskFactor.objects.order_by("number").values(
            "id", "code", "title", "group", "summary", "note"
        )
    ]


def score_period_range(*, methodology: MethodologyVersion) -> tuple[date, date] | None:
    """The first and last month end scored under ``methodology``, or None."""
    bounds = RiskScore.objects.filter(methodology=methodology).aggregate(
        first=Min("period"), last=Max("period")
    )
    if bounds["last"] is None:
        return None
    return bounds["first"], bounds["last"]


def latest_observation_date() -> date | None:
    """The date of the newest observation of any country, in one query.

    The newest date of each country comes from the (country, observed_on) index, one
    probe per country: a plain MAX over a million observations would scan them all.
    """
    newest = (
        Observation.objects.filter(country=OuterRef("pk"))
        .order_by("-observed_on")
        .values("observed_on")[:1]
    )
    latest: date | None = Country.objects.annotate(newest=Subquery(newest)).aggregate(
        latest=Max("newest")
    )["latest"]
    return latest


def scores_at(
    *, methodology: MethodologyVersion, period: date, crime: str = "overall"
) -> pd.DataFrame:
    """Every scored country at one month end, highest ``crime`` score first.

    Columns: iso3, name, region, overall, genocide, crimes_against_humanity, war_crimes,
    coverage, change_3m, change_12m, change_3m_z, overall_crime, level, then ``score``
    (the ``crime`` column) and ``crime_level``. Countries with insufficient data come
    after all others.

    For the overall score this is one query and every column is as stored. For a
    crime-specific score, ``coverage``, ``change_3m`` and ``change_12m`` are those of
    that score (the overall ones would mix in the other crimes): its own stored
    coverage (the overall one for rows stored before it existed), and its change
    against the month ends 3 and 12 months before, read in one more query (NaN where
    that month is not scored). ``change_3m_z`` is only known for the overall score, so
    it is NaN. ``crime_level`` is the stored level for the overall score, else the
    level of the crime's score and coverage under the methodology's thresholds.
    """
    if crime not in CRIMES:
        raise ValueError(f"Unknown crime type {crime!r}.")
    fields = dict(_RANKING_FIELDS)
    if crime != "overall":
        fields["crime_coverage"] = f"coverage_{crime}"
    rows = RiskScore.objects.filter(methodology=methodology, period=period).values_list(
        *fields.values()
    )
    frame = pd.DataFrame.from_records(list(rows), columns=list(fields))
    frame[_SCORE_NUMBERS] = frame[_SCORE_NUMBERS].astype(float)
    frame["score"] = frame[crime]
    if crime == "overall":
        frame["crime_level"] = frame["level"]
    else:
        own = frame.pop("crime_coverage").astype(float)
        frame["coverage"] = own.fillna(frame["coverage"])
        earlier = _crime_scores_before(methodology=methodology, period=period, crime=crime)
        for months in (3, 12):
            before = frame["iso3"].map(earlier.get(months, {})).astype(float)
            frame[f"change_{months}m"] = frame[crime] - before
        frame["change_3m_z"] = float("nan")
        frame["crime_level"] = assign_levels(
            frame[crime].to_numpy(dtype=float),
            frame["coverage"].to_numpy(dtype=float),
            Thresholds(**methodology.thresholds),
        )
    # Thin data ranks after every country with enough data, whatever its number.
    insufficient = frame["crime_level"] == "insufficient_data"
    return (
        frame.assign(_thin=insufficient)
        .sort_values(["_thin", "score", "name"], ascending=[True, False, True], na_position="last")
        .drop(columns="_thin")
        .reset_index(drop=True)
    )


def _crime_scores_before(
    *, methodology: MethodologyVersion, period: date, crime: str
) -> dict[int, dict[str, float | None]]:
    """{3: {iso3: score}, 12: {...}}: the ``crime`` score 3 and 12 month ends before
    ``period``, in one query (the same lag as the stored overall changes)."""
    lags = {
        (pd.Timestamp(period) - pd.offsets.MonthEnd(months)).date(): months for months in (3, 12)
    }
    found: dict[int, dict[str, float | None]] = {}
    for iso3, when, score in RiskScore.objects.filter(
        methodology=methodology, period__in=list(lags)
    ).values_list("country__iso3", "period", crime):
        found.setdefault(lags[when], {})[iso3] = score
    return found


def country_score_history(*, methodology: MethodologyVersion, country: Country) -> pd.DataFrame:
    """The country's scores for every month end, oldest first, in one query.

    Columns: period (datetime64), the score numbers, overall_crime, level, and
    factor_scores and contributions as dicts keyed by factor code.
    """
    rows = (
        RiskScore.objects.filter(methodology=methodology, country=country)
        .order_by("period")
        .values_list(*_HISTORY_FIELDS)
    )
    frame = pd.DataFrame.from_records(list(rows), columns=_HISTORY_FIELDS)
    frame["period"] = pd.to_datetime(frame["period"])
    frame[_SCORE_NUMBERS] = frame[_SCORE_NUMBERS].astype(float)
    return frame


def compare_history(
    *, methodology: MethodologyVersion, countries: Collection[Country]
) -> pd.DataFrame:
    """Scores of a few countries for every month end, in one query.

    Columns: iso3, name, period (datetime64), overall, coverage, level, factor_scores.
    """
    columns = ["iso3", "name", "period", "overall", "coverage", "level", "factor_scores"]
    rows = (
        RiskScore.objects.filter(methodology=methodology, country__in=list(countries))
        .order_by("country__name", "period")
        .values_list(
            "country__iso3",
            "country__name",
            "period",
            "overall",
            "coverage",
            "level",
            "factor_scores",
        )
    )
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    frame["period"] = pd.to_datetime(frame["period"])
    frame[["overall", "coverage"]] = frame[["overall", "coverage"]].astype(float)
    return frame


def factor_ranking(
    *,
    methodology: MethodologyVersion,
    period: date,
    factor_code: str,
    framework: Sequence[FactorRow] | None = None,
) -> pd.DataFrame:
    """Every scored country's score on one factor at one month end, the highest first,
    with countries whose factor score rests on thin data after every other.

    Columns: iso3, name, region, factor_score (0-1, NaN when the factor has no data
    there), contribution (points of the overall score), level, coverage (of the overall
    score), factor_coverage (share of the factor's indicator weight with data, 0-1),
    indicators_with_data, indicators (of the factor), thin (factor_coverage below the
    methodology's coverage floor: a score from one indicator of twelve is not a ranking
    of risk on the factor). Two queries after the framework's (``framework_rows`` under
    ``methodology``; pass it when it is at hand).
    """
    columns = ["iso3", "name", "region", "factor_scores", "contributions", "level", "coverage"]
    rows = RiskScore.objects.filter(methodology=methodology, period=period).values_list(
        "country__iso3",
        "country__name",
        "country__region",
        "factor_scores",
        "contributions",
        "level",
        "coverage",
    )
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    frame["factor_score"] = [
        float(scores.get(factor_code, "nan")) for scores in frame["factor_scores"]
    ]
    frame["contribution"] = [
        float(points.get(factor_code, 0.0)) for points in frame["contributions"]
    ]
    frame["coverage"] = frame["coverage"].astype(float)
    frame = frame.drop(columns=["factor_scores", "contributions"])
    coverage = factor_coverage(
        methodology=methodology,
        period=period,
        factor_codes=[factor_code],
        countries=list(frame["iso3"]),
        framework=framework,
    )
    floor = float(methodology.thresholds.get("min_coverage", 0.0))
    share = [coverage.get((iso3, factor_code)) for iso3 in frame["iso3"]]
    frame["factor_coverage"] = [c.share if c else 0.0 for c in share]
    frame["indicators_with_data"] = [c.with_data if c else 0 for c in share]
    frame["indicators"] = [c.indicators if c else 0 for c in share]
    frame["thin"] = frame["factor_score"].notna() & (frame["factor_coverage"] < floor - 1e-12)
    return frame.sort_values(
        ["thin", "factor_score", "name"], ascending=[True, False, True], na_position="last"
    ).reset_index(drop=True)


@dataclass(frozen=True)
class CountryFactorCoverage:
    """How much of a factor's indicator weight had current data for one country."""

    share: float
    """Weight of the indicators with a current value over the factor's indicator weight."""
    with_data: int
    indicators: int


def factor_coverage(
    *,
    methodology: MethodologyVersion,
    period: date,
    factor_codes: Collection[str] | None = None,
    countries: Collection[str] | None = None,
    framework: Sequence[FactorRow] | None = None,
) -> dict[tuple[str, str], CountryFactorCoverage]:
    """{(ISO3, factor code): CountryFactorCoverage} at one month end, as the scores saw
    it: an indicator counts when it has an observation dated on or before ``period``
    within its staleness limit (rule 1 of ``indicators.scoring``), weighted by the
    methodology's indicator weights. Pairs without any current indicator are left out
    (their share is 0). One query, after the framework's (pass ``framework`` from
    ``framework_rows(methodology=...)`` when it is at hand)."""
    framework = list(framework or framework_rows(methodology=methodology))
    if factor_codes is not None:
        framework = [factor for factor in framework if factor.code in set(factor_codes)]
    indicators = {
        indicator.code: (factor.code, indicator)
        for factor in framework
        for indicator in factor.indicators
    }
    if not indicators:
        return {}
    oldest = period - timedelta(
        days=max(indicator.staleness_days for _code, indicator in indicators.values())
    )
    latest = Observation.objects.filter(
        indicator__code__in=list(indicators), observed_on__lte=period, observed_on__gte=oldest
    )
    if countries is not None:
        latest = latest.filter(country__iso3__in=list(countries))
    present: dict[tuple[str, str], list[float]] = {}
    for iso3, code, newest in (
        latest.order_by()
        .values_list("country__iso3", "indicator__code")
        .annotate(newest=Max("observed_on"))
    ):
        factor, indicator = indicators[code]
        if (period - newest).days <= indicator.staleness_days:
            present.setdefault((iso3, factor), []).append(indicator.weight)
    totals = {
        factor.code: (sum(i.weight for i in factor.indicators), len(factor.indicators))
        for factor in framework
    }
    return {
        (iso3, factor): CountryFactorCoverage(
            share=sum(weights) / totals[factor][0] if totals[factor][0] > 0 else 0.0,
            with_data=len(weights),
            indicators=totals[factor][1],
        )
        for (iso3, factor), weights in present.items()
    }


@dataclass(frozen=True)
class ObservationLine:
    """One observation as the country page shows it: where the number comes from."""

    value: float
    source: str
    source_url: str
    confidence: str
    note: str
    dataset: str
    """The data set's short name and version; empty for an analyst's assessment."""
    variable: str
    raw_value: float | None
    overrides_data: bool
    recorded_by: str
    variable_label: str = ""
    """What the variable measures (from the mapping file), for data-derived values."""

    @property
    def from_data(self) -> bool:
        return bool(self.dataset)

    @property
    def analyst_scale(self) -> str:
        """The value on the analysts' 0-3 scale, in words."""
        return ANALYST_SCALE_LABELS[min(3, max(0, round(self.value * 3)))]


@dataclass(frozen=True)
class IndicatorStatus:
    """One indicator for one country: its newest observations and its history."""

    indicator: IndicatorRow
    value: float | None
    """The value the scores use on the newest date: the mean of its observations (of
    the analysts' overriding ones, if any), as in ``scoring.compute_scores``."""
    observed_on: date | None
    latest: list[ObservationLine]
    """Every observation on the newest date, data sets and analysts alike."""
    stale: bool
    observations: int
    history: list[float]
    """Values oldest first (same-day sources averaged), for a sparkline."""

    @property
    def analyst_scale(self) -> str:
        """The value on the analysts' 0-3 scale, in words."""
        if self.value is None:
            return ""
        return ANALYST_SCALE_LABELS[min(3, max(0, round(self.value * 3)))]


ANALYST_SCALE_LABELS = ("absent", "low", "moderate", "high")
_STATUS_FIELDS = (
    "indicator_id",
    "observed_on",
    "value",
    "source",
    "source_url",
    "confidence",
    "note",
    "dataset__short",
    "dataset__version",
    "variable",
    "raw_value",
    "overrides_data",
    "recorded_by__username",
)


def country_indicator_status(
    *,
    country: Country,
    framework: Sequence[FactorRow],
    today: date,
    variable_labels: Mapping[str, str] | None = None,
) -> dict[str, list[IndicatorStatus]]:
    """Each factor code -> its indicators' status for ``country``, in one query.

    An indicator is ``stale`` when its newest observation is older than its staleness
    limit on ``today``: the score no longer uses it. ``variable_labels`` says what each
    data set variable measures (shown beside its raw value).
    """
    labels = variable_labels or {}
    rows = (
        Observation.objects.filter(country=country)
        .order_by("indicator_id", "observed_on", "id")
        .values_list(*_STATUS_FIELDS)
    )
    by_indicator: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_indicator.setdefault(row[0], []).append(row)
    result: dict[str, list[IndicatorStatus]] = {}
    for factor in framework:
        statuses = []
        for indicator in factor.indicators:
            found = by_indicator.get(indicator.id, [])
            daily: dict[date, list[float]] = {}
            for row in found:
                daily.setdefault(row[1], []).append(float(row[2]))
            newest = found[-1][1] if found else None
            latest = [_observation_line(row, labels) for row in found if row[1] == newest]
            used = [line for line in latest if line.overrides_data] or latest
            statuses.append(
                IndicatorStatus(
                    indicator=indicator,
                    value=sum(line.value for line in used) / len(used) if used else None,
                    observed_on=newest,
                    latest=latest,
                    stale=bool(newest and (today - newest).days > indicator.staleness_days),
                    observations=len(found),
                    history=[sum(v) / len(v) for v in daily.values()],
                )
            )
        result[factor.code] = statuses
    return result


def _observation_line(row: tuple[Any, ...], labels: Mapping[str, str]) -> ObservationLine:
    (_, _, value, source, url, confidence, note, short, version, variable, raw, overrides, by) = row
    return ObservationLine(
        value=float(value),
        source=source,
        source_url=url,
        confidence=confidence,
        note=note,
        dataset=f"{short} {version}" if short else "",
        variable=variable,
        raw_value=raw,
        overrides_data=overrides,
        recorded_by=by or "",
        variable_label=labels.get(variable, ""),
    )


OBSERVATION_EXPORT_COLUMNS = [
    "country",
    "indicator",
    "observed_on",
    "value",
    "confidence",
    "source",
    "source_url",
    "note",
    "recorded_by",
    "updated_at",
]


def country_observation_rows(*, country: Country) -> list[tuple[Any, ...]]:
    """The country's observations as rows of ``OBSERVATION_EXPORT_COLUMNS``, one query."""
    return list(
        Observation.objects.filter(country=country)
        .order_by("indicator__factor__number", "indicator__position", "observed_on", "source")
        .values_list(
            "country__iso3",
            "indicator__code",
            "observed_on",
            "value",
            "confidence",
            "source",
            "source_url",
            "note",
            "recorded_by__username",
            "updated_at",
        )
    )


# --- Coverage --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedCoverage:
    """What one data set (or the analysts) gives one indicator."""

    name: str
    """The data set's short name and version, or "Analysts' assessments"."""
    licence: str
    observations: int
    countries: int
    first_year: int
    last_year: int


ANALYSTS = "Analysts' assessments"


@dataclass(frozen=True)
class IndicatorCoverage:
    """How much data one indicator has: observations, countries, years and sources."""

    code: str
    label: str
    verification_label: str
    observations: int
    countries: int
    years: int
    first_year: int | None
    last_year: int | None
    sources: list[str]
    """Data sets feeding it and the source names analysts cited, alphabetically."""
    feeds: list[FeedCoverage]
    """Per data set (and the analysts together): observations, countries and years."""

    @property
    def has_data(self) -> bool:
        return self.observations > 0


@dataclass(frozen=True)
class FactorCoverage:
    code: str
    title: str
    countries: int
    """Countries with at least one observation on any indicator of the factor."""
    indicators: list[IndicatorCoverage]

    @property
    def indicators_with_data(self) -> int:
        return sum(1 for indicator in self.indicators if indicator.has_data)


@dataclass(frozen=True)
class CoverageReport:
    """What data feeds each factor and indicator, and which indicators have none."""

    factors: list[FactorCoverage]
    observations: int
    countries: int

    @property
    def indicators_without_data(self) -> list[IndicatorCoverage]:
        return [i for f in self.factors for i in f.indicators if not i.has_data]


def coverage_report(
    *,
    factor_codes: Collection[str] | None = None,
    framework: Sequence[FactorRow] | None = None,
) -> CoverageReport:
    """Coverage per factor and indicator (of some factors, or all), in seven queries.

    Counts distinct countries and calendar years with observations, the first and last
    year, the data sets feeding each indicator (with their own countries and years) and
    the source names analysts cited. Pass ``framework`` (from ``framework_rows``) when
    it is at hand, to save two queries.
    """
    framework = list(framework) if framework is not None else framework_rows()
    if factor_codes is not None:
        framework = [factor for factor in framework if factor.code in set(factor_codes)]
    observations = Observation.objects.order_by()
    if factor_codes is not None:
        observations = observations.filter(indicator__factor__code__in=list(factor_codes))
    per_indicator = {
        row["indicator_id"]: row
        for row in observations.values("indicator_id").annotate(
            n=Count("id"),
            countries=Count("country_id", distinct=True),
            years=Count(ExtractYear("observed_on"), distinct=True),
            first=Min("observed_on"),
            last=Max("observed_on"),
        )
    }
    sources: dict[int, list[str]] = {}
    for indicator_id, source in (
        observations.filter(dataset__isnull=True)
        .values_list("indicator_id", "source")
        .distinct()
        .order_by("source")
    ):
        sources.setdefault(indicator_id, []).append(source)
    feeds: dict[int, list[FeedCoverage]] = {}
    for row in (
        observations.values(
            "indicator_id", "dataset__short", "dataset__version", "dataset__licence"
        )
        .annotate(
            n=Count("id"),
            countries=Count("country_id", distinct=True),
            first=Min("observed_on"),
            last=Max("observed_on"),
        )
        .order_by("dataset__short")
    ):
        short = row["dataset__short"]
        name = f"{short} {row['dataset__version']}" if short else ANALYSTS
        feeds.setdefault(row["indicator_id"], []).append(
            FeedCoverage(
                name=name,
                licence=row["dataset__licence"] or "",
                observations=row["n"],
                countries=row["countries"],
                first_year=row["first"].year,
                last_year=row["last"].year,
            )
        )
        if short:
            sources.setdefault(row["indicator_id"], []).append(name)
    per_factor = dict(
        observations.values_list("indicator__factor_id")
        .annotate(countries=Count("country_id", distinct=True))
        .values_list("indicator__factor_id", "countries")
    )
    totals = observations.aggregate(n=Count("id"), countries=Count("country_id", distinct=True))
    factors = []
    for factor in framework:
        indicators = []
        for indicator in factor.indicators:
            found = per_indicator.get(indicator.id, {})
            indicators.append(
                IndicatorCoverage(
                    code=indicator.code,
                    label=indicator.label,
                    verification_label=indicator.verification_label,
                    observations=int(found.get("n", 0)),
                    countries=int(found.get("countries", 0)),
                    years=int(found.get("years", 0)),
                    first_year=found["first"].year if found else None,
                    last_year=found["last"].year if found else None,
                    sources=sorted(sources.get(indicator.id, [])),
                    feeds=feeds.get(indicator.id, []),
                )
            )
        factors.append(
            FactorCoverage(
                code=factor.code,
                title=factor.title,
                countries=int(per_factor.get(factor.id, 0)),
                indicators=indicators,
            )
        )
    return CoverageReport(
        factors=factors, observations=int(totals["n"]), countries=int(totals["countries"])
    )


@dataclass(frozen=True)
class SourceSummary:
    """One observation source name as recorded: how many observations, where, when."""

    source: str
    observations: int
    countries: int
    first: date
    last: date


def observation_sources(*, analysts_only: bool = False) -> list[SourceSummary]:
    """Each distinct source name on observations, most observations first, in one query.

    These are what analysts cited and the data set variables imported (or, with
    ``analysts_only``, only the former); nothing is listed that has no observation.
    """
    observations = Observation.objects.order_by()
    if analysts_only:
        observations = observations.filter(dataset__isnull=True)
    rows = (
        observations.values("source")
        .annotate(
            n=Count("id"),
            countries=Count("country_id", distinct=True),
            first=Min("observed_on"),
            last=Max("observed_on"),
        )
        .order_by("-n", "source")
    )
    return [
        SourceSummary(
            source=row["source"],
            observations=row["n"],
            countries=row["countries"],
            first=row["first"],
            last=row["last"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class PublicDataSource:
    """A data set of the mapping file, with its last import here (if any)."""

    info: DatasetInfo
    variables: list[VariableMapping]
    imported_at: datetime | None
    observations: int
    countries: int
    first_year: int | None
    last_year: int | None
    report: dict[str, Any]


@dataclass(frozen=True)
class PublicDataOverview:
    sources: list[PublicDataSource]
    not_used: dict[str, str]
    universe_about: str
    staleness_days: dict[str, tuple[int, str]]

    @property
    def imported(self) -> bool:
        return any(source.imported_at for source in self.sources)


def public_data_sources(*, mapping: SourceMapping) -> PublicDataOverview:
    """Every data set the mapping file names, its variables, and what was imported, in
    two queries (the data set rows, and one count per data set)."""
    rows = {row.key: row for row in DataSet.objects.all()}
    counts = {
        row["dataset__key"]: row
        for row in Observation.objects.filter(dataset__isnull=False)
        .order_by()
        .values("dataset__key")
        .annotate(
            n=Count("id"),
            countries=Count("country_id", distinct=True),
            first=Min("observed_on"),
            last=Max("observed_on"),
        )
    }
    sources = []
    for key, info in mapping.datasets.items():
        row, found = rows.get(key), counts.get(key, {})
        sources.append(
            PublicDataSource(
                info=info,
                variables=mapping.variables_of(key),
                imported_at=row.imported_at if row else None,
                observations=int(found.get("n", 0)),
                countries=int(found.get("countries", 0)),
                first_year=found["first"].year if found else None,
                last_year=found["last"].year if found else None,
                report=row.report if row else {},
            )
        )
    return PublicDataOverview(
        sources=sources,
        not_used=mapping.not_used,
        universe_about=mapping.universe_about,
        staleness_days=mapping.staleness_days,
    )


def country_choices() -> list[tuple[str, str]]:
    """(ISO3, name) of every country, by name, in one query."""
    return list(Country.objects.order_by("name").values_list("iso3", "name"))


# --- API -------------------------------------------------------------------------------

LATEST_SCORE_FIELDS = (
    "period",
    "overall",
    "genocide",
    "crimes_against_humanity",
    "war_crimes",
    "overall_crime",
    "level",
    "coverage",
    "change_3m",
    "change_12m",
    "change_3m_z",
)
SCORE_CRIMES = ("overall", "genocide", "crimes_against_humanity", "war_crimes")


def countries_with_latest_score(*, methodology: MethodologyVersion | None) -> QuerySet[Country]:
    """Every country, annotated ``latest_<field>`` for each of ``LATEST_SCORE_FIELDS``.

    The values are those of the country's latest score under ``methodology``; all null for
    a country without scores, or when ``methodology`` is None. One query for any number
    of countries: each annotation is a subquery on the (country, methodology, period) index.
    """
    latest = RiskScore.objects.filter(country=OuterRef("pk"), methodology=methodology)
    latest = latest.order_by("-period")
    return Country.objects.annotate(
        **{f"latest_{name}": Subquery(latest.values(name)[:1]) for name in LATEST_SCORE_FIELDS}
    )


def score_history(
    *, country: Country, methodology: MethodologyVersion | None, crime: str
) -> QuerySet[RiskScore]:
    """``country``'s scores under ``methodology`` by period, ``score`` = the ``crime`` score.

    ``crime`` is one of ``SCORE_CRIMES``; empty when ``methodology`` is None.
    """
    scores = (
        RiskScore.objects.filter(country=country, methodology=methodology)
        .annotate(score=F(_score_column(crime)), methodology_number=F("methodology__number"))
        .order_by("period")
    )
    return scores if methodology is not None else scores.none()


def ranking_period(*, methodology: MethodologyVersion | None, on: date) -> date | None:
    """The period to rank for the date ``on``: the end of its month, or failing that the
    latest month end before it scored under ``methodology``; None if there is none."""
    if methodology is None:
        return None
    month_end = (pd.Timestamp(on) + pd.offsets.MonthEnd(0)).date()
    found: date | None = RiskScore.objects.filter(
        methodology=methodology, period__lte=month_end
    ).aggregate(period=Max("period"))["period"]
    return found


def ranking(
    *, methodology: MethodologyVersion | None, period: date | None, crime: str
) -> QuerySet[RiskScore]:
    """Every country's score for ``period``, ``rank`` 1 for the highest ``crime`` score.

    Ties share a rank. Countries whose ``crime`` score rests on insufficient data (its
    coverage under the methodology's floor; ``thin``) rank after every other, whatever
    their number, and countries without that score come last. Filters added to the
    result (say, on the region) are applied before ranking, so ranks are within them.
    Empty when either ``methodology`` or ``period`` is None.
    """
    column = _score_column(crime)
    floor = float((methodology.thresholds if methodology else {}).get("min_coverage", 0.0))
    coverage = F("coverage") if crime == "overall" else Coalesce(f"coverage_{crime}", "coverage")
    scores = (
        RiskScore.objects.filter(methodology=methodology, period=period)
        .select_related("country")
        .annotate(score=F(column), ranked_coverage=coverage)
        .annotate(
            thin=Case(
                When(ranked_coverage__lt=floor, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .annotate(
            rank=Window(Rank(), order_by=[F("thin").asc(), F(column).desc(nulls_last=True)]),
        )
        .order_by("rank", "country__name")
    )
    return scores if methodology is not None and period is not None else scores.none()


def _score_column(crime: str) -> str:
    if crime not in SCORE_CRIMES:
        raise ValueError(f"Unknown crime type {crime!r}; expected one of {SCORE_CRIMES}.")
    return crime


def observations_for_api() -> QuerySet[Observation]:
    """Observations with their country, indicator and recorder, for listing."""
    return Observation.objects.select_related("country", "indicator", "recorded_by", "dataset")


def observation_by_key(
    *, country: str, indicator: str, observed_on: date, source: str
) -> Observation:
    """The observation with this key (ISO3, indicator code, date, source).

    Raises ``Observation.DoesNotExist`` if there is none.
    """
    return observations_for_api().get(
        country__iso3=country.strip().upper(),
        indicator__code=indicator.strip(),
        observed_on=observed_on,
        source=source.strip(),
    )


def risk_factors_with_indicators() -> QuerySet[RiskFactor]:
    """Risk factors with their indicators prefetched (two queries for any number)."""
    return RiskFactor.objects.prefetch_related(
        Prefetch("indicators", queryset=Indicator.objects.order_by("position"))
    )


def indicators_with_factor() -> QuerySet[Indicator]:
    return Indicator.objects.select_related("factor")


def scoring_runs() -> QuerySet[ScoringRun]:
    return ScoringRun.objects.select_related("methodology")


def methodology_events(
    *,
    version: MethodologyVersion | None = None,
    administrator: bool = False,
    limit: int | None = None,
) -> list[MethodologyEvent]:
    """The audit log, newest first (of one version, or all); events of drafts and
    discarded versions for administrators only. One query."""
    events = MethodologyEvent.objects.select_related("version", "actor").order_by("-at", "-pk")
    if version is not None:
        events = events.filter(version=version)
    if not administrator:
        events = events.filter(
            version__status__in=[
                MethodologyVersion.Status.PUBLISHED,
                MethodologyVersion.Status.SUPERSEDED,
            ]
        )
    return list(events[:limit] if limit else events)


@dataclass(frozen=True)
class SituationView:
    """A situation profile assigned to a country, with its latest score under it."""

    profile: str
    description: str
    starts_on: date
    ends_on: date | None
    justification: str
    period: date | None
    overall: float | None
    level: str | None
    overall_crime: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "justification": self.justification,
            "period": self.period.isoformat() if self.period else None,
            "overall": self.overall,
            "level": self.level,
        }


def situations_of(
    *,
    methodology: MethodologyVersion | None,
    countries: Collection[str] | None = None,
    on: date | None = None,
) -> dict[str, list[SituationView]]:
    """ISO3 -> the situation profiles assigned to it (those covering the month end ``on``
    when given), each with its latest score under ``methodology`` up to ``on``. Two
    queries for any number of countries."""
    assignments = ProfileAssignment.objects.select_related("profile", "country").order_by(
        "country__iso3", "-starts_on"
    )
    if countries is not None:
        assignments = assignments.filter(country__iso3__in=list(countries))
    if on is not None:
        assignments = assignments.filter(starts_on__lte=on).filter(
            Q(ends_on__isnull=True) | Q(ends_on__gte=on.replace(day=1))
        )
    assignments = list(assignments)
    if not assignments:
        return {}
    latest: dict[int, tuple[date, float | None, str, str]] = {}
    scores = SituationScore.objects.filter(assignment__in=assignments, methodology=methodology)
    if on is not None:
        scores = scores.filter(period__lte=on)
    for assignment_id, period, overall, level, crime in scores.order_by("period").values_list(
        "assignment_id", "period", "overall", "level", "overall_crime"
    ):
        latest[assignment_id] = (period, overall, level, crime)
    found: dict[str, list[SituationView]] = {}
    for a in assignments:
        period, overall, level, crime = latest.get(a.pk, (None, None, None, None))
        found.setdefault(a.country.iso3, []).append(
            SituationView(
                profile=a.profile.name,
                description=a.profile.description,
                starts_on=a.starts_on,
                ends_on=a.ends_on,
                justification=a.justification,
                period=period,
                overall=overall,
                level=level,
                overall_crime=crime,
            )
        )
    return found


def country_names() -> dict[str, str]:
    """ISO3 -> name of every country, in one query."""
    return dict(Country.objects.values_list("iso3", "name"))


def methodology_versions(*, administrator: bool = False) -> QuerySet[MethodologyVersion]:
    """Published and superseded versions (and drafts, for administrators), with people."""
    shown = [MethodologyVersion.Status.PUBLISHED, MethodologyVersion.Status.SUPERSEDED]
    if administrator:
        shown += [MethodologyVersion.Status.DRAFT, MethodologyVersion.Status.DISCARDED]
    return MethodologyVersion.objects.filter(status__in=shown).select_related(
        "created_by", "published_by", "based_on"
    )


# --- Uploads ---------------------------------------------------------------------------


def uploads_of(*, user: Any, limit: int = 20) -> list[ObservationUpload]:
    """The user's latest uploads, newest first, without their files."""
    return list(ObservationUpload.objects.filter(uploaded_by=user).defer("content")[:limit])


def observation_upload(*, pk: int) -> ObservationUpload | None:
    """One upload with its uploader, without its file; None if there is none."""
    return (
        ObservationUpload.objects.filter(pk=pk)
        .select_related("uploaded_by")
        .defer("content")
        .first()
    )


def upload_recompute_pending(*, upload: ObservationUpload) -> bool:
    """True while a recompute of scores that the upload asked for is still to be done."""
    return RecomputeRequest.objects.filter(
        done_at__isnull=True, reason=upload.recompute_reason
    ).exists()

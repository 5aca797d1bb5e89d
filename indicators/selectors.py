"""Reads for scoring: the only place where observations and weights leave the ORM as frames."""

from __future__ import annotations

import io
from collections.abc import Collection

import pandas as pd
from django.db import connection
from django.db.models import F

from indicators.models import (
    DEFAULT_STALENESS_DAYS,
    Indicator,
    Observation,
    RiskFactor,
    ScoringSettings,
)
from indicators.scoring import Thresholds

OBSERVATION_COLUMNS = ["country", "indicator", "observed_on", "value"]


def observations_frame(*, country_ids: Collection[int] | None = None) -> pd.DataFrame:
    """Every observation (or those of some countries) in one query.

    Columns: country (ISO3), indicator (code), observed_on (datetime64), value (float).
    """
    queryset = Observation.objects.all()
    if country_ids is not None:
        queryset = queryset.filter(country_id__in=list(country_ids))
    rows = queryset.values_list("country__iso3", "indicator__code", "observed_on", "value")
    if connection.vendor == "postgresql":
        # COPY streams a million rows as CSV several times faster than a cursor does.
        sql, params = rows.query.sql_with_params()
        buffer = io.StringIO()
        with connection.cursor() as cursor:
            copy = cursor.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params)
            cursor.copy_expert(copy.decode(), buffer)
        buffer.seek(0)
        frame = pd.read_csv(
            buffer, names=OBSERVATION_COLUMNS, dtype={"country": str, "indicator": str}
        )
    else:
        frame = pd.DataFrame.from_records(
            list(rows.iterator(chunk_size=20_000)), columns=OBSERVATION_COLUMNS
        )
    frame["observed_on"] = pd.to_datetime(frame["observed_on"])
    frame["value"] = frame["value"].astype(float)
    return frame


def factors_frame() -> pd.DataFrame:
    """Columns: factor (code), group, weight."""
    rows = RiskFactor.objects.values_list("code", "group", "weight")
    return pd.DataFrame.from_records(list(rows), columns=["factor", "group", "weight"])


def indicators_frame() -> pd.DataFrame:
    """Columns: indicator (code), factor (code), weight, staleness_days."""
    rows = Indicator.objects.annotate(factor_code=F("factor__code")).values_list(
        "code", "factor_code", "weight", "staleness_days"
    )
    frame = pd.DataFrame.from_records(
        list(rows), columns=["indicator", "factor", "weight", "staleness_days"]
    )
    staleness = pd.to_numeric(frame["staleness_days"], errors="coerce")
    frame["staleness_days"] = staleness.fillna(DEFAULT_STALENESS_DAYS).astype(int)
    return frame


def scoring_settings() -> ScoringSettings:
    """The single settings row, with the documented defaults if nobody has edited it yet."""
    found = ScoringSettings.objects.filter(pk=1).first()
    return found or ScoringSettings(pk=1)


def scoring_thresholds() -> Thresholds:
    current = scoring_settings()
    return Thresholds(
        moderate_from=current.moderate_from,
        high_from=current.high_from,
        very_high_from=current.very_high_from,
        min_coverage=current.min_coverage,
    )

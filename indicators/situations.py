"""Situation profiles: the same country scored under a named weight overlay.

A profile ("election period", "armed conflict under way") multiplies the published
version's weights; assigned to a country for a span of time with a justification, it
gives that country a second score for those months, computed with every scoring run of
the country and stored beside the standard one. Pages, the API and e-mails show it
next to the standard score and label it; nothing ranks or alerts on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

import pandas as pd

from indicators import scoring
from indicators.models import MethodologyVersion, ProfileAssignment, SituationScore


def score_situations(
    *,
    methodology: MethodologyVersion,
    observations: pd.DataFrame,
    factors: pd.DataFrame,
    indicators: pd.DataFrame,
    periods: pd.DatetimeIndex,
    country_ids: Collection[int] | None,
) -> int:
    """Recompute the situation scores of every assignment of these countries (all when
    None) under ``methodology`` for its months within ``periods``; returns rows written.

    Called by the scoring run, inside its transaction, with the frames it already read.
    """
    assignments = ProfileAssignment.objects.select_related("profile", "country")
    if country_ids is not None:
        assignments = assignments.filter(country_id__in=list(country_ids))
    assignments = list(assignments)
    SituationScore.objects.filter(assignment__in=assignments, methodology=methodology).delete()
    thresholds = scoring.Thresholds(**methodology.thresholds)
    rows = []
    for assignment in assignments:
        months = _months(assignment, periods)
        own = observations[observations["country"] == assignment.country.iso3]
        if len(months) == 0 or own.empty:
            continue
        result = scoring.compute_scores(
            own,
            indicators=_overlay(indicators, "indicator", assignment.profile.indicator_multipliers),
            factors=_overlay(factors, "factor", assignment.profile.factor_multipliers),
            periods=months,
            thresholds=thresholds,
        )
        for row in result.scores.itertuples(index=False):
            rows.append(
                SituationScore(
                    assignment=assignment,
                    methodology=methodology,
                    period=row.period.date(),
                    overall=None if row.overall != row.overall else round(row.overall, 4),
                    overall_crime=row.overall_crime,
                    level=row.level,
                    coverage=round(row.coverage, 4),
                )
            )
    SituationScore.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _months(assignment: ProfileAssignment, periods: pd.DatetimeIndex) -> pd.DatetimeIndex:
    first = pd.Timestamp(assignment.starts_on) + pd.offsets.MonthEnd(0)
    last = pd.Timestamp(assignment.ends_on or date.max) + pd.offsets.MonthEnd(0)
    return periods[(periods >= first) & (periods <= last)]


def _overlay(frame: pd.DataFrame, column: str, multipliers: Mapping[str, float]) -> pd.DataFrame:
    factor = frame[column].map(lambda code: float(multipliers.get(code, 1.0)))
    return frame.assign(weight=frame["weight"] * factor)

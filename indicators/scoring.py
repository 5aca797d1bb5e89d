"""The scoring engine: observations and weights in, risk scores out.

Pure by design: no Django, no I/O, no clock. Everything it needs arrives as arguments,
so the same inputs always give the same scores, and the rules below can be tested on
tiny hand-made frames. It implements DESIGN.md's "Scoring" section:

1. As-of values: for country c, indicator i and period t, the latest observation dated
   on or before t and no older than the indicator's staleness limit; several sources on
   that date are averaged. No observation means missing, never zero. An observation
   flagged ``overrides`` (an analyst correcting a data-derived value) replaces every
   other observation of the same country, indicator and date.
2. Factor score ``F_f = sum(w_i x_i) / sum(w_i)`` over the indicators of f with a value.
3. Crime-specific scores on 0-100: ``S_k = 100 * sum(W_f F_f) / sum(W_f)`` over the
   factors of crime type k that have a score. Common factors (RF1-RF8) feed all three.
4. Overall = the highest crime-specific score; ties go to the first of genocide,
   crimes against humanity, war crimes.
5. Coverage = share of the indicator weight of the factors used (weight > 0) that had
   a value; computed per crime type, and for the overall score that of its crime type.
   Below ``min_coverage`` the level is "insufficient_data", never "low".
6. Levels from editable thresholds.
7. Changes over 3 and 12 months, and the z-score of the 3-month change against the
   country's own earlier 3-month changes (no look-ahead).
8. Contributions ``100 * W_f F_f / sum(W_f)`` of each factor to the overall score; they
   add up to it, so differences between two periods explain a change.

Internally everything is a dense array shaped (country, period, indicator): each step
is a numpy reduction or a matrix product, with no Python loop over countries or periods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

CRIME_TYPES: tuple[str, ...] = ("genocide", "crimes_against_humanity", "war_crimes")
COMMON_GROUP = "common"
DEFAULT_STALENESS_DAYS = 730
# A z-score needs some history to mean anything: fewer earlier 3-month changes than
# this and the z-score is left missing rather than exaggerated.
MIN_HISTORY_FOR_Z = 12
# Relative size below which the spread of a country's 3-month changes is rounding noise
# (score arithmetic leaves ~1e-15) rather than history.
_Z_NOISE = 1e-9

LEVEL_INSUFFICIENT = "insufficient_data"
LEVEL_LOW = "low"
LEVEL_MODERATE = "moderate"
LEVEL_HIGH = "high"
LEVEL_VERY_HIGH = "very_high"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Thresholds:
    """Level bands on the 0-100 scale and the coverage floor below which data is too thin."""

    moderate_from: float = 25.0
    high_from: float = 50.0
    very_high_from: float = 75.0
    min_coverage: float = 0.15

    def __post_init__(self) -> None:
        if not 0 < self.moderate_from < self.high_from < self.very_high_from < 100:
            raise ValueError("Level thresholds must increase strictly within (0, 100).")
        if not 0 <= self.min_coverage <= 1:
            raise ValueError("min_coverage must lie in [0, 1].")


@dataclass(frozen=True)
class ScoringResult:
    """What ``compute_scores`` returns; the three frames share one row order and index.

    ``scores`` columns: country, period (datetime64), genocide, crimes_against_humanity,
    war_crimes, overall (floats on 0-100, NaN when no factor of that crime type has data),
    overall_crime (the crime type that gave the overall score), coverage (of the overall
    score), coverage_genocide, coverage_crimes_against_humanity, coverage_war_crimes
    (floats in [0, 1]), level, change_3m, change_12m, change_3m_z (NaN when unknown).

    ``factor_scores``: one column per factor code, F_f in [0, 1] or NaN.
    ``contributions``: one column per factor code, points added to the overall score
    (0 for factors outside the overall's crime type or without data); rows sum to overall.
    """

    scores: pd.DataFrame
    factor_scores: pd.DataFrame
    contributions: pd.DataFrame


SCORE_COLUMNS: tuple[str, ...] = (
    "country",
    "period",
    *CRIME_TYPES,
    "overall",
    "overall_crime",
    "coverage",
    *(f"coverage_{crime}" for crime in CRIME_TYPES),
    "level",
    "change_3m",
    "change_12m",
    "change_3m_z",
)


def compute_scores(
    observations: pd.DataFrame,
    *,
    indicators: pd.DataFrame,
    factors: pd.DataFrame,
    periods: Sequence[date] | pd.DatetimeIndex,
    thresholds: Thresholds = Thresholds(),
) -> ScoringResult:
    """Score every country that has observations, for every period.

    Inputs:
    - ``observations``: columns country (a code), indicator (a code), observed_on (date
      or datetime64), value (float in [0, 1]), and optionally overrides (bool).
    - ``indicators``: columns indicator (code), factor (code), weight (>= 0) and
      optionally staleness_days (int > 0; missing or NaN means 730).
    - ``factors``: columns factor (code), group (common, genocide,
      crimes_against_humanity or war_crimes), weight (>= 0).
    - ``periods``: the month ends to score, ascending and unique.

    Output: a ``ScoringResult``; one row per (country, period) at which at least one
    factor of some crime type has data, ordered by country then period.

    Raises ``ValueError`` for observations of unknown indicators, values outside [0, 1],
    negative weights, unknown factor groups or periods that are not ascending month ends.
    """
    period_index = _check_periods(periods)
    factor_codes, factor_weights, crime_matrix = _factor_arrays(factors)
    indicator_codes, indicator_weights, staleness, membership = _indicator_arrays(
        indicators, factor_codes
    )
    country_codes, as_of = _as_of_values(observations, indicator_codes, staleness, period_index)

    present = ~np.isnan(as_of)
    values = np.where(present, as_of, 0.0)
    present_f = present.astype(np.float64)

    # (country, period, indicator) @ (indicator, factor) -> (country, period, factor)
    weighted_membership = membership * indicator_weights[:, None]
    factor_num = values @ weighted_membership
    factor_den = present_f @ weighted_membership
    factor_score = _safe_divide(factor_num, factor_den)

    # (country, period, factor) @ (factor, crime) -> (country, period, crime)
    factor_present = ~np.isnan(factor_score)
    weighted_crimes = crime_matrix * factor_weights[:, None]
    crime_num = np.where(factor_present, factor_score, 0.0) @ weighted_crimes
    crime_den = factor_present.astype(np.float64) @ weighted_crimes
    crime_score = 100.0 * _safe_divide(crime_num, crime_den)

    # Coverage: indicator weight with data over all indicator weight of the factors used.
    used_factor = (factor_weights > 0).astype(np.float64)
    indicator_crime_weight = weighted_membership @ (crime_matrix * used_factor[:, None])
    crime_coverage = np.nan_to_num(
        _safe_divide(present_f @ indicator_crime_weight, indicator_crime_weight.sum(axis=0)),
        nan=0.0,
    )

    has_score = ~np.isnan(crime_score).all(axis=2)
    winner = np.argmax(np.where(np.isnan(crime_score), -np.inf, crime_score), axis=2)
    overall = np.where(has_score, _take_crime(crime_score, winner), np.nan)
    coverage = _take_crime(crime_coverage, winner)

    change_3m = _change(overall, _lag_positions(period_index, 3))
    change_12m = _change(overall, _lag_positions(period_index, 12))
    change_3m_z = _expanding_z(change_3m)

    # Contributions to the overall score: W_f F_f / sum(W_f present) * 100 for its crime.
    crime_den_winner = _take_crime(crime_den, winner)
    winner_column = weighted_crimes.T[winner]  # (country, period, factor): W_f if f in crime
    contributions = (
        100.0
        * np.where(factor_present, factor_score, 0.0)
        * winner_column
        / np.where(crime_den_winner > 0, crime_den_winner, np.inf)[..., None]
    )

    rows_c, rows_p = np.nonzero(has_score)
    scores = pd.DataFrame(
        {
            "country": country_codes[rows_c],
            "period": period_index.values[rows_p],
            **{crime: crime_score[rows_c, rows_p, k] for k, crime in enumerate(CRIME_TYPES)},
            "overall": overall[rows_c, rows_p],
            "overall_crime": np.asarray(CRIME_TYPES, dtype=object)[winner[rows_c, rows_p]],
            "coverage": coverage[rows_c, rows_p],
            **{
                f"coverage_{crime}": crime_coverage[rows_c, rows_p, k]
                for k, crime in enumerate(CRIME_TYPES)
            },
            "level": assign_levels(overall[rows_c, rows_p], coverage[rows_c, rows_p], thresholds),
            "change_3m": change_3m[rows_c, rows_p],
            "change_12m": change_12m[rows_c, rows_p],
            "change_3m_z": change_3m_z[rows_c, rows_p],
        },
        columns=list(SCORE_COLUMNS),
    )
    factor_frame = pd.DataFrame(factor_score[rows_c, rows_p], columns=list(factor_codes))
    contribution_frame = pd.DataFrame(contributions[rows_c, rows_p], columns=list(factor_codes))
    return ScoringResult(
        scores=scores, factor_scores=factor_frame, contributions=contribution_frame
    )


def assign_levels(
    overall: FloatArray, coverage: FloatArray, thresholds: Thresholds
) -> npt.NDArray[np.object_]:
    """The level of each score; thin coverage or no score gives "insufficient_data"."""
    overall = np.asarray(overall, dtype=np.float64)
    coverage = np.asarray(coverage, dtype=np.float64)
    insufficient = np.isnan(overall) | ~(coverage >= thresholds.min_coverage)
    levels = np.select(
        [
            insufficient,
            overall >= thresholds.very_high_from,
            overall >= thresholds.high_from,
            overall >= thresholds.moderate_from,
        ],
        [LEVEL_INSUFFICIENT, LEVEL_VERY_HIGH, LEVEL_HIGH, LEVEL_MODERATE],
        default=LEVEL_LOW,
    )
    return np.asarray(levels, dtype=object)


def contribution_changes(
    before: Mapping[str, float], after: Mapping[str, float]
) -> list[tuple[str, float]]:
    """What moved a score: each factor's change in contribution, biggest move first.

    ``before`` and ``after`` map factor codes to contributions (as stored with a score);
    a factor missing on one side counts as 0 there. The changes add up to the change of
    the overall score.
    """
    codes = sorted(set(before) | set(after))
    changes = [(code, float(after.get(code, 0.0)) - float(before.get(code, 0.0))) for code in codes]
    return sorted(changes, key=lambda item: (-abs(item[1]), item[0]))


def crime_contributions(
    factor_scores: Mapping[str, float | None],
    *,
    factor_weights: Mapping[str, float],
    factor_groups: Mapping[str, str],
    crime: str,
) -> dict[str, float]:
    """Each factor's points in one crime-specific score (rule 8 for that crime type).

    ``factor_scores`` maps factor codes to F_f (None or NaN: no data), as stored with a
    score; ``factor_weights`` and ``factor_groups`` are the methodology's W_f and each
    factor's group. Factors of the crime type with data get ``100 * W_f F_f / sum(W_f)``
    over those present; the values add up to the crime's score. Empty when no factor of
    the crime type has data (the crime has no score).
    """
    if crime not in CRIME_TYPES:
        raise ValueError(f"Unknown crime type {crime!r}.")
    present = {
        code: float(value)
        for code, value in factor_scores.items()
        if value is not None
        and not np.isnan(float(value))
        and factor_groups.get(code) in (COMMON_GROUP, crime)
        and float(factor_weights.get(code, 0.0)) > 0
    }
    total = sum(float(factor_weights[code]) for code in present)
    if total <= 0:
        return {}
    return {
        code: 100.0 * float(factor_weights[code]) * value / total for code, value in present.items()
    }


@dataclass(frozen=True)
class ScoreState:
    """What ``explain_change`` needs of one stored score: the overall score, the crime
    type that gave it, the three crime-specific scores and the factor scores."""

    overall: float
    overall_crime: str
    crime_scores: Mapping[str, float | None]
    factor_scores: Mapping[str, float | None]


@dataclass(frozen=True)
class ChangeStep:
    """One step from the earlier overall score to the later one.

    ``kind`` "factor": a factor's change of contribution within ``crime``, with its
    factor scores before and after (None: no data then). ``kind`` "switch": the overall
    score follows another crime type from here (``from_crime`` to ``to_crime``), worth
    the difference of the two crime-specific scores in that month.
    """

    kind: str
    change: float
    code: str = ""
    crime: str = ""
    before: float | None = None
    after: float | None = None
    from_crime: str = ""
    to_crime: str = ""


@dataclass(frozen=True)
class ChangeExplanation:
    """The overall score's move from ``start`` to ``end``, explained within ``crime``.

    ``steps`` add up to ``end - start``: a switch into ``crime`` first when the earlier
    overall followed another crime type, the factors' changes within ``crime`` (biggest
    first), and a switch out of it last when the later overall follows another one.
    ``crime_start`` and ``crime_end`` are the crime-specific scores the factor steps
    run between.
    """

    crime: str
    start: float
    end: float
    crime_start: float
    crime_end: float
    steps: tuple[ChangeStep, ...]

    @property
    def factor_steps(self) -> tuple[ChangeStep, ...]:
        return tuple(step for step in self.steps if step.kind == "factor")

    @property
    def switched(self) -> bool:
        return any(step.kind == "switch" for step in self.steps)


def explain_change(
    before: ScoreState,
    after: ScoreState,
    *,
    crime: str | None = None,
    factor_weights: Mapping[str, float],
    factor_groups: Mapping[str, str],
) -> ChangeExplanation:
    """What moved the overall score between two months, factor by factor, per crime type.

    The overall score is the highest crime-specific score, so its factors are those of
    whichever crime type was highest: subtracting the contributions of two months whose
    overall followed different crime types would show a factor that rose within the
    new crime type as a fall (its points were 0 under the old one). Instead every
    factor's change is taken within one crime type, ``crime`` (default: that of the
    later month), and each switch of crime type is a step of its own.

    Raises ``ValueError`` when ``crime`` has no score in one of the two months.
    """
    crime = crime or after.overall_crime
    if crime not in CRIME_TYPES:
        raise ValueError(f"Unknown crime type {crime!r}.")
    crime_start = _known(before.crime_scores.get(crime))
    crime_end = _known(after.crime_scores.get(crime))
    if crime_start is None or crime_end is None:
        raise ValueError(f"No {crime.replace('_', ' ')} score in one of the two months.")
    then, now = (
        crime_contributions(
            state.factor_scores,
            factor_weights=factor_weights,
            factor_groups=factor_groups,
            crime=crime,
        )
        for state in (before, after)
    )
    steps: list[ChangeStep] = []
    if before.overall_crime != crime:
        steps.append(
            ChangeStep(
                kind="switch",
                change=crime_start - before.overall,
                from_crime=before.overall_crime,
                to_crime=crime,
            )
        )
    for code, change in contribution_changes(then, now):
        steps.append(
            ChangeStep(
                kind="factor",
                change=change,
                code=code,
                crime=crime,
                before=_known(before.factor_scores.get(code)),
                after=_known(after.factor_scores.get(code)),
            )
        )
    if after.overall_crime != crime:
        steps.append(
            ChangeStep(
                kind="switch",
                change=after.overall - crime_end,
                from_crime=crime,
                to_crime=after.overall_crime,
            )
        )
    return ChangeExplanation(
        crime=crime,
        start=before.overall,
        end=after.overall,
        crime_start=crime_start,
        crime_end=crime_end,
        steps=tuple(steps),
    )


def _known(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if np.isnan(number) else number


def month_ends(start: date, end: date) -> pd.DatetimeIndex:
    """Month ends from the month of ``start`` to the month of ``end``, both included."""
    first = pd.Timestamp(start) + pd.offsets.MonthEnd(0)
    last = pd.Timestamp(end) + pd.offsets.MonthEnd(0)
    return pd.date_range(first, last, freq="ME")


# --- internals -------------------------------------------------------------------------


def _check_periods(periods: Sequence[date] | pd.DatetimeIndex) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(periods)))).normalize()
    if len(index) == 0:
        raise ValueError("No periods to score.")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("Periods must be ascending and unique.")
    if not bool(index.is_month_end.all()):
        raise ValueError("Periods must be month ends.")
    return index


def _factor_arrays(factors: pd.DataFrame) -> tuple[npt.NDArray[np.object_], FloatArray, FloatArray]:
    codes = factors["factor"].to_numpy(dtype=object)
    if len(set(codes)) != len(codes):
        raise ValueError("Factor codes must be unique.")
    weights = factors["weight"].to_numpy(dtype=np.float64)
    if (weights < 0).any() or np.isnan(weights).any():
        raise ValueError("Factor weights must be non-negative numbers.")
    groups = factors["group"].to_numpy(dtype=object)
    unknown = set(groups) - {COMMON_GROUP, *CRIME_TYPES}
    if unknown:
        raise ValueError(f"Unknown factor group(s): {sorted(unknown)}.")
    crime_matrix = np.array(
        [[group in (COMMON_GROUP, crime) for crime in CRIME_TYPES] for group in groups],
        dtype=np.float64,
    ).reshape(len(codes), len(CRIME_TYPES))
    return codes, weights, crime_matrix


def _indicator_arrays(
    indicators: pd.DataFrame, factor_codes: npt.NDArray[np.object_]
) -> tuple[pd.Index, FloatArray, IntArray, FloatArray]:
    codes = pd.Index(indicators["indicator"].astype(str))
    if not codes.is_unique:
        raise ValueError("Indicator codes must be unique.")
    weights = indicators["weight"].to_numpy(dtype=np.float64)
    if (weights < 0).any() or np.isnan(weights).any():
        raise ValueError("Indicator weights must be non-negative numbers.")
    if "staleness_days" in indicators:
        staleness_raw = pd.to_numeric(indicators["staleness_days"], errors="coerce")
        staleness = staleness_raw.fillna(DEFAULT_STALENESS_DAYS).to_numpy(dtype=np.int64)
    else:
        staleness = np.full(len(codes), DEFAULT_STALENESS_DAYS, dtype=np.int64)
    factor_position = pd.Index(factor_codes).get_indexer(pd.Index(indicators["factor"]))
    if (factor_position < 0).any():
        missing = sorted(set(indicators["factor"][factor_position < 0]))
        raise ValueError(f"Indicators refer to unknown factor(s): {missing}.")
    membership = np.zeros((len(codes), len(factor_codes)), dtype=np.float64)
    membership[np.arange(len(codes)), factor_position] = 1.0
    return codes, weights, staleness, membership


def _as_of_values(
    observations: pd.DataFrame,
    indicator_codes: pd.Index,
    staleness: IntArray,
    periods: pd.DatetimeIndex,
) -> tuple[npt.NDArray[np.object_], FloatArray]:
    """Dense (country, period, indicator) array of as-of values, NaN where missing."""
    n_periods, n_indicators = len(periods), len(indicator_codes)
    if observations.empty:
        return np.array([], dtype=object), np.full((0, n_periods, n_indicators), np.nan)
    observations = _apply_overrides(observations)

    indicator_pos = indicator_codes.get_indexer(pd.Index(observations["indicator"].astype(str)))
    if (indicator_pos < 0).any():
        unknown = sorted(set(observations["indicator"][indicator_pos < 0].astype(str)))
        raise ValueError(f"Observations of unknown indicator(s): {unknown[:10]}.")
    values = observations["value"].to_numpy(dtype=np.float64)
    if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise ValueError("Observation values must lie in [0, 1].")

    country_pos, country_codes = pd.factorize(observations["country"], sort=True)
    days = _to_days(observations["observed_on"])
    period_days = _to_days(periods)
    # The first period on or after the observation's date is the first that can see it.
    period_pos = np.searchsorted(period_days, days, side="left")
    visible = period_pos < n_periods
    country_pos, period_pos = country_pos[visible], period_pos[visible]
    indicator_pos, days, values = indicator_pos[visible], days[visible], values[visible]

    # Sort by cell, then date; average same-date observations (several sources), then keep
    # the latest date within each (country, period, indicator) cell.
    cell = (country_pos.astype(np.int64) * n_periods + period_pos) * n_indicators + indicator_pos
    order = np.lexsort((days, cell))
    cell, days, values = cell[order], days[order], values[order]
    new_group = np.ones(len(cell), dtype=bool)
    new_group[1:] = (cell[1:] != cell[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new_group)
    group_mean = np.add.reduceat(values, starts) / np.diff(np.append(starts, len(cell)))
    group_cell, group_day = cell[starts], days[starts]
    last_of_cell = np.ones(len(group_cell), dtype=bool)
    last_of_cell[:-1] = group_cell[1:] != group_cell[:-1]

    shape = (len(country_codes), n_periods, n_indicators)
    latest_value = np.full(shape, np.nan).reshape(-1)
    latest_day = np.zeros(shape, dtype=np.int64).reshape(-1)
    has_obs = np.zeros(shape, dtype=bool).reshape(-1)
    latest_value[group_cell[last_of_cell]] = group_mean[last_of_cell]
    latest_day[group_cell[last_of_cell]] = group_day[last_of_cell]
    has_obs[group_cell[last_of_cell]] = True

    # Carry the latest observation forward through later periods, then drop stale ones.
    source_period = np.where(has_obs.reshape(shape), np.arange(n_periods)[None, :, None], -1)
    np.maximum.accumulate(source_period, axis=1, out=source_period)
    known = source_period >= 0
    take = np.where(known, source_period, 0)
    carried_value = np.take_along_axis(latest_value.reshape(shape), take, axis=1)
    carried_day = np.take_along_axis(latest_day.reshape(shape), take, axis=1)
    age = period_days[None, :, None] - carried_day
    fresh = known & (age <= staleness[None, None, :])
    return np.asarray(country_codes, dtype=object), np.where(fresh, carried_value, np.nan)


def _apply_overrides(observations: pd.DataFrame) -> pd.DataFrame:
    """Drop observations of a (country, indicator, date) that an ``overrides`` row replaces."""
    if "overrides" not in observations:
        return observations
    flag = observations["overrides"].fillna(False).astype(bool).to_numpy()
    if not flag.any():
        return observations
    keys = pd.MultiIndex.from_arrays(
        [
            observations["country"].astype(str),
            observations["indicator"].astype(str),
            pd.to_datetime(observations["observed_on"]),
        ]
    )
    replaced = ~flag & keys.isin(keys[flag])
    return observations[~replaced]


def last_complete_month_end(today: date) -> date:
    """The end of the last month that is over on ``today`` (scores never show a month
    that has not ended)."""
    stamp: date = (pd.Timestamp(today.replace(day=1)) - pd.Timedelta(days=1)).date()
    return stamp


def _to_days(values: pd.Series | pd.DatetimeIndex) -> IntArray:
    """Dates as whole days since the epoch."""
    stamps = pd.to_datetime(values)
    return np.asarray(stamps.to_numpy(dtype="datetime64[D]").astype(np.int64), dtype=np.int64)


def _safe_divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator, NaN where the denominator is 0 (nothing to average)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _take_crime(per_crime: FloatArray, winner: IntArray) -> FloatArray:
    return np.take_along_axis(per_crime, winner[..., None], axis=2)[..., 0]


def _lag_positions(periods: pd.DatetimeIndex, months: int) -> IntArray:
    """For each period, the position of the month end ``months`` earlier, or -1."""
    earlier = periods - pd.offsets.MonthEnd(months)
    return np.asarray(periods.get_indexer(earlier), dtype=np.int64)


def _change(series: FloatArray, lag: IntArray) -> FloatArray:
    """series[:, p] - series[:, lag[p]], NaN where the earlier period is not scored."""
    earlier = np.where(lag >= 0, series[:, np.where(lag >= 0, lag, 0)], np.nan)
    return series - earlier


def _expanding_z(changes: FloatArray) -> FloatArray:
    """z-score of each value against the same country's earlier values (axis 1).

    Welford's online mean and variance, one period at a time for every country at once:
    running sums of x and x² lose the variance to cancellation (a steady ramp, whose
    earlier changes are all equal, has no spread, yet the sums leave about 1e-7 and a
    small change then scores millions of standard deviations). A spread within
    ``_Z_NOISE`` of the mean's size is rounding noise, not history: the z-score is then
    left missing.
    """
    n_countries, n_periods = changes.shape
    count = np.zeros(n_countries)
    mean = np.zeros(n_countries)
    squares = np.zeros(n_countries)  # sum of squared deviations from the running mean
    z = np.full(changes.shape, np.nan)
    for p in range(n_periods):
        value = changes[:, p]
        known = ~np.isnan(value)
        # Statistics of the history strictly before this period.
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(squares / (count - 1))
            usable = known & (count >= MIN_HISTORY_FOR_Z) & (std > _Z_NOISE * (1.0 + np.abs(mean)))
            z[:, p] = np.where(usable, (value - mean) / std, np.nan)
        filled = np.where(known, value, 0.0)
        count = count + known
        delta = np.where(known, filled - mean, 0.0)
        mean = mean + np.where(known, delta / np.maximum(count, 1.0), 0.0)
        squares = squares + np.where(known, delta * (filled - mean), 0.0)
    return z

"""Alert rules: which score changes and observations must reach a focal point.

Pure by design (no Django, no I/O, no clock), so every threshold edge is tested on
tiny frames. DESIGN.md's "Alerts" section is the specification:

- Level crossing: a country's overall or crime-specific level rises (moderate -> high).
  A level only counts once coverage is sufficient: data arriving is not risk rising.
- Surge: the overall score rises by at least ``surge_points`` in 3 months, or its
  3-month change is at least ``surge_z`` standard deviations above the country's own
  history (the z-score the scoring engine stores).
- Red flag: an observation of severity >= ``red_flag_severity`` on an indicator of
  RF10 (intent to destroy a group), RF12 (plan or policy to attack civilians) or on
  incitement (8.7). Raised at once when recorded, not at the next scoring run.

Level crossings and surges compare a run with the *baseline*: the scores the previous
evaluated run had for the same country at its latest period. So evidence that changes
a published score (a backdated observation too) is seen, while a run that changes
nothing raises nothing, even after its alerts were resolved or dismissed. A baseline
under another methodology version is no baseline: new weights never raise alerts by
themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, cast

import pandas as pd


class Rule(StrEnum):
    LEVEL_CROSSING = "level_crossing"
    SURGE = "surge"
    RED_FLAG = "red_flag"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER.index(self)


SEVERITY_ORDER = (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
OVERALL = "overall"
CRIME_TYPES = ("genocide", "crimes_against_humanity", "war_crimes")
LEVEL_ORDER = ("low", "moderate", "high", "very_high")
INSUFFICIENT = "insufficient_data"
# Reaching a level raises an alert of this severity.
LEVEL_SEVERITY = {
    "moderate": Severity.INFO,
    "high": Severity.WARNING,
    "very_high": Severity.CRITICAL,
}
# Which crime type a red-flag indicator speaks to, by factor (8.7 speaks to all).
RED_FLAG_CRIME = {"RF10": "genocide", "RF12": "crimes_against_humanity"}


@dataclass(frozen=True)
class AlertThresholds:
    moderate_from: float = 25.0
    high_from: float = 50.0
    very_high_from: float = 75.0
    min_coverage: float = 0.15
    surge_points: float = 10.0
    surge_z: float = 2.0
    red_flag_severity: float = 2 / 3
    # Observations older than this (by observed_on) count in scores but raise no red
    # flag: an import of history is not news.
    red_flag_window_days: int = 90
    red_flag_factors: frozenset[str] = frozenset({"RF10", "RF12"})
    red_flag_indicators: frozenset[str] = frozenset({"8.7"})


@dataclass(frozen=True)
class Escalation:
    """Something a focal point must hear about; numbers say what moved and by how much."""

    country: str
    rule: Rule
    crime_type: str
    severity: Severity
    period: date
    summary: str
    score: float | None = None
    previous_score: float | None = None
    level: str | None = None
    previous_level: str | None = None
    change_3m: float | None = None
    change_3m_z: float | None = None
    drivers: tuple[tuple[str, float], ...] = ()
    indicator: str | None = None
    value: float | None = None
    observation_id: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """One open alert per (country, rule, crime type)."""
        return (self.country, self.rule.value, self.crime_type)


def level_of(score: float | None, coverage: float | None, thresholds: AlertThresholds) -> str:
    if score is None or _missing(score) or coverage is None or coverage < thresholds.min_coverage:
        return INSUFFICIENT
    if score >= thresholds.very_high_from:
        return "very_high"
    if score >= thresholds.high_from:
        return "high"
    if score >= thresholds.moderate_from:
        return "moderate"
    return "low"


def find_escalations(
    baseline: pd.DataFrame, current: pd.DataFrame, thresholds: AlertThresholds
) -> list[Escalation]:
    """Level crossings and surges of a new run against the previous evaluated one.

    ``current``: one row per country at the run's latest period, with columns country,
    period, methodology, overall, genocide, crimes_against_humanity, war_crimes,
    coverage (and optionally coverage_<crime type> per crime type), change_3m,
    change_3m_z, contributions ({factor: points}) and
    contributions_3m_before (the contributions three months earlier, the window of
    change_3m). ``baseline``: the same columns (contributions_3m_before not needed) as
    the previous evaluated run had them; it may lack countries.

    - No baseline (first score): only a surge can fire; there is no level to rise from.
    - Baseline under another methodology: nothing fires (it is a new baseline only).
    - Level crossing: a level above the baseline's level.
    - Surge: present in the current run and new against the baseline (absent there),
      or present in both with a higher overall score than the baseline's.

    Returns escalations ordered by country, rule, crime.
    """
    # to_dict types its keys as Hashable; these frames' columns are strings.
    before = {row["country"]: row for row in _records(baseline)}
    escalations: list[Escalation] = []
    for now in _records(current):
        then = before.get(now["country"])
        if then is not None and then.get("methodology") != now.get("methodology"):
            continue
        escalations.extend(_level_crossings(then, now, thresholds))
        surge = _surge(then, now, thresholds)
        if surge is not None:
            escalations.append(surge)
    return sorted(escalations, key=lambda e: (e.country, e.rule.value, e.crime_type))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", frame.to_dict("records"))


def find_red_flags(
    observations: pd.DataFrame, thresholds: AlertThresholds, *, today: date
) -> list[Escalation]:
    """Red flags among newly recorded observations.

    ``observations``: columns id, country, indicator, factor, observed_on, value, source.
    Severity is critical for a value at the top of the scale or any sign of intent to
    destroy a group (RF10), warning otherwise. Observations dated before ``today``
    minus ``red_flag_window_days`` raise nothing (the window's first day still does).
    """
    oldest = red_flag_window_start(today, thresholds)
    flags = []
    for row in observations.to_dict("records"):
        if _as_date(row["observed_on"]) < oldest:
            continue
        red_flag_indicator = (
            row["factor"] in thresholds.red_flag_factors
            or row["indicator"] in thresholds.red_flag_indicators
        )
        if not red_flag_indicator or row["value"] < thresholds.red_flag_severity - 1e-9:
            continue
        critical = row["value"] >= 1 - 1e-9 or row["factor"] == "RF10"
        crime = RED_FLAG_CRIME.get(row["factor"], OVERALL)
        flags.append(
            Escalation(
                country=row["country"],
                rule=Rule.RED_FLAG,
                crime_type=crime,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                period=_as_date(row["observed_on"]),
                summary=(
                    f"Red flag: indicator {row['indicator']} assessed at "
                    f"{_severity_word(row['value'])} ({row['value']:.2f}) by {row['source']}"
                ),
                indicator=row["indicator"],
                value=float(row["value"]),
                observation_id=int(row["id"]),
            )
        )
    return sorted(flags, key=lambda e: (e.country, e.crime_type, e.observation_id or 0))


def red_flag_window_start(today: date, thresholds: AlertThresholds) -> date:
    """The oldest observation date that can still raise a red flag."""
    return today - timedelta(days=thresholds.red_flag_window_days)


def is_further_rise(
    escalation: Escalation,
    *,
    severity: str,
    score: float | None,
    value: float | None,
    indicator: str | None,
) -> bool:
    """Whether an escalation goes beyond what an open alert already says.

    Higher severity always does; otherwise a higher score (level crossing, surge) or,
    for red flags, a higher value or a red flag on another indicator.
    """
    if escalation.severity.rank > Severity(severity).rank:
        return True
    if escalation.severity.rank < Severity(severity).rank:
        return False
    if escalation.rule is Rule.RED_FLAG:
        return (escalation.value or 0) > (value or 0) + 1e-9 or escalation.indicator != indicator
    return (escalation.score or 0) > (score or 0) + 1e-9


def top_drivers(
    before: Mapping[str, float] | None, after: Mapping[str, float] | None, count: int = 3
) -> tuple[tuple[str, float], ...]:
    """The factors whose contribution moved most between two scorings, biggest first."""
    before, after = before or {}, after or {}
    changes = [
        (code, round(float(after.get(code, 0.0)) - float(before.get(code, 0.0)), 2))
        for code in set(before) | set(after)
    ]
    changes = [item for item in changes if item[1] != 0]
    changes.sort(key=lambda item: (-abs(item[1]), item[0]))
    return tuple(changes[:count])


# --- internals -------------------------------------------------------------------------


def _level_crossings(
    then: Mapping[str, Any] | None, now: Mapping[str, Any], thresholds: AlertThresholds
) -> list[Escalation]:
    if then is None:
        return []
    found = []
    for crime in (OVERALL, *CRIME_TYPES):
        old = level_of(_number(then.get(crime)), _coverage(then, crime), thresholds)
        new = level_of(_number(now.get(crime)), _coverage(now, crime), thresholds)
        if INSUFFICIENT in (old, new) or LEVEL_ORDER.index(new) <= LEVEL_ORDER.index(old):
            continue
        label = "overall" if crime == OVERALL else crime.replace("_", " ")
        found.append(
            Escalation(
                country=now["country"],
                rule=Rule.LEVEL_CROSSING,
                crime_type=crime,
                severity=LEVEL_SEVERITY[new],
                period=_as_date(now["period"]),
                summary=(
                    f"{label.capitalize()} risk rose from {old.replace('_', ' ')} to "
                    f"{new.replace('_', ' ')} ({_number(then.get(crime)):.1f} → "
                    f"{_number(now.get(crime)):.1f})"
                ),
                score=_number(now.get(crime)),
                previous_score=_number(then.get(crime)),
                level=new,
                previous_level=old,
                change_3m=_number(now.get("change_3m")),
                change_3m_z=_number(now.get("change_3m_z")),
                drivers=top_drivers(then.get("contributions"), now.get("contributions")),
            )
        )
    return found


def _surge_reasons(
    row: Mapping[str, Any], thresholds: AlertThresholds
) -> tuple[float, float | None, list[str]] | None:
    """(change, z, reasons) when ``row`` shows a surge, else None."""
    change = _number(row.get("change_3m"))
    z = _number(row.get("change_3m_z"))
    if change is None:
        return None
    by_points = change >= thresholds.surge_points - 1e-9
    by_z = z is not None and change > 0 and z >= thresholds.surge_z
    reasons = []
    if by_points:
        reasons.append(f"+{change:.1f} points in 3 months")
    if by_z:
        reasons.append(f"{z:.1f} standard deviations above its own history")
    return (change, z, reasons) if reasons else None


def _surge(
    then: Mapping[str, Any] | None, now: Mapping[str, Any], thresholds: AlertThresholds
) -> Escalation | None:
    found = _surge_reasons(now, thresholds)
    if found is None:
        return None
    change, z, reasons = found
    overall = _number(now.get(OVERALL))
    if then is not None and _surge_reasons(then, thresholds) is not None:
        before = _number(then.get(OVERALL))
        # Already surging at the baseline: only a further rise is news.
        if overall is None or (before is not None and overall <= before + 1e-9):
            return None
    critical = change >= 2 * thresholds.surge_points - 1e-9
    return Escalation(
        country=now["country"],
        rule=Rule.SURGE,
        crime_type=OVERALL,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        period=_as_date(now["period"]),
        summary="Overall risk surged: " + "; ".join(reasons),
        score=overall,
        previous_score=None if overall is None else overall - change,
        level=level_of(overall, _number(now.get("coverage")), thresholds),
        previous_level=None,
        change_3m=change,
        change_3m_z=z,
        # The same window as the change: what moved the score over these 3 months.
        drivers=top_drivers(now.get("contributions_3m_before"), now.get("contributions")),
    )


def _coverage(row: Mapping[str, Any], crime: str) -> float | None:
    """A crime-specific score's own coverage; the overall coverage for the overall score
    and for scores stored before per-crime coverage existed."""
    own = _number(row.get(f"coverage_{crime}")) if crime != OVERALL else None
    return own if own is not None else _number(row.get("coverage"))


def _number(value: Any) -> float | None:
    if value is None or _missing(value):
        return None
    return float(value)


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _as_date(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _severity_word(value: float) -> str:
    return "high" if value >= 1 - 1e-9 else "moderate" if value >= 2 / 3 - 1e-9 else "low"

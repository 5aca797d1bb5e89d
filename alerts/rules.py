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

"Previous" is the country's score one month earlier *in the same scoring run*, so a
change of weights (a new methodology version) never raises alerts by itself, and
evaluating a run twice finds the same escalations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

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
    min_coverage: float = 0.25
    surge_points: float = 10.0
    surge_z: float = 2.0
    red_flag_severity: float = 2 / 3
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
    previous: pd.DataFrame, current: pd.DataFrame, thresholds: AlertThresholds
) -> list[Escalation]:
    """Level crossings and surges between two scorings of the same countries.

    Both frames: one row per country with columns country, period, overall, genocide,
    crimes_against_humanity, war_crimes, coverage, change_3m, change_3m_z and
    contributions ({factor: points}). ``previous`` may lack countries (first score):
    then only surges can fire. Returns escalations ordered by country, rule, crime.
    """
    before = {row["country"]: row for row in previous.to_dict("records")}
    escalations: list[Escalation] = []
    for now in current.to_dict("records"):
        then = before.get(now["country"])
        escalations.extend(_level_crossings(then, now, thresholds))
        surge = _surge(then, now, thresholds)
        if surge is not None:
            escalations.append(surge)
    return sorted(escalations, key=lambda e: (e.country, e.rule.value, e.crime_type))


def find_red_flags(observations: pd.DataFrame, thresholds: AlertThresholds) -> list[Escalation]:
    """Red flags among newly recorded observations.

    ``observations``: columns id, country, indicator, factor, observed_on, value, source.
    Severity is critical for a value at the top of the scale or any sign of intent to
    destroy a group (RF10), warning otherwise.
    """
    flags = []
    for row in observations.to_dict("records"):
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
        old = level_of(_number(then.get(crime)), _number(then.get("coverage")), thresholds)
        new = level_of(_number(now.get(crime)), _number(now.get("coverage")), thresholds)
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


def _surge(
    then: Mapping[str, Any] | None, now: Mapping[str, Any], thresholds: AlertThresholds
) -> Escalation | None:
    change = _number(now.get("change_3m"))
    z = _number(now.get("change_3m_z"))
    by_points = change is not None and change >= thresholds.surge_points - 1e-9
    by_z = z is not None and change is not None and change > 0 and z >= thresholds.surge_z
    if change is None or not (by_points or by_z):
        return None
    critical = change >= 2 * thresholds.surge_points - 1e-9
    reasons = []
    if by_points:
        reasons.append(f"+{change:.1f} points in 3 months")
    if by_z:
        reasons.append(f"{z:.1f} standard deviations above its own history")
    overall = _number(now.get(OVERALL))
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
        previous_level=(
            None
            if then is None
            else level_of(_number(then.get(OVERALL)), _number(then.get("coverage")), thresholds)
        ),
        change_3m=change,
        change_3m_z=z,
        drivers=top_drivers(then.get("contributions") if then else None, now.get("contributions")),
    )


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

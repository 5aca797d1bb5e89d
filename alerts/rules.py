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

Everything one event raises for one country (a scoring run's crossings and surge, a
batch of observations' red flags) reaches a focal point as one message: red flags of
one country and crime type merge into one escalation listing each indicator, and
``urgency_key`` orders triggers and countries (severity, then the size of the rise,
then the newest). Numbers are described in words: levels, crime types, and analysts'
assessments on the 0-3 scale they were entered on.
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
CRIME_WORDS = {
    OVERALL: "overall",
    "genocide": "genocide",
    "crimes_against_humanity": "crimes against humanity",
    "war_crimes": "war crimes",
}
LEVEL_WORDS = {
    INSUFFICIENT: "insufficient data",
    "low": "low",
    "moderate": "moderate",
    "high": "high",
    "very_high": "very high",
}
# The analysts' 0-3 scale, stored as 0, 1/3, 2/3, 1.
ANALYST_SCALE_WORDS = ("absent", "low", "moderate", "high")
# What a score-based trigger is compared with.
COMPARED_WITH_PREVIOUS = "previous_published"
COMPARED_WITH_3_MONTHS = "three_months_earlier"


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
class RedFlag:
    """One assessment that raised a red flag. ``dataset`` is the public data set's short
    name for a data-derived value (in [0, 1]); empty for an analyst's 0-3 assessment."""

    indicator: str
    name: str
    value: float
    observed_on: date
    observation_id: int
    source: str
    dataset: str = ""

    @property
    def words(self) -> str:
        """The value as it was entered: "high (3 of 3)", or "0.83 (from V-Dem)"."""
        return describe_value(self.value, dataset=self.dataset)


@dataclass(frozen=True)
class CrimeSwitch:
    """The overall score followed ``from_crime`` before and ``to_crime`` after: a step of
    ``change`` points of its own in "what moved it" (see ``indicators.scoring``)."""

    from_crime: str
    to_crime: str
    change: float


@dataclass(frozen=True)
class Escalation:
    """Something a focal point must hear about; numbers say what moved and by how much.

    Score-based triggers say what they compare: ``previous_score`` is the previous
    published score for the country (level crossings, ``compared_with`` =
    "previous_published") or the score three months earlier (surges), of the month
    ``baseline_period``. ``drivers`` are the factors' changes of contribution within
    ``drivers_crime``; ``crime_switch`` is set when the overall score changed crime type
    in between. A red flag lists every assessment (``flags``) that raised it in one event,
    the most severe first; ``indicator`` and ``value`` are that first one's.
    """

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
    drivers_crime: str = ""
    crime_switch: CrimeSwitch | None = None
    baseline_period: date | None = None
    compared_with: str = ""
    flags: tuple[RedFlag, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """One open alert per (country, rule, crime type)."""
        return (self.country, self.rule.value, self.crime_type)

    @property
    def change(self) -> float | None:
        """The rise this trigger reports, in points (None for red flags)."""
        if self.score is None or self.previous_score is None:
            return None
        return self.score - self.previous_score


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
    period, methodology, overall, overall_crime, genocide, crimes_against_humanity,
    war_crimes, coverage (and optionally coverage_<crime type> per crime type),
    change_3m, change_3m_z, contributions ({factor: points} of the overall score),
    contributions_by_crime ({crime type: {factor: points}}), and the same three months
    earlier, the window of change_3m: period_3m_before, overall_crime_3m_before,
    contributions_3m_before and contributions_by_crime_3m_before. ``baseline``: the same
    columns (none of the 3m_before ones needed) as the previous evaluated run had them;
    it may lack countries. Rows without contributions_by_crime (stored before it was
    kept) fall back to the overall contributions when the crime type did not switch.

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
    """Red flags among newly recorded observations, one escalation per country and crime
    type listing every assessment that raised it (``flags``, most severe first).

    ``observations``: columns id, country, indicator, factor, observed_on, value, source,
    and optionally indicator_name (the indicator's wording) and dataset (the data set's
    short name, empty for an analyst's assessment). A flag is critical for a value at the
    top of the scale or any sign of intent to destroy a group (RF10), a warning otherwise;
    the escalation takes its most severe flag's severity. Observations dated before
    ``today`` minus ``red_flag_window_days`` raise nothing (the window's first day still
    does). Ordered by country, then crime type.
    """
    oldest = red_flag_window_start(today, thresholds)
    found: dict[tuple[str, str], list[tuple[bool, RedFlag]]] = {}
    for row in _records(observations):
        if _as_date(row["observed_on"]) < oldest:
            continue
        red_flag_indicator = (
            row["factor"] in thresholds.red_flag_factors
            or row["indicator"] in thresholds.red_flag_indicators
        )
        if not red_flag_indicator or row["value"] < thresholds.red_flag_severity - 1e-9:
            continue
        flag = RedFlag(
            indicator=str(row["indicator"]),
            name=str(row.get("indicator_name") or ""),
            value=float(row["value"]),
            observed_on=_as_date(row["observed_on"]),
            observation_id=int(row["id"]),
            source=str(row["source"]),
            dataset=str(row.get("dataset") or ""),
        )
        critical = flag.value >= 1 - 1e-9 or row["factor"] == "RF10"
        crime = RED_FLAG_CRIME.get(row["factor"], OVERALL)
        found.setdefault((row["country"], crime), []).append((critical, flag))
    escalations = []
    for (country, crime), flagged in sorted(found.items()):
        flagged.sort(
            key=lambda item: (
                -int(item[0]),
                -item[1].value,
                -item[1].observed_on.toordinal(),
                item[1].indicator,
                item[1].observation_id,
            )
        )
        lead_critical, lead = flagged[0]
        flags = tuple(flag for _critical, flag in flagged)
        escalations.append(
            Escalation(
                country=country,
                rule=Rule.RED_FLAG,
                crime_type=crime,
                severity=Severity.CRITICAL if lead_critical else Severity.WARNING,
                period=max(flag.observed_on for flag in flags),
                summary=red_flag_summary(flags),
                indicator=lead.indicator,
                value=lead.value,
                observation_id=lead.observation_id,
                flags=flags,
            )
        )
    return escalations


def red_flag_summary(flags: tuple[RedFlag, ...]) -> str:
    """One line naming each flagged indicator and its highest assessment, most severe
    first (``flags`` in that order)."""
    by_indicator: dict[str, list[RedFlag]] = {}
    for flag in flags:
        by_indicator.setdefault(flag.indicator, []).append(flag)
    if len(by_indicator) == 1:
        (same,) = by_indicator.values()
        lead = same[0]
        newest = max(flag.observed_on for flag in same)
        tail = (
            f"by {lead.source}, {_day(lead.observed_on)}"
            if len(same) == 1
            else f"in {len(same)} assessments, the newest of {_day(newest)}"
        )
        return f"Red flag: {_named(lead)} assessed {lead.words} {tail}"
    parts = [f"{_named(same[0], 60)}: {same[0].words}" for same in by_indicator.values()]
    return f"Red flags on {len(by_indicator)} indicators: " + "; ".join(parts)


def _named(flag: RedFlag, limit: int = 80) -> str:
    name = _short(flag.name.rstrip(" ."), limit)
    return f"{flag.indicator} {name}".strip()


def describe_value(value: float, *, dataset: str = "") -> str:
    """An observation's value as it was entered: an analyst's assessment on the 0-3 scale
    in words ("moderate (2 of 3)"), a data-derived value on 0-1 with its data set, and a
    value between the steps of 0-3 on 0-1, the scale it must have been entered on."""
    if dataset:
        return f"{value:.2f} on 0-1 (from {dataset})"
    step = min(3, max(0, round(value * 3)))
    if abs(value * 3 - step) > 1e-6:
        # Not a step of the 0-3 scale: entered on 0-1 (an upload's or the API's scale).
        return f"{value:.2f} on 0-1"
    return f"{ANALYST_SCALE_WORDS[step]} ({step} of 3)"


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
    """Whether a score-based escalation goes beyond what an open alert already says.

    Higher severity always does; otherwise a higher score. (Red flags are weighed flag
    by flag, against what the alert already holds: ``weigh_red_flags``.)
    """
    if escalation.severity.rank > Severity(severity).rank:
        return True
    if escalation.severity.rank < Severity(severity).rank:
        return False
    if escalation.rule is Rule.RED_FLAG:
        return (escalation.value or 0) > (value or 0) + 1e-9 or escalation.indicator != indicator
    return (escalation.score or 0) > (score or 0) + 1e-9


@dataclass(frozen=True)
class RedFlagVerdict:
    """What a red-flag escalation adds to an open alert.

    ``rises``: flags on an indicator the alert does not hold yet, or higher than what it
    holds (news: the alert escalates and the focal points hear of it). ``confirmations``:
    newer assessments no higher than what it holds (the alert's evidence and date are
    brought up to date, without a message). Everything else adds nothing.
    """

    rises: tuple[RedFlag, ...]
    confirmations: tuple[RedFlag, ...]


def weigh_red_flags(
    escalation: Escalation, known: Mapping[str, tuple[float, date]]
) -> RedFlagVerdict:
    """Sort the escalation's flags against ``known``: {indicator: (value, observed_on)}
    of the flags the open alert already holds (empty for a new alert)."""
    rises = []
    confirmations = []
    for flag in escalation.flags:
        held = known.get(flag.indicator)
        if held is None or flag.value > held[0] + 1e-9:
            rises.append(flag)
        elif flag.observed_on > held[1]:
            confirmations.append(flag)
    return RedFlagVerdict(rises=tuple(rises), confirmations=tuple(confirmations))


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


RULE_ORDER = (Rule.LEVEL_CROSSING, Rule.SURGE, Rule.RED_FLAG)


def urgency_key(
    *,
    severity: str,
    change: float | None,
    moment: float,
    crime_type: str = OVERALL,
    rule: str = Rule.LEVEL_CROSSING,
) -> tuple[int, float, float, int, int]:
    """Sort key putting the most urgent first: the higher severity, then the bigger rise
    (in points; a red flag has none), then the newest ``moment`` (a timestamp); among
    equals (one event's alerts), the overall score before crime-specific ones, and a
    crossing before a surge before a red flag."""
    return (
        -Severity(severity).rank,
        -(change or 0.0),
        -moment,
        0 if crime_type == OVERALL else 1,
        RULE_ORDER.index(Rule(rule)),
    )


def crime_words(crime: str) -> str:
    return CRIME_WORDS.get(crime, crime.replace("_", " "))


# --- internals -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Explanation:
    drivers: tuple[tuple[str, float], ...]
    crime: str
    switch: CrimeSwitch | None


def _explain(
    then: Mapping[str, Any] | None,
    now: Mapping[str, Any],
    crime: str,
    *,
    suffix: str = "",
) -> _Explanation:
    """What moved ``crime``'s score (the overall: within its current crime type, with the
    switch as its own step) from ``then`` to ``now``. ``suffix`` picks the columns of
    ``then`` ("_3m_before": the same row, three months earlier)."""
    if then is None:
        return _Explanation((), "", None)
    by_crime_then = then.get(f"contributions_by_crime{suffix}")
    by_crime_now = now.get("contributions_by_crime")
    crime_then = str(then.get(f"overall_crime{suffix}") or "")
    crime_now = str(now.get("overall_crime") or "")
    if not isinstance(by_crime_then, Mapping) or not isinstance(by_crime_now, Mapping):
        # Stored before per-crime contributions were kept: the overall's contributions
        # explain the change only when both follow the same crime type.
        if crime != OVERALL or (crime_then and crime_now and crime_then != crime_now):
            return _Explanation((), "", None)
        return _Explanation(
            top_drivers(then.get(f"contributions{suffix}"), now.get("contributions")),
            crime_now,
            None,
        )
    within = crime_now if crime == OVERALL else crime
    if not within:
        return _Explanation((), "", None)
    drivers = top_drivers(by_crime_then.get(within), by_crime_now.get(within))
    switch = None
    if crime == OVERALL and crime_then and crime_then != within:
        then_within = sum(float(v) for v in (by_crime_then.get(within) or {}).values())
        then_overall = sum(float(v) for v in (by_crime_then.get(crime_then) or {}).values())
        switch = CrimeSwitch(crime_then, within, round(then_within - then_overall, 2))
    return _Explanation(drivers, within, switch)


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
        explained = _explain(then, now, crime)
        before, after = _number(then.get(crime)), _number(now.get(crime))
        found.append(
            Escalation(
                country=now["country"],
                rule=Rule.LEVEL_CROSSING,
                crime_type=crime,
                severity=LEVEL_SEVERITY[new],
                period=_as_date(now["period"]),
                summary=(
                    f"{crime_words(crime).capitalize()} risk rose from {LEVEL_WORDS[old]} to "
                    f"{LEVEL_WORDS[new]} ({before:.1f} → {after:.1f}) since the previous "
                    "published score"
                ),
                score=after,
                previous_score=before,
                level=new,
                previous_level=old,
                # The 3-month change is another comparison (a surge's): not shown here.
                drivers=explained.drivers,
                drivers_crime=explained.crime,
                crime_switch=explained.switch,
                baseline_period=_as_date(then["period"]),
                compared_with=COMPARED_WITH_PREVIOUS,
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
    period = _as_date(now["period"])
    # The same window as the change: what moved the score over these 3 months.
    explained = _explain(now, now, OVERALL, suffix="_3m_before")
    return Escalation(
        country=now["country"],
        rule=Rule.SURGE,
        crime_type=OVERALL,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        period=period,
        summary="Overall risk surged: " + "; ".join(reasons),
        score=overall,
        previous_score=None if overall is None else overall - change,
        level=level_of(overall, _number(now.get("coverage")), thresholds),
        previous_level=None,
        change_3m=change,
        change_3m_z=z,
        drivers=explained.drivers,
        drivers_crime=explained.crime,
        crime_switch=explained.switch,
        baseline_period=(pd.Timestamp(period) - pd.offsets.MonthEnd(3)).date(),
        compared_with=COMPARED_WITH_3_MONTHS,
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


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

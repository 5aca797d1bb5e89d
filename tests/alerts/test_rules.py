"""The pure alert rules on tiny frames, at every threshold edge."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from alerts.rules import (
    AlertThresholds,
    Escalation,
    Rule,
    Severity,
    find_escalations,
    find_red_flags,
    is_further_rise,
    level_of,
    top_drivers,
)

T = AlertThresholds()


def scores(*rows: dict) -> pd.DataFrame:
    base = {
        "period": pd.Timestamp("2024-06-30"),
        "genocide": None,
        "crimes_against_humanity": None,
        "war_crimes": None,
        "coverage": 0.8,
        "change_3m": None,
        "change_3m_z": None,
        "contributions": {},
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def crossings(before: float, after: float, **now: object) -> list[Escalation]:
    return [
        e
        for e in find_escalations(
            scores({"country": "SYR", "overall": before, "period": pd.Timestamp("2024-05-31")}),
            scores({"country": "SYR", "overall": after, **now}),
            T,
        )
        if e.rule is Rule.LEVEL_CROSSING
    ]


@pytest.mark.parametrize(
    ("before", "after", "severity", "level"),
    [
        (24.9, 25.0, Severity.INFO, "moderate"),
        (49.9, 50.0, Severity.WARNING, "high"),
        (74.9, 75.0, Severity.CRITICAL, "very_high"),
        (10.0, 80.0, Severity.CRITICAL, "very_high"),  # several bands at once: the new one
    ],
)
def test_a_level_rise_raises_a_crossing_of_the_new_levels_severity(before, after, severity, level):
    (found,) = crossings(before, after)
    assert (found.severity, found.level, found.crime_type) == (severity, level, "overall")
    assert (found.score, found.previous_score) == (after, before)
    assert found.period == date(2024, 6, 30)


@pytest.mark.parametrize(("before", "after"), [(25.0, 49.9), (60.0, 40.0), (80.0, 75.0)])
def test_staying_in_a_band_or_falling_raises_nothing(before, after):
    assert crossings(before, after) == []


def test_no_crossing_from_or_to_insufficient_coverage():
    thin = find_escalations(
        scores({"country": "SYR", "overall": 10.0, "coverage": 0.1}),
        scores({"country": "SYR", "overall": 90.0, "coverage": 0.8}),
        T,
    )
    assert [e for e in thin if e.rule is Rule.LEVEL_CROSSING] == []
    assert level_of(90.0, 0.2499, T) == "insufficient_data"
    assert level_of(90.0, 0.25, T) == "very_high"


def test_crime_specific_levels_cross_separately():
    found = find_escalations(
        scores({"country": "MMR", "overall": 60.0, "genocide": 40.0, "war_crimes": 60.0}),
        scores({"country": "MMR", "overall": 60.0, "genocide": 55.0, "war_crimes": 60.0}),
        T,
    )
    assert [(e.rule, e.crime_type, e.level) for e in found] == [
        (Rule.LEVEL_CROSSING, "genocide", "high")
    ]


def test_a_country_scored_for_the_first_time_has_no_crossing():
    found = find_escalations(scores(), scores({"country": "SYR", "overall": 90.0}), T)
    assert found == []


@pytest.mark.parametrize(
    ("change", "z", "fires", "severity"),
    [
        (9.99, None, False, None),
        (10.0, None, True, Severity.WARNING),
        (19.99, 0.5, True, Severity.WARNING),
        (20.0, None, True, Severity.CRITICAL),
        (3.0, 1.99, False, None),
        (3.0, 2.0, True, Severity.WARNING),
        (-3.0, 2.5, False, None),  # a big z on a fall is no surge
    ],
)
def test_surge_by_points_or_by_z_score(change, z, fires, severity):
    found = [
        e
        for e in find_escalations(
            scores({"country": "SYR", "overall": 40.0}),
            scores({"country": "SYR", "overall": 40.0, "change_3m": change, "change_3m_z": z}),
            T,
        )
        if e.rule is Rule.SURGE
    ]
    assert bool(found) is fires
    if fires:
        assert found[0].severity is severity
        assert found[0].change_3m == change
        assert found[0].previous_score == pytest.approx(40.0 - change)


def test_surge_summary_says_why():
    (surge,) = find_escalations(
        scores(),
        scores({"country": "SYR", "overall": 40.0, "change_3m": 12.0, "change_3m_z": 3.1}),
        T,
    )
    assert "+12.0 points in 3 months" in surge.summary
    assert "3.1 standard deviations" in surge.summary


def test_drivers_are_the_biggest_moves_in_contributions():
    assert top_drivers(
        {"RF1": 10, "RF7": 5, "RF8": 2}, {"RF1": 12, "RF7": 15, "RF9": 1, "RF8": 2}
    ) == (("RF7", 10.0), ("RF1", 2.0), ("RF9", 1.0))
    (found,) = crossings(20.0, 30.0, contributions={"RF1": 30.0})
    assert found.drivers == (("RF1", 30.0),)


def observations(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": n,
                "country": c,
                "indicator": i,
                "factor": f,
                "observed_on": date(2024, 6, 1),
                "value": v,
                "source": "analyst",
            }
            for n, (c, i, f, v) in enumerate(rows, start=1)
        ]
    )


def test_red_flags_on_intent_plan_and_incitement_at_two_thirds_or_more():
    found = find_red_flags(
        observations(
            ("MMR", "10.1", "RF10", 2 / 3),  # intent to destroy: always critical
            ("SDN", "12.3", "RF12", 2 / 3),  # plan or policy: warning at moderate
            ("SDN", "12.1", "RF12", 1.0),  # ... critical at high
            ("ETH", "8.7", "RF8", 2 / 3),  # incitement
            ("ETH", "8.6", "RF8", 1.0),  # another trigger: no red flag
            ("NOR", "12.2", "RF12", 1 / 3),  # too low
        ),
        T,
    )
    summary = [(e.country, e.indicator, e.crime_type, e.severity) for e in found]
    assert summary == [
        ("ETH", "8.7", "overall", Severity.WARNING),
        ("MMR", "10.1", "genocide", Severity.CRITICAL),
        ("SDN", "12.3", "crimes_against_humanity", Severity.WARNING),
        ("SDN", "12.1", "crimes_against_humanity", Severity.CRITICAL),
    ]
    assert all(e.rule is Rule.RED_FLAG for e in found)
    assert found[0].observation_id == 4
    assert "8.7 assessed at moderate (0.67) by analyst" in found[0].summary


def test_red_flag_threshold_is_configurable():
    strict = AlertThresholds(red_flag_severity=1.0)
    assert find_red_flags(observations(("SDN", "12.3", "RF12", 2 / 3)), strict) == []


def make(severity: Severity, *, score=None, value=None, indicator=None, rule=Rule.SURGE):
    return Escalation(
        country="SYR",
        rule=rule,
        crime_type="overall",
        severity=severity,
        period=date(2024, 6, 30),
        summary="",
        score=score,
        value=value,
        indicator=indicator,
    )


def test_a_further_rise_is_higher_severity_or_a_higher_score():
    assert is_further_rise(
        make(Severity.CRITICAL, score=50), severity="warning", score=90, value=None, indicator=None
    )
    assert not is_further_rise(
        make(Severity.INFO, score=99), severity="warning", score=10, value=None, indicator=None
    )
    assert is_further_rise(
        make(Severity.WARNING, score=61), severity="warning", score=60, value=None, indicator=None
    )
    assert not is_further_rise(
        make(Severity.WARNING, score=60), severity="warning", score=60, value=None, indicator=None
    )


def test_a_further_red_flag_is_a_higher_value_or_another_indicator():
    flag = make(Severity.WARNING, value=2 / 3, indicator="12.3", rule=Rule.RED_FLAG)
    assert not is_further_rise(flag, severity="warning", score=None, value=2 / 3, indicator="12.3")
    assert is_further_rise(flag, severity="warning", score=None, value=2 / 3, indicator="12.1")
    higher = make(Severity.WARNING, value=1.0, indicator="12.3", rule=Rule.RED_FLAG)
    assert is_further_rise(higher, severity="warning", score=None, value=2 / 3, indicator="12.3")

"""The pure alert rules on tiny frames, at every threshold edge."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from alerts.rules import (
    AlertThresholds,
    Escalation,
    Rule,
    Severity,
    describe_value,
    find_escalations,
    find_red_flags,
    is_further_rise,
    level_of,
    top_drivers,
    urgency_key,
    weigh_red_flags,
)

T = AlertThresholds()


def scores(*rows: dict) -> pd.DataFrame:
    base = {
        "period": pd.Timestamp("2024-06-30"),
        "methodology": 1,
        "genocide": None,
        "crimes_against_humanity": None,
        "war_crimes": None,
        "coverage": 0.8,
        "change_3m": None,
        "change_3m_z": None,
        "contributions": {},
        "contributions_3m_before": None,
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
def test_a_level_above_the_baselines_raises_a_crossing_of_the_new_levels_severity(
    before, after, severity, level
):
    (found,) = crossings(before, after)
    assert (found.severity, found.level, found.crime_type) == (severity, level, "overall")
    assert (found.score, found.previous_score) == (after, before)
    assert found.period == date(2024, 6, 30)


@pytest.mark.parametrize(("before", "after"), [(25.0, 49.9), (60.0, 40.0), (80.0, 75.0)])
def test_staying_in_a_band_or_falling_raises_nothing(before, after):
    assert crossings(before, after) == []


def test_the_same_period_rising_between_runs_is_a_crossing():
    # A backdated observation lifts June itself: the previous run had June at 30.
    found = find_escalations(
        scores({"country": "SYR", "overall": 30.0}),
        scores({"country": "SYR", "overall": 80.0}),
        T,
    )
    assert [(e.rule, e.level, e.previous_level) for e in found] == [
        (Rule.LEVEL_CROSSING, "very_high", "moderate")
    ]


def test_a_run_with_the_same_scores_as_its_baseline_raises_nothing():
    june = {
        "country": "SYR",
        "overall": 80.0,
        "genocide": 80.0,
        "change_3m": 50.0,
        "change_3m_z": 3.0,
    }
    assert find_escalations(scores(june), scores(june), T) == []


def test_no_crossing_from_or_to_insufficient_coverage():
    thin = find_escalations(
        scores({"country": "SYR", "overall": 10.0, "coverage": 0.1}),
        scores({"country": "SYR", "overall": 90.0, "coverage": 0.8}),
        T,
    )
    assert [e for e in thin if e.rule is Rule.LEVEL_CROSSING] == []
    assert level_of(90.0, 0.1499, T) == "insufficient_data"
    assert level_of(90.0, 0.15, T) == "very_high"


def test_crime_specific_levels_cross_separately():
    found = find_escalations(
        scores({"country": "MMR", "overall": 60.0, "genocide": 40.0, "war_crimes": 60.0}),
        scores({"country": "MMR", "overall": 60.0, "genocide": 55.0, "war_crimes": 60.0}),
        T,
    )
    assert [(e.rule, e.crime_type, e.level) for e in found] == [
        (Rule.LEVEL_CROSSING, "genocide", "high")
    ]


def test_a_crime_specific_level_needs_its_own_coverage():
    thin = {"coverage": 0.8, "coverage_genocide": 0.1}
    found = find_escalations(
        scores({"country": "MMR", "overall": 10.0, "genocide": 10.0, **thin}),
        scores({"country": "MMR", "overall": 60.0, "genocide": 60.0, **thin}),
        T,
    )
    assert [(e.crime_type, e.level) for e in found] == [("overall", "high")]


def test_a_country_scored_for_the_first_time_has_no_crossing_but_may_surge():
    assert find_escalations(scores(), scores({"country": "SYR", "overall": 90.0}), T) == []
    (surge,) = find_escalations(
        scores(), scores({"country": "SYR", "overall": 90.0, "change_3m": 15.0}), T
    )
    assert surge.rule is Rule.SURGE


def test_a_baseline_under_another_methodology_raises_nothing():
    found = find_escalations(
        scores({"country": "SYR", "overall": 10.0, "methodology": 1}),
        scores({"country": "SYR", "overall": 90.0, "change_3m": 80.0, "methodology": 2}),
        T,
    )
    assert found == []


def surges(baseline: dict | None, **now: object) -> list[Escalation]:
    return [
        e
        for e in find_escalations(
            scores({"country": "SYR", "overall": 40.0, **baseline})
            if baseline is not None
            else scores(),
            scores({"country": "SYR", "overall": 40.0, **now}),
            T,
        )
        if e.rule is Rule.SURGE
    ]


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
    found = surges({}, change_3m=change, change_3m_z=z)
    assert bool(found) is fires
    if fires:
        assert found[0].severity is severity
        assert found[0].change_3m == change
        assert found[0].previous_score == pytest.approx(40.0 - change)


def test_a_surge_already_present_at_the_baseline_fires_only_on_a_further_rise():
    surging = {"change_3m": 12.0}
    assert surges(surging, change_3m=12.0) == []
    assert surges(surging, overall=39.0, change_3m=11.0) == []
    (further,) = surges(surging, overall=40.5, change_3m=12.5)
    assert further.score == 40.5
    # Not surging at the baseline: the same surge now is new.
    assert len(surges({"change_3m": 2.0}, change_3m=12.0)) == 1


def test_surge_summary_says_why():
    (surge,) = surges(None, change_3m=12.0, change_3m_z=3.1)
    assert "+12.0 points in 3 months" in surge.summary
    assert "3.1 standard deviations" in surge.summary


def test_surge_drivers_cover_the_same_three_months_as_the_change():
    (surge,) = surges(
        {"contributions": {"RF1": 30.0, "RF7": 10.0}},  # the previous run: not the window
        change_3m=12.0,
        contributions={"RF1": 30.0, "RF7": 10.0},
        contributions_3m_before={"RF1": 20.0, "RF7": 8.0},
    )
    assert surge.drivers == (("RF1", 10.0), ("RF7", 2.0))


def test_drivers_are_the_biggest_moves_in_contributions():
    assert top_drivers(
        {"RF1": 10, "RF7": 5, "RF8": 2}, {"RF1": 12, "RF7": 15, "RF9": 1, "RF8": 2}
    ) == (("RF7", 10.0), ("RF1", 2.0), ("RF9", 1.0))
    (found,) = crossings(20.0, 30.0, contributions={"RF1": 30.0})
    assert found.drivers == (("RF1", 30.0),)


def test_a_crossing_says_what_it_compares_and_no_other_change():
    (found,) = crossings(20.8, 84.1, change_3m=0.0, change_3m_z=0.0)
    assert found.summary == (
        "Overall risk rose from low to very high (20.8 → 84.1) since the previous published score"
    )
    assert found.change == pytest.approx(63.3)
    assert (found.change_3m, found.change_3m_z) == (None, None)
    assert found.compared_with == "previous_published"
    assert found.baseline_period == date(2024, 5, 31)


def by_crime(**crimes: dict) -> dict:
    return {
        crime: crimes.get(crime, {})
        for crime in ("genocide", "crimes_against_humanity", "war_crimes")
    }


def test_overall_drivers_are_taken_within_the_new_crime_type_with_the_switch_as_a_step():
    # Genocide led at 40 (RF9 20 + RF1 20); war crimes now leads at 60 after RF13 rose
    # from 10 to 40. The overall contributions would show RF9 -20 and RF13 +40, RF1 +0.
    then = {
        "country": "SYR",
        "overall": 40.0,
        "overall_crime": "genocide",
        "period": pd.Timestamp("2024-05-31"),
        "contributions": {"RF1": 20.0, "RF9": 20.0},
        "contributions_by_crime": by_crime(
            genocide={"RF1": 20.0, "RF9": 20.0}, war_crimes={"RF1": 20.0, "RF13": 10.0}
        ),
    }
    now = {
        "country": "SYR",
        "overall": 60.0,
        "overall_crime": "war_crimes",
        "contributions": {"RF1": 20.0, "RF13": 40.0},
        "contributions_by_crime": by_crime(
            genocide={"RF1": 20.0, "RF9": 5.0}, war_crimes={"RF1": 20.0, "RF13": 40.0}
        ),
    }
    (found,) = [
        e for e in find_escalations(scores(then), scores(now), T) if e.crime_type == "overall"
    ]
    assert found.drivers == (("RF13", 30.0),)
    assert found.drivers_crime == "war_crimes"
    switch = found.crime_switch
    assert (switch.from_crime, switch.to_crime, switch.change) == ("genocide", "war_crimes", -10.0)
    assert switch.change + sum(d for _, d in found.drivers) == pytest.approx(60.0 - 40.0)


def test_a_crime_specific_crossing_is_explained_within_that_crime():
    then = {
        "country": "SYR",
        "overall": 40.0,
        "genocide": 40.0,
        "overall_crime": "genocide",
        "period": pd.Timestamp("2024-05-31"),
        "contributions_by_crime": by_crime(genocide={"RF1": 20.0, "RF9": 20.0}),
    }
    now = {
        "country": "SYR",
        "overall": 55.0,
        "genocide": 55.0,
        "overall_crime": "genocide",
        "contributions_by_crime": by_crime(genocide={"RF1": 20.0, "RF9": 35.0}),
    }
    found = {e.crime_type: e for e in find_escalations(scores(then), scores(now), T)}
    assert found["genocide"].drivers == (("RF9", 15.0),)
    assert found["genocide"].crime_switch is None


TODAY = date(2024, 6, 15)


def observations(*rows: tuple, observed_on: date = date(2024, 6, 1)) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": n,
                "country": c,
                "indicator": i,
                "factor": f,
                "observed_on": observed_on,
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
        today=TODAY,
    )
    summary = [(e.country, e.indicator, e.crime_type, e.severity) for e in found]
    assert summary == [
        ("ETH", "8.7", "overall", Severity.WARNING),
        ("MMR", "10.1", "genocide", Severity.CRITICAL),
        # One escalation per country and crime type, led by its most severe flag.
        ("SDN", "12.1", "crimes_against_humanity", Severity.CRITICAL),
    ]
    assert all(e.rule is Rule.RED_FLAG for e in found)
    assert found[0].observation_id == 4
    assert [f.indicator for f in found[2].flags] == ["12.1", "12.3"]


def test_a_red_flag_names_the_indicator_and_gives_the_assessment_on_its_own_scale():
    frame = observations(("ETH", "8.7", "RF8", 2 / 3))
    frame["indicator_name"] = "Incitement or hateful propaganda targeting groups"
    (flag,) = find_red_flags(frame, T, today=TODAY)
    assert flag.summary == (
        "Red flag: 8.7 Incitement or hateful propaganda targeting groups assessed "
        "moderate (2 of 3) by analyst, 1 Jun 2024"
    )
    assert "0.67" not in flag.summary


def test_every_red_flag_of_one_event_is_listed_in_one_summary():
    frame = observations(
        ("KEN", "8.7", "RF8", 1.0), ("KEN", "8.7", "RF8", 2 / 3), ("KEN", "8.1", "RF8", 0.0)
    )
    frame["indicator_name"] = ["Incitement", "Incitement", "Other"]
    frame.loc[1, "observed_on"] = date(2024, 5, 1)
    (flag,) = find_red_flags(frame, T, today=TODAY)
    assert flag.summary == (
        "Red flag: 8.7 Incitement assessed high (3 of 3) in 2 assessments, the newest of 1 Jun 2024"
    )
    assert flag.period == date(2024, 6, 1)  # the newest assessment


def test_red_flags_on_several_indicators_name_each_with_its_highest_assessment():
    frame = observations(
        ("KEN", "12.1", "RF12", 2 / 3), ("KEN", "12.3", "RF12", 1.0), ("KEN", "12.3", "RF12", 2 / 3)
    )
    frame["indicator_name"] = [
        "Documents revealing intent.",
        "Lists of targets",
        "Lists of targets",
    ]
    (flag,) = find_red_flags(frame, T, today=TODAY)
    assert flag.summary == (
        "Red flags on 2 indicators: 12.3 Lists of targets: high (3 of 3); "
        "12.1 Documents revealing intent: moderate (2 of 3)"
    )


@pytest.mark.parametrize(
    ("value", "dataset", "words"),
    [
        (0.0, "", "absent (0 of 3)"),
        (1 / 3, "", "low (1 of 3)"),
        (2 / 3, "", "moderate (2 of 3)"),
        (1.0, "", "high (3 of 3)"),
        (0.8, "", "0.80 on 0-1"),  # entered on 0-1 (uploads and the API allow it)
        (0.834, "V-Dem", "0.83 on 0-1 (from V-Dem)"),
    ],
)
def test_values_are_described_on_the_scale_they_were_entered_on(value, dataset, words):
    assert describe_value(value, dataset=dataset) == words


def test_a_newer_or_higher_assessment_is_weighed_against_what_the_alert_holds():
    frame = observations(("MMR", "8.7", "RF8", 1.0), ("MMR", "12.1", "RF12", 2 / 3))
    flags = find_red_flags(frame, T, today=TODAY)
    incitement = next(e for e in flags if e.crime_type == "overall")
    # Held at moderate: a high assessment is a rise.
    verdict = weigh_red_flags(incitement, {"8.7": (2 / 3, date(2024, 5, 1))})
    assert [f.indicator for f in verdict.rises] == ["8.7"]
    # Held at high from an older date: a newer high assessment confirms it (no message).
    verdict = weigh_red_flags(incitement, {"8.7": (1.0, date(2024, 5, 1))})
    assert (verdict.rises, [f.indicator for f in verdict.confirmations]) == ((), ["8.7"])
    # Held at high on the same date: nothing new.
    verdict = weigh_red_flags(incitement, {"8.7": (1.0, date(2024, 6, 1))})
    assert (verdict.rises, verdict.confirmations) == ((), ())
    # Not held at all: a rise.
    assert weigh_red_flags(incitement, {}).rises == incitement.flags


def test_urgency_puts_severity_first_then_the_size_of_the_rise_then_the_newest():
    alerts = [
        ("old warning, big rise", "warning", 60.0, 1.0),
        ("critical, small rise", "critical", 5.0, 2.0),
        ("critical, big rise", "critical", 63.3, 0.0),
        ("critical red flag, newest", "critical", None, 9.0),
        ("critical red flag, older", "critical", None, 3.0),
    ]
    ordered = sorted(alerts, key=lambda a: urgency_key(severity=a[1], change=a[2], moment=a[3]))
    assert [a[0] for a in ordered] == [
        "critical, big rise",
        "critical, small rise",
        "critical red flag, newest",
        "critical red flag, older",
        "old warning, big rise",
    ]


def test_red_flag_threshold_is_configurable():
    strict = AlertThresholds(red_flag_severity=1.0)
    assert find_red_flags(observations(("SDN", "12.3", "RF12", 2 / 3)), strict, today=TODAY) == []


@pytest.mark.parametrize(
    ("days_old", "raised"), [(0, True), (90, True), (91, False), (3650, False)]
)
def test_only_recent_observations_raise_red_flags(days_old, raised):
    old = observations(("SDN", "12.1", "RF12", 1.0), observed_on=TODAY - timedelta(days=days_old))
    assert bool(find_red_flags(old, T, today=TODAY)) is raised
    narrow = AlertThresholds(red_flag_window_days=7)
    recent = observations(("SDN", "12.1", "RF12", 1.0), observed_on=TODAY - timedelta(days=8))
    assert find_red_flags(recent, narrow, today=TODAY) == []


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

"""The pure scoring engine on tiny frames whose results were worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from indicators.scoring import (
    CRIME_TYPES,
    MIN_HISTORY_FOR_Z,
    ScoreState,
    Thresholds,
    assign_levels,
    compute_scores,
    contribution_changes,
    crime_contributions,
    explain_change,
    month_ends,
)

# One factor per group is enough to tell the crime-specific scores apart.
FACTORS = pd.DataFrame(
    {
        "factor": ["RF1", "RF2", "RF9", "RF11", "RF13"],
        "group": ["common", "common", "genocide", "crimes_against_humanity", "war_crimes"],
        "weight": [1.0, 1.0, 1.0, 1.0, 1.0],
    }
)
INDICATORS = pd.DataFrame(
    {
        "indicator": ["1.1", "1.2", "2.1", "9.1", "11.1", "13.1"],
        "factor": ["RF1", "RF1", "RF2", "RF9", "RF11", "RF13"],
        "weight": [1.0, 3.0, 1.0, 1.0, 1.0, 1.0],
        "staleness_days": [730, 60, 730, 730, 730, 730],
    }
)
JAN_TO_JUN = month_ends(pd.Timestamp("2020-01-01"), pd.Timestamp("2020-06-30"))


def observations(*rows: tuple[str, str, str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["country", "indicator", "observed_on", "value"])
    frame["observed_on"] = pd.to_datetime(frame["observed_on"])
    return frame


def score(obs: pd.DataFrame, periods: pd.DatetimeIndex = JAN_TO_JUN, **kwargs: object):
    kwargs.setdefault("indicators", INDICATORS)
    kwargs.setdefault("factors", FACTORS)
    return compute_scores(obs, periods=periods, **kwargs)  # type: ignore[arg-type]


def row(result, country: str, period: str) -> pd.Series:
    scores = result.scores
    match = scores[(scores["country"] == country) & (scores["period"] == pd.Timestamp(period))]
    assert len(match) == 1, f"expected one row for {country} {period}, got {len(match)}"
    return match.iloc[0]


def test_factor_score_is_the_weighted_mean_of_present_indicators():
    # RF1 = (1 * 0.6 + 3 * 0.2) / (1 + 3) = 0.3; only common factors -> every crime = 30
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.6), ("SYR", "1.2", "2020-01-10", 0.2))
    )
    jan = row(result, "SYR", "2020-01-31")
    assert result.factor_scores.loc[jan.name, "RF1"] == pytest.approx(0.3)
    for crime in CRIME_TYPES:
        assert jan[crime] == pytest.approx(30.0)
    assert jan["overall"] == pytest.approx(30.0)


def test_missing_indicators_are_left_out_not_counted_as_zero():
    result = score(observations(("SYR", "1.2", "2020-01-10", 0.5)))
    # Only 1.2 is present: RF1 = 0.5, not (3 * 0.5) / 4.
    assert row(result, "SYR", "2020-01-31")["overall"] == pytest.approx(50.0)
    # RF2, RF9, RF11, RF13 have no data: missing, not 0.
    assert math.isnan(result.factor_scores.loc[0, "RF2"])


def test_same_date_observations_from_several_sources_are_averaged():
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 1.0), ("SYR", "1.1", "2020-01-10", 0.5))
    )
    assert row(result, "SYR", "2020-01-31")["overall"] == pytest.approx(75.0)


def test_the_latest_observation_on_or_before_the_period_wins():
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-05", 0.2),
            ("SYR", "1.1", "2020-01-20", 0.8),  # later in the same month: wins in January
            ("SYR", "1.1", "2020-02-01", 0.4),  # takes over from February
        )
    )
    assert row(result, "SYR", "2020-01-31")["overall"] == pytest.approx(80.0)
    assert row(result, "SYR", "2020-02-29")["overall"] == pytest.approx(40.0)
    assert row(result, "SYR", "2020-06-30")["overall"] == pytest.approx(40.0)


def test_observations_after_the_period_are_not_seen_and_before_first_data_no_row():
    result = score(observations(("SYR", "1.1", "2020-03-01", 0.5)))
    assert set(result.scores["period"].dt.month) == {3, 4, 5, 6}


def test_stale_observations_drop_out_after_the_indicator_limit():
    # 1.2 has a 60-day limit: dated 10 Jan, still fresh on 29 Feb (50 days), stale on
    # 31 Mar (81 days). 1.1 (730 days) keeps the country scored.
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.0), ("SYR", "1.2", "2020-01-10", 1.0))
    )
    assert row(result, "SYR", "2020-02-29")["overall"] == pytest.approx(75.0)  # (0 + 3) / 4
    assert row(result, "SYR", "2020-03-31")["overall"] == pytest.approx(0.0)


def test_a_country_whose_only_data_went_stale_has_no_score():
    result = score(observations(("SYR", "1.2", "2020-01-10", 1.0)))
    assert list(result.scores["period"].dt.month) == [1, 2]


def test_crime_specific_scores_use_their_own_factor_sets():
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-10", 0.4),  # RF1 = 0.4, common
            ("SYR", "9.1", "2020-01-10", 1.0),  # RF9 = 1.0, genocide only
            ("SYR", "11.1", "2020-01-10", 0.0),  # RF11 = 0.0, crimes against humanity only
        )
    )
    jan = row(result, "SYR", "2020-01-31")
    assert jan["genocide"] == pytest.approx(70.0)  # (0.4 + 1.0) / 2
    assert jan["crimes_against_humanity"] == pytest.approx(20.0)  # (0.4 + 0.0) / 2
    assert jan["war_crimes"] == pytest.approx(40.0)  # RF13 missing: RF1 alone
    assert jan["overall"] == pytest.approx(70.0)
    assert jan["overall_crime"] == "genocide"


def test_factor_weights_change_the_crime_scores():
    factors = FACTORS.assign(weight=[1.0, 1.0, 3.0, 1.0, 1.0])
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.4), ("SYR", "9.1", "2020-01-10", 1.0)),
        factors=factors,
    )
    # genocide = 100 * (1 * 0.4 + 3 * 1.0) / (1 + 3) = 85
    assert row(result, "SYR", "2020-01-31")["genocide"] == pytest.approx(85.0)


def test_a_zero_weight_factor_neither_scores_nor_counts_in_coverage():
    factors = FACTORS.assign(weight=[1.0, 0.0, 1.0, 1.0, 1.0])
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.4), ("SYR", "2.1", "2020-01-10", 1.0)),
        factors=factors,
    )
    jan = row(result, "SYR", "2020-01-31")
    assert jan["overall"] == pytest.approx(40.0)
    # genocide uses RF1 (weights 1 + 3) and RF9 (1); RF2 is unused: 1 / 5 present.
    assert jan["coverage_genocide"] == pytest.approx(1 / 5)


def test_coverage_is_the_share_of_indicator_weight_with_data_for_the_overall_crime():
    result = score(
        observations(
            ("SYR", "1.2", "2020-01-10", 0.5),  # weight 3
            ("SYR", "9.1", "2020-01-10", 1.0),  # weight 1, genocide
        )
    )
    jan = row(result, "SYR", "2020-01-31")
    # genocide indicators: 1.1 (1) 1.2 (3) 2.1 (1) 9.1 (1) = 6; present 3 + 1 = 4
    assert jan["coverage_genocide"] == pytest.approx(4 / 6)
    # crimes against humanity: 1.1 1.2 2.1 11.1 = 6; present 3
    assert jan["coverage_crimes_against_humanity"] == pytest.approx(3 / 6)
    assert jan["overall_crime"] == "genocide"
    assert jan["coverage"] == pytest.approx(4 / 6)


def test_thin_coverage_is_insufficient_data_never_low():
    result = score(  # 1/6 of the weight, under a 25 % floor
        observations(("NOR", "2.1", "2020-01-10", 0.0)), thresholds=Thresholds(min_coverage=0.25)
    )
    jan = row(result, "NOR", "2020-01-31")
    assert jan["overall"] == pytest.approx(0.0)
    assert jan["coverage"] == pytest.approx(1 / 6)
    assert jan["level"] == "insufficient_data"
    lenient = score(
        observations(("NOR", "2.1", "2020-01-10", 0.0)), thresholds=Thresholds(min_coverage=0.1)
    )
    assert row(lenient, "NOR", "2020-01-31")["level"] == "low"


@pytest.mark.parametrize(
    ("overall", "level"),
    [
        (0.0, "low"),
        (24.99, "low"),
        (25.0, "moderate"),
        (49.99, "moderate"),
        (50.0, "high"),
        (74.99, "high"),
        (75.0, "very_high"),
        (100.0, "very_high"),
    ],
)
def test_level_bands_include_their_lower_threshold(overall: float, level: str):
    levels = assign_levels(np.array([overall]), np.array([1.0]), Thresholds())
    assert list(levels) == [level]


def test_level_thresholds_are_editable():
    levels = assign_levels(np.array([30.0]), np.array([1.0]), Thresholds(40, 60, 80))
    assert list(levels) == ["low"]


def test_invalid_thresholds_are_refused():
    with pytest.raises(ValueError, match="increase"):
        Thresholds(50, 40, 80)


def test_changes_over_3_and_12_months():
    periods = month_ends(pd.Timestamp("2019-01-01"), pd.Timestamp("2020-06-30"))
    result = score(
        observations(
            ("SYR", "1.1", "2019-01-10", 0.1),
            ("SYR", "1.1", "2019-06-10", 0.3),
            ("SYR", "1.1", "2020-03-10", 0.9),
        ),
        periods=periods,
    )
    jun = row(result, "SYR", "2020-06-30")
    assert jun["change_3m"] == pytest.approx(0.0)  # March 90 -> June 90
    assert jun["change_12m"] == pytest.approx(60.0)  # June 2019 30 -> June 2020 90
    may = row(result, "SYR", "2020-05-31")
    assert may["change_3m"] == pytest.approx(60.0)  # February 30 -> May 90
    # No score three months before the first one.
    assert math.isnan(row(result, "SYR", "2019-03-31")["change_3m"])


def test_z_score_compares_the_3_month_change_with_the_country_history():
    # A year and a half of small monthly wobbles, then a jump.
    periods = month_ends(pd.Timestamp("2018-01-01"), pd.Timestamp("2019-12-31"))
    wobble = [0.20, 0.22, 0.20, 0.22] * 5
    rows = [
        ("SYR", "1.1", f"{period.date()}", value)
        for period, value in zip(periods[:20], wobble, strict=True)
    ]
    rows += [("SYR", "1.1", str(periods[20].date()), 0.80)]
    result = score(observations(*rows), periods=periods)
    scores = result.scores.set_index("period")
    changes = scores["change_3m"].to_numpy()
    jump = scores.index.get_loc(periods[20])
    history = changes[3:jump]  # the 3-month changes before the jump
    assert len(history) == 17 >= MIN_HISTORY_FOR_Z
    expected = (changes[jump] - history.mean()) / history.std(ddof=1)
    assert scores["change_3m_z"].iloc[jump] == pytest.approx(expected)
    assert expected > 10
    # The first change is in April (index 3); a z-score needs 12 earlier changes.
    assert scores["change_3m_z"].iloc[3 + MIN_HISTORY_FOR_Z :].notna().all()
    assert scores["change_3m_z"].iloc[: 3 + MIN_HISTORY_FOR_Z].isna().all()


def test_z_score_is_missing_when_the_history_never_moved():
    periods = month_ends(pd.Timestamp("2018-01-01"), pd.Timestamp("2019-12-31"))
    result = score(observations(("SYR", "1.1", "2018-01-05", 0.5)), periods=periods)
    assert result.scores["change_3m_z"].isna().all()


def test_a_steady_ramp_has_no_spread_so_a_small_change_gets_no_z_score():
    # Every earlier 3-month change is the same +3 points: the history has no spread in
    # exact arithmetic. Running sums of x and x² leave ~1e-7 of variance here, and a +9
    # change then came out at z ~ 64 million (a surge); the stable variance is zero.
    periods = month_ends(pd.Timestamp("2016-01-01"), pd.Timestamp("2019-12-31"))
    rows = [
        ("SYR", "1.1", str(period.date()), round(0.10 + 0.01 * k, 4))
        for k, period in enumerate(periods[:-1])
    ]
    rows.append(("SYR", "1.1", str(periods[-1].date()), round(0.10 + 0.01 * 44 + 0.09, 4)))
    result = score(observations(*rows), periods=periods)
    scores = result.scores.set_index("period")
    history = scores["change_3m"].iloc[3:-1]
    assert history.max() - history.min() < 1e-9  # every earlier change is +3
    assert scores["change_3m"].iloc[-1] == pytest.approx(9.0)
    assert scores["change_3m_z"].isna().all()


def test_the_z_score_is_exact_for_a_large_level_with_a_small_spread():
    # Changes of 1000 +- 0.001: the mean dwarfs the spread, where x² sums lose digits.
    from indicators.scoring import _expanding_z

    history = np.array([1000.0 + 0.001 * (-1) ** k for k in range(40)] + [1000.01])
    z = _expanding_z(history[None, :])[0]
    earlier = history[:-1]
    expected = (history[-1] - earlier.mean()) / earlier.std(ddof=1)
    assert z[-1] == pytest.approx(expected, rel=1e-6)


def test_contributions_add_up_to_the_overall_score():
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-10", 0.4),
            ("SYR", "2.1", "2020-01-10", 0.7),
            ("SYR", "9.1", "2020-01-10", 1.0),
            ("SYR", "11.1", "2020-01-10", 0.2),
        )
    )
    jan = row(result, "SYR", "2020-01-31")
    contributions = result.contributions.loc[jan.name]
    # genocide wins: 100 * (0.4 + 0.7 + 1.0) / 3 = 70; RF11 is not part of it.
    assert jan["overall"] == pytest.approx(70.0)
    assert contributions["RF1"] == pytest.approx(40 / 3)
    assert contributions["RF9"] == pytest.approx(100 / 3)
    assert contributions["RF11"] == 0.0
    np.testing.assert_allclose(
        result.contributions.sum(axis=1), result.scores["overall"], rtol=1e-12
    )


def test_contribution_changes_explain_the_change_biggest_first():
    moved = contribution_changes({"RF1": 10.0, "RF9": 20.0}, {"RF1": 12.0, "RF9": 5.0, "RF7": 1.0})
    assert moved == [("RF9", -15.0), ("RF1", 2.0), ("RF7", 1.0)]
    assert sum(delta for _, delta in moved) == pytest.approx((12 + 5 + 1) - (10 + 20))


WEIGHTS = {"RF1": 1.0, "RF2": 1.0, "RF9": 1.0, "RF11": 1.0, "RF13": 1.0}
GROUPS = dict(zip(FACTORS["factor"], FACTORS["group"], strict=True))


def state_of(result, country: str, period: str) -> ScoreState:
    scores = row(result, country, period)
    return ScoreState(
        overall=float(scores["overall"]),
        overall_crime=str(scores["overall_crime"]),
        crime_scores={crime: float(scores[crime]) for crime in CRIME_TYPES},
        factor_scores=result.factor_scores.loc[scores.name].to_dict(),
    )


def test_crime_contributions_add_up_to_each_crime_score():
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-10", 0.4),
            ("SYR", "2.1", "2020-01-10", 0.7),
            ("SYR", "9.1", "2020-01-10", 1.0),
            ("SYR", "11.1", "2020-01-10", 0.2),
        )
    )
    jan = state_of(result, "SYR", "2020-01-31")
    for crime in CRIME_TYPES:
        points = crime_contributions(
            jan.factor_scores, factor_weights=WEIGHTS, factor_groups=GROUPS, crime=crime
        )
        assert sum(points.values()) == pytest.approx(jan.crime_scores[crime])
    war = crime_contributions(
        jan.factor_scores, factor_weights=WEIGHTS, factor_groups=GROUPS, crime="war_crimes"
    )
    assert set(war) == {"RF1", "RF2"}  # RF13 has no data, RF9 and RF11 are other crimes


def test_what_moved_it_shows_a_switch_of_crime_type_as_its_own_step_and_rises_as_rises():
    # January: genocide leads (RF9 = 0.9). June: RF9 fell to 0.1 while war crimes' RF13
    # rose from 0.20 to 0.83, so the overall follows war crimes. Subtracting the overall
    # contributions would show RF13 as +0 or a fall and RF9 as the whole story.
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-10", 0.3),
            ("SYR", "9.1", "2020-01-10", 0.9),
            ("SYR", "13.1", "2020-01-10", 0.20),
            ("SYR", "9.1", "2020-06-10", 0.1),
            ("SYR", "13.1", "2020-06-10", 0.83),
        )
    )
    jan, jun = state_of(result, "SYR", "2020-01-31"), state_of(result, "SYR", "2020-06-30")
    assert (jan.overall_crime, jun.overall_crime) == ("genocide", "war_crimes")
    explained = explain_change(jan, jun, factor_weights=WEIGHTS, factor_groups=GROUPS)
    assert explained.crime == "war_crimes"  # the later month's crime type by default
    first = explained.steps[0]
    assert (first.kind, first.from_crime, first.to_crime) == ("switch", "genocide", "war_crimes")
    assert first.change == pytest.approx(jan.crime_scores["war_crimes"] - jan.overall)
    rf13 = next(step for step in explained.factor_steps if step.code == "RF13")
    assert rf13.change == pytest.approx((83 - 20) / 2)  # a rise, shown as a rise
    assert (rf13.before, rf13.after) == (pytest.approx(0.20), pytest.approx(0.83))
    assert "RF9" not in {step.code for step in explained.factor_steps}
    assert sum(step.change for step in explained.steps) == pytest.approx(jun.overall - jan.overall)


def test_what_moved_it_within_the_earlier_crime_type_switches_at_the_end():
    result = score(
        observations(
            ("SYR", "1.1", "2020-01-10", 0.3),
            ("SYR", "9.1", "2020-01-10", 0.9),
            ("SYR", "13.1", "2020-01-10", 0.20),
            ("SYR", "9.1", "2020-06-10", 0.1),
            ("SYR", "13.1", "2020-06-10", 0.83),
        )
    )
    jan, jun = state_of(result, "SYR", "2020-01-31"), state_of(result, "SYR", "2020-06-30")
    explained = explain_change(
        jan, jun, crime="genocide", factor_weights=WEIGHTS, factor_groups=GROUPS
    )
    assert [step.kind for step in explained.steps] == ["factor", "factor", "switch"]
    assert explained.factor_steps[0].code == "RF9"
    assert explained.factor_steps[0].change == pytest.approx((10 - 90) / 2)
    last = explained.steps[-1]
    assert (last.from_crime, last.to_crime) == ("genocide", "war_crimes")
    assert last.change > 0
    assert sum(step.change for step in explained.steps) == pytest.approx(jun.overall - jan.overall)


def test_what_moved_it_has_no_switch_when_the_crime_type_stays():
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.2), ("SYR", "1.1", "2020-06-10", 0.6))
    )
    jan, jun = state_of(result, "SYR", "2020-01-31"), state_of(result, "SYR", "2020-06-30")
    explained = explain_change(jan, jun, factor_weights=WEIGHTS, factor_groups=GROUPS)
    assert not explained.switched
    assert [(s.code, round(s.change, 6)) for s in explained.steps] == [("RF1", 40.0)]


def test_what_moved_it_refuses_a_crime_type_without_a_score():
    result = score(observations(("SYR", "9.1", "2020-01-10", 0.5)))
    jan = state_of(result, "SYR", "2020-01-31")
    with pytest.raises(ValueError, match="No war crimes score"):
        explain_change(jan, jan, crime="war_crimes", factor_weights=WEIGHTS, factor_groups=GROUPS)


def test_countries_are_scored_independently_in_one_call():
    result = score(
        observations(("SYR", "1.1", "2020-01-10", 0.9), ("NOR", "1.1", "2020-01-10", 0.1))
    )
    assert row(result, "SYR", "2020-01-31")["overall"] == pytest.approx(90.0)
    assert row(result, "NOR", "2020-01-31")["overall"] == pytest.approx(10.0)
    assert list(result.scores["country"].unique()) == ["NOR", "SYR"]


def test_no_observations_gives_empty_frames_with_the_documented_columns():
    result = score(observations())
    assert result.scores.empty
    assert "overall" in result.scores.columns
    assert list(result.factor_scores.columns) == list(FACTORS["factor"])


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (observations(("SYR", "99.1", "2020-01-10", 0.5)), "unknown indicator"),
        (observations(("SYR", "1.1", "2020-01-10", 1.5)), r"\[0, 1\]"),
    ],
)
def test_bad_observations_are_refused(obs: pd.DataFrame, message: str):
    with pytest.raises(ValueError, match=message):
        score(obs)


def test_periods_must_be_ascending_month_ends():
    with pytest.raises(ValueError, match="month ends"):
        score(observations(), periods=pd.DatetimeIndex(["2020-01-15"]))
    with pytest.raises(ValueError, match="ascending"):
        score(observations(), periods=pd.DatetimeIndex(["2020-02-29", "2020-01-31"]))


def test_same_day_sources_average_but_an_overriding_assessment_replaces_them():
    # 2.1 on 31 Dec: a data set says 1.0, an analyst adds 0.0 (averaged to 0.5), and
    # another analyst's overriding 1/3 replaces both on that date only.
    obs = observations(
        ("NOR", "2.1", "2019-12-31", 1.0),
        ("NOR", "2.1", "2019-12-31", 0.0),
        ("SWE", "2.1", "2019-12-31", 1.0),
        ("SWE", "2.1", "2019-12-31", 0.0),
        ("SWE", "2.1", "2019-12-31", 1 / 3),
        ("SWE", "2.1", "2020-03-31", 1.0),
    )
    obs["overrides"] = [False, False, False, False, True, False]
    result = score(obs)
    assert result.factor_scores.loc[
        result.scores.index[(result.scores["country"] == "NOR")][0], "RF2"
    ] == pytest.approx(0.5)
    sweden = result.scores["country"] == "SWE"
    swe = result.factor_scores[sweden.to_numpy()]["RF2"].tolist()
    # Jan-Feb: the override alone; from March the newer data-derived value.
    assert swe[:2] == pytest.approx([1 / 3, 1 / 3])
    assert swe[2:] == pytest.approx([1.0] * 4)


def test_last_complete_month_end_never_gives_the_month_under_way():
    from datetime import date

    from indicators.scoring import last_complete_month_end

    assert last_complete_month_end(date(2026, 12, 1)) == date(2026, 11, 30)
    assert last_complete_month_end(date(2026, 12, 31)) == date(2026, 11, 30)
    assert last_complete_month_end(date(2024, 3, 15)) == date(2024, 2, 29)

"""The backtest on a hand-made case whose figures were worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from indicators.backtest import last_base_year, rank_years, run_backtest

# December scores of four countries in two base years; D's 2001 score is thin data.
SCORES = pd.DataFrame(
    [
        ("A", 2000, 90.0, True),
        ("B", 2000, 70.0, True),
        ("C", 2000, 50.0, True),
        ("D", 2000, 30.0, True),
        ("A", 2001, 40.0, True),
        ("B", 2001, 80.0, True),
        ("C", 2001, 60.0, True),
        ("D", 2001, 95.0, False),
    ],
    columns=["country", "year", "score", "sufficient"],
)
# A mass killing begins in A in 2001 and in C in 2002; one in B in 2010 is out of reach.
ONSETS = pd.DataFrame([("A", 2001), ("C", 2002), ("B", 2010)], columns=["country", "year"])


def test_insufficient_data_ranks_last_whatever_its_number():
    ranked = rank_years(SCORES).set_index(["year", "country"])["rank"]
    assert [ranked[(2001, c)] for c in "BCAD"] == [1, 2, 3, 4]
    assert [ranked[(2000, c)] for c in "ABCD"] == [1, 2, 3, 4]


def test_the_figures_of_the_hand_made_case():
    result = run_backtest(SCORES, ONSETS, first_year=2000, last_year=2001, ks=(1, 2), draws=50)
    # Country-years followed by an onset in t+1 or t+2: A and C in 2000, C in 2001.
    assert (result.country_years, result.positives, result.onsets) == (8, 3, 2)
    # Pairs within each year: 2000 A(1), C(3) against B(2), D(4): 3 of 4 won;
    # 2001 C(2) against B(1), A(3), D(4): 2 of 3. Pooled: 5 of 7.
    assert result.auc.value == pytest.approx(5 / 7)
    assert result.recall_at[1].value == pytest.approx(1 / 3)  # only A in 2000
    assert result.recall_at[2].value == pytest.approx(2 / 3)  # and C in 2001
    assert result.precision_at[1].value == pytest.approx(0.5)
    assert result.precision_at[2].value == pytest.approx(0.5)
    assert [(y.base_year, y.onsets, y.auc) for y in result.years] == [
        (2000, 2, pytest.approx(3 / 4)),
        (2001, 1, pytest.approx(2 / 3)),
    ]
    assert [(y.hits[1], y.hits[2]) for y in result.years] == [(1, 1), (0, 1)]
    ranks = [
        (o.country, o.year, o.rank_one_year_before, o.rank_two_years_before)
        for o in result.onset_ranks
    ]
    assert ranks == [("A", 2001, 1, None), ("C", 2002, 2, 3)]
    assert result.onset_ranks[1].ranked_one_year_before == 4


def test_every_figure_comes_with_a_bootstrap_range_around_it():
    result = run_backtest(SCORES, ONSETS, first_year=2000, last_year=2001, ks=(2,), draws=200)
    for figure in (result.auc, result.recall_at[2], result.precision_at[2]):
        assert figure.low <= figure.value <= figure.high
    # Two years only: the range spans the two single-year AUCs.
    assert (result.auc.low, result.auc.high) == pytest.approx((2 / 3, 3 / 4), abs=0.05)
    again = run_backtest(SCORES, ONSETS, first_year=2000, last_year=2001, ks=(2,), draws=200)
    assert again.auc == result.auc  # seeded: the same figures every time


def test_a_perfect_and_a_reversed_ranking_give_auc_one_and_zero():
    perfect = SCORES.assign(score=[10.0, 5.0, 90.0, 1.0, 2.0, 3.0, 99.0, 1.0], sufficient=True)
    # 2000: A and C positive must top the list; 2001: C alone.
    perfect.loc[(perfect.country == "A") & (perfect.year == 2000), "score"] = 95.0
    assert run_backtest(perfect, ONSETS, first_year=2000, last_year=2001, draws=10).auc.value == 1.0
    reversed_ = perfect.assign(score=-perfect["score"])
    assert (
        run_backtest(reversed_, ONSETS, first_year=2000, last_year=2001, draws=10).auc.value == 0.0
    )


def test_base_years_stop_where_the_episode_list_stops_covering_two_years():
    assert last_base_year(2014) == 2012


def test_a_period_without_onsets_or_scores_is_an_error():
    with pytest.raises(ValueError, match="No onset"):
        run_backtest(SCORES, ONSETS.iloc[2:], first_year=2000, last_year=2001)
    with pytest.raises(ValueError, match="No scores"):
        run_backtest(SCORES, ONSETS, first_year=1990, last_year=1991)

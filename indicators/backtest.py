"""Backtest: how well would a ranking have warned of the mass killings that followed?

Pure: frames in, figures out; no Django, no I/O, no clock. It implements DESIGN.md's
"Backtest and calibration":

- **Outcome.** For a country and base year t, an onset is the start of a mass-killing
  episode in year t+1 or t+2 (the practice of the best-known statistical risk
  assessments). Only base years whose two-year window the episode list covers are used.
- **Ranking.** Every country with a December score in base year t, highest first; a
  country whose score is "insufficient data" ranks after every country with enough data
  (never as low risk, never as high).
- **Figures.** AUC over the period: the chance that a country followed by an onset
  stands higher in its year's ranking than one that is not, pairs compared within each
  year and pooled (a ranking is read one year at a time); recall and precision in the
  top k
  of each year (k = 10, 20, 30), pooled; per-year figures; each onset with the rank its
  country had one and two years before. Onsets are rare, so every figure comes with a
  bootstrap range over base years (whole years resampled, keeping each year's ranking
  intact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

TOP_K: tuple[int, ...] = (10, 20, 30)
HORIZON = 2  # an onset in t+1 or t+2 counts for base year t
BOOTSTRAP_DRAWS = 1000


@dataclass(frozen=True)
class Interval:
    """A figure with its bootstrap range (2.5th and 97.5th percentiles)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class OnsetRank:
    """One onset and where its country ranked one and two years before it."""

    country: str
    year: int
    rank_one_year_before: int | None
    rank_two_years_before: int | None
    ranked_one_year_before: int
    """How many countries were ranked that year (the rank's denominator)."""
    ranked_two_years_before: int


@dataclass(frozen=True)
class YearFigures:
    base_year: int
    countries: int
    onsets: int
    """Countries with an onset in the next two years."""
    auc: float | None
    hits: dict[int, int]
    """k -> countries with an onset among the top k."""


@dataclass(frozen=True)
class BacktestResult:
    first_year: int
    last_year: int
    country_years: int
    positives: int
    """Country-years followed by an onset within two years."""
    onsets: int
    """Distinct onsets (country, start year) in the window the base years look at."""
    auc: Interval
    recall_at: dict[int, Interval]
    precision_at: dict[int, Interval]
    years: list[YearFigures]
    onset_ranks: list[OnsetRank]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Plain numbers for JSON: ``auc``, ``recall_at`` and ``precision_at`` by k."""
        return {
            "first_year": self.first_year,
            "last_year": self.last_year,
            "country_years": self.country_years,
            "positives": self.positives,
            "onsets": self.onsets,
            "auc": self.auc.value,
            "auc_range": [self.auc.low, self.auc.high],
            "recall_at": {str(k): v.value for k, v in self.recall_at.items()},
            "recall_range": {str(k): [v.low, v.high] for k, v in self.recall_at.items()},
            "precision_at": {str(k): v.value for k, v in self.precision_at.items()},
            "precision_range": {str(k): [v.low, v.high] for k, v in self.precision_at.items()},
            "years": [
                {
                    "base_year": y.base_year,
                    "countries": y.countries,
                    "onsets": y.onsets,
                    "auc": y.auc,
                    "hits": {str(k): v for k, v in y.hits.items()},
                }
                for y in self.years
            ],
            "onset_ranks": [
                {
                    "country": o.country,
                    "year": o.year,
                    "rank_one_year_before": o.rank_one_year_before,
                    "rank_two_years_before": o.rank_two_years_before,
                    "ranked_one_year_before": o.ranked_one_year_before,
                    "ranked_two_years_before": o.ranked_two_years_before,
                }
                for o in self.onset_ranks
            ],
            "notes": self.notes,
        }


def last_base_year(episodes_last_start_year: int) -> int:
    """The last base year whose whole two-year window the episode list covers."""
    return episodes_last_start_year - HORIZON


def rank_years(scores: pd.DataFrame) -> pd.DataFrame:
    """Each year's countries ranked: 1 for the highest score, insufficient data last.

    ``scores``: columns country, year, score (float), sufficient (bool). Returns the
    same rows with ``rank`` (int, 1-based; ties take the better rank) and ``ranked``
    (how many countries that year) and ``position`` (1..ranked, ties in name order: the
    top k). Rows without a score are dropped.
    """
    frame = scores.dropna(subset=["score"]).copy()
    # Sort key: enough data first, then the score, highest first; equal scores share a
    # rank (a tie), and the top k is then taken in name order, as the pages list them.
    frame["_key"] = np.where(frame["sufficient"].to_numpy(dtype=bool), 0.0, 1e6) - frame[
        "score"
    ].to_numpy(dtype=float)
    frame["rank"] = frame.groupby("year")["_key"].rank(method="min").astype(int)
    frame["ranked"] = frame.groupby("year")["country"].transform("size").astype(int)
    ordered = frame.sort_values(["year", "_key", "country"])
    frame["position"] = ordered.groupby("year").cumcount().reindex(frame.index) + 1
    return frame.drop(columns="_key")


def label_outcomes(ranked: pd.DataFrame, onsets: pd.DataFrame) -> pd.Series:
    """1 where the country has an onset in year+1..year+HORIZON, else 0."""
    starts = set(zip(onsets["country"], onsets["year"].astype(int), strict=True))
    return pd.Series(
        [
            int(any((c, int(y) + step) in starts for step in range(1, HORIZON + 1)))
            for c, y in zip(ranked["country"], ranked["year"], strict=True)
        ],
        index=ranked.index,
    )


def run_backtest(
    scores: pd.DataFrame,
    onsets: pd.DataFrame,
    *,
    first_year: int,
    last_year: int,
    ks: Sequence[int] = TOP_K,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> BacktestResult:
    """Backtest December scores against episode onsets for base years first..last.

    Inputs:
    - ``scores``: columns country, year (the December's year), score (0-100), sufficient
      (False where the score has insufficient data).
    - ``onsets``: columns country, year (the start year of an episode).

    Raises ``ValueError`` when no base year has both scores and an onset to find.
    """
    if first_year > last_year:
        raise ValueError("The first base year is after the last.")
    in_years = scores[(scores["year"] >= first_year) & (scores["year"] <= last_year)]
    ranked = rank_years(in_years)
    if ranked.empty:
        raise ValueError(f"No scores for the base years {first_year}-{last_year}.")
    ranked["outcome"] = label_outcomes(ranked, onsets)
    if ranked["outcome"].sum() == 0:
        raise ValueError(f"No onset follows the base years {first_year}-{last_year}.")
    years = sorted(int(y) for y in ranked["year"].unique())
    by_year = {year: ranked[ranked["year"] == year] for year in years}
    # Each year's counts; every figure is a ratio of sums of them over the years chosen,
    # so a bootstrap draw is a sum over resampled years, not a new ranking.
    pairs = {year: _pairs(by_year[year]) for year in years}
    won = np.array([pairs[y][0] for y in years], dtype=np.float64)
    compared = np.array([pairs[y][1] for y in years], dtype=np.float64)
    positives = np.array([by_year[y]["outcome"].sum() for y in years], dtype=np.float64)
    hits = {
        k: np.array(
            [by_year[y].loc[by_year[y]["position"] <= k, "outcome"].sum() for y in years],
            dtype=np.float64,
        )
        for k in ks
    }
    picks = np.random.default_rng(seed).integers(0, len(years), size=(draws, len(years)))
    counts = np.stack([np.bincount(row, minlength=len(years)) for row in picks])
    usable = counts @ positives > 0
    counts = counts[usable].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_auc = (counts @ won) / (counts @ compared)
        boot_recall = {k: (counts @ hits[k]) / (counts @ positives) for k in ks}
    boot_precision = {k: (counts @ hits[k]) / (k * len(years)) for k in ks}
    auc = float(won.sum() / compared.sum()) if compared.sum() else float("nan")
    recall = {k: float(hits[k].sum() / positives.sum()) for k in ks}
    precision = {k: float(hits[k].sum() / (k * len(years))) for k in ks}

    per_year = []
    for year in years:
        frame = by_year[year]
        outcome = frame["outcome"].to_numpy()
        per_year.append(
            YearFigures(
                base_year=year,
                countries=len(frame),
                onsets=int(outcome.sum()),
                auc=pairs[year][0] / pairs[year][1] if pairs[year][1] else None,
                hits={k: int(frame.loc[frame["position"] <= k, "outcome"].sum()) for k in ks},
            )
        )

    window = onsets[
        (onsets["year"] > first_year) & (onsets["year"] <= last_year + HORIZON)
    ].drop_duplicates(["country", "year"])
    all_ranked = rank_years(scores)
    rank_of = {
        (c, int(y)): (int(r), int(n))
        for c, y, r, n in zip(
            all_ranked["country"],
            all_ranked["year"],
            all_ranked["rank"],
            all_ranked["ranked"],
            strict=True,
        )
    }
    year_sizes = all_ranked.groupby("year")["country"].size().to_dict()
    onset_ranks = []
    for country, year in sorted(
        zip(window["country"], window["year"].astype(int), strict=True), key=lambda x: (x[1], x[0])
    ):
        one = rank_of.get((country, year - 1))
        two = rank_of.get((country, year - 2))
        onset_ranks.append(
            OnsetRank(
                country=country,
                year=year,
                rank_one_year_before=one[0] if one else None,
                rank_two_years_before=two[0] if two else None,
                ranked_one_year_before=int(year_sizes.get(year - 1, 0)),
                ranked_two_years_before=int(year_sizes.get(year - 2, 0)),
            )
        )
    notes = []
    if int(usable.sum()) < draws:
        notes.append(f"{draws - int(usable.sum())} bootstrap draws had no onset and were skipped.")
    return BacktestResult(
        first_year=years[0],
        last_year=years[-1],
        country_years=len(ranked),
        positives=int(ranked["outcome"].sum()),
        onsets=len(window),
        auc=_interval(auc, boot_auc),
        recall_at={k: _interval(recall[k], boot_recall[k]) for k in ks},
        precision_at={k: _interval(precision[k], boot_precision[k]) for k in ks},
        years=per_year,
        onset_ranks=onset_ranks,
        notes=notes,
    )


def _pairs(year: pd.DataFrame) -> tuple[float, int]:
    """(pairs won, pairs compared) of one year's ranking: each country followed by an
    onset against each that is not; a better rank wins, a tie counts one half."""
    outcome = year["outcome"].to_numpy() == 1
    n_pos, n_neg = int(outcome.sum()), int((~outcome).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.0, 0
    # Rank-sum of the negated rank: a better (smaller) rank is a higher value.
    ranks = pd.Series(-year["rank"].to_numpy(dtype=float)).rank(method="average").to_numpy()
    return float(ranks[outcome].sum() - n_pos * (n_pos + 1) / 2), n_pos * n_neg


def _interval(value: float, draws: npt.NDArray[np.float64]) -> Interval:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return Interval(value, float("nan"), float("nan"))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(float(value), float(low), float(high))

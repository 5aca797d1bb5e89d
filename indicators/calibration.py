"""Calibration: factor weights suggested by history, and how they would have done.

A regularised (elastic-net) logistic regression of "an onset in the next two years" on
the 14 factor scores of each country's December, with non-negative coefficients on the
factors (a factor can add risk, never remove it). Fitted by glum, a maintained GLM
library that takes bounds on coefficients; no hand-written optimiser.

- **Missing factors** are handled explicitly, never as zeros: a missing factor score is
  replaced by its mean in the training rows, and a missingness indicator for that factor
  (unbounded, a statistical adjustment, never a weight) is added.
- **Out of sample, rolling origin**: the model that scores base year t is trained only on
  base years up to t-2, whose outcomes (onsets in t'+1 or t'+2) were known by t. Its
  predictions are then backtested exactly like a methodology version.
- **The suggestion** is the model trained on every base year whose outcome window the
  episode list covers; its factor coefficients, rescaled to the published weights' mean,
  are the suggested weights. A factor with no data in training keeps its published
  weight and is said to be uncalibrated.

Pure: frames in, figures out; no Django, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from glum import GeneralizedLinearRegressor

from indicators.backtest import BacktestResult, label_outcomes, run_backtest

# Regularisation: alpha (strength) and l1_ratio (the lasso share), as in the elastic-net
# logits of the best-known statistical risk assessments; fixed so that every
# suggestion is reproducible.
ALPHA = 0.002
L1_RATIO = 0.5
MIN_TRAINING_YEARS = 10


@dataclass(frozen=True)
class Suggestion:
    """Factor weights suggested by the fit on every usable base year."""

    weights: dict[str, float]
    coefficients: dict[str, float]
    """The factor coefficients (log-odds per unit of factor score, >= 0)."""
    missingness: dict[str, float]
    """Coefficients of the missingness indicators: statistical adjustments, not weights."""
    intercept: float
    uncalibrated: list[str]
    """Factors without data in training: their published weight is kept."""
    training_years: tuple[int, int]


@dataclass(frozen=True)
class CalibrationResult:
    suggestion: Suggestion
    out_of_sample: BacktestResult
    """The rolling-origin predictions, backtested like a methodology version."""
    predictions: pd.DataFrame
    """country, year, sufficient, score: each base year's out-of-sample probability."""
    notes: list[str] = field(default_factory=list)


def calibrate(
    factor_scores: pd.DataFrame,
    onsets: pd.DataFrame,
    *,
    factors: Sequence[str],
    published_weights: Mapping[str, float],
    first_year: int,
    last_year: int,
    last_outcome_year: int,
    alpha: float = ALPHA,
    l1_ratio: float = L1_RATIO,
    draws: int = 1000,
) -> CalibrationResult:
    """Suggest factor weights and measure the suggestion's method out of sample.

    - ``factor_scores``: columns country, year (the December's), sufficient (bool) and
      one column per factor code (score in [0, 1], NaN where missing).
    - ``onsets``: columns country, year (start year of an episode).
    - ``first_year``..``last_year``: the base years scored out of sample.
    - ``last_outcome_year``: the last base year whose two-year window the episode list
      covers; training never uses a later one.

    Raises ``ValueError`` when a base year has fewer than ``MIN_TRAINING_YEARS`` years
    of training data or no onset to learn from.
    """
    frame = factor_scores.copy()
    frame = frame[frame["year"] <= last_outcome_year].reset_index(drop=True)
    frame["outcome"] = label_outcomes(frame, onsets)
    predictions = []
    for year in range(first_year, last_year + 1):
        train = frame[frame["year"] <= year - 2]
        test = frame[frame["year"] == year]
        if test.empty:
            continue
        if train["year"].nunique() < MIN_TRAINING_YEARS or train["outcome"].sum() == 0:
            raise ValueError(
                f"Base year {year}: too little history to train on (needs "
                f"{MIN_TRAINING_YEARS} years with an onset among them)."
            )
        model, columns = _fit(train, factors, alpha=alpha, l1_ratio=l1_ratio)
        probability = model.predict(_design(test, columns, train))
        predictions.append(test[["country", "year", "sufficient"]].assign(score=probability))
    scored = pd.concat(predictions, ignore_index=True)
    out_of_sample = run_backtest(
        scored, onsets, first_year=first_year, last_year=last_year, draws=draws
    )

    model, columns = _fit(frame, factors, alpha=alpha, l1_ratio=l1_ratio)
    coefficients = dict(zip(columns.names, model.coef_, strict=True))
    fitted = [f for f in factors if f in columns.factors]
    uncalibrated = [f for f in factors if f not in columns.factors]
    raw = {f: max(0.0, float(coefficients[f])) for f in fitted}
    scale_to = np.mean([published_weights.get(f, 1.0) for f in fitted]) if fitted else 1.0
    mean_raw = np.mean(list(raw.values())) if raw else 0.0
    weights = {
        f: (
            round(float(raw[f] / mean_raw * scale_to), 3)
            if f in raw and mean_raw > 0
            else float(published_weights.get(f, 1.0))
        )
        for f in factors
    }
    notes = []
    if raw and mean_raw == 0:
        notes.append(
            "The fit gives every factor no weight (the regularisation is too strong for the "
            "data): the published weights stay."
        )
    if uncalibrated:
        notes.append(
            f"No data in training for {', '.join(uncalibrated)}: their published weights stay."
        )
    zero = [f for f in fitted if raw[f] == 0]
    if zero:
        notes.append(
            f"The fit gives {', '.join(zero)} no weight: history shows no added risk from them "
            "once the other factors are known."
        )
    suggestion = Suggestion(
        weights=weights,
        coefficients={f: round(raw[f], 4) for f in fitted},
        missingness={
            name: round(float(coefficients[name]), 4)
            for name in columns.names
            if name.startswith("missing ")
        },
        intercept=float(model.intercept_),
        uncalibrated=uncalibrated,
        training_years=(int(frame["year"].min()), int(frame["year"].max())),
    )
    return CalibrationResult(
        suggestion=suggestion, out_of_sample=out_of_sample, predictions=scored, notes=notes
    )


@dataclass(frozen=True)
class _Columns:
    factors: list[str]
    """Factors with data in the training rows."""
    missing: list[str]
    """Factors with some missing values in training: each gets a missingness indicator."""
    means: dict[str, float]

    @property
    def names(self) -> list[str]:
        return [*self.factors, *(f"missing {f}" for f in self.missing)]


def _columns(train: pd.DataFrame, factors: Sequence[str]) -> _Columns:
    present = [f for f in factors if train[f].notna().any()]
    return _Columns(
        factors=present,
        missing=[f for f in present if train[f].isna().any()],
        means={f: float(train[f].mean()) for f in present},
    )


def _design(rows: pd.DataFrame, columns: _Columns, train: pd.DataFrame) -> npt.NDArray[np.float64]:
    filled = [rows[f].fillna(columns.means[f]).to_numpy(dtype=float) for f in columns.factors]
    flags = [rows[f].isna().to_numpy(dtype=float) for f in columns.missing]
    return np.column_stack([*filled, *flags]) if filled else np.zeros((len(rows), 0))


def _fit(
    train: pd.DataFrame, factors: Sequence[str], *, alpha: float, l1_ratio: float
) -> tuple[GeneralizedLinearRegressor, _Columns]:
    columns = _columns(train, factors)
    lower = [0.0] * len(columns.factors) + [-np.inf] * len(columns.missing)
    model = GeneralizedLinearRegressor(
        family="binomial",
        alpha=alpha,
        l1_ratio=l1_ratio,
        lower_bounds=np.array(lower),
        fit_intercept=True,
    )
    model.fit(_design(train, columns, train), train["outcome"].to_numpy(dtype=float))
    return model, columns

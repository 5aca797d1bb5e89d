"""Calibration on synthetic histories built so that the right answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from indicators.calibration import calibrate

FACTORS = ["RF1", "RF2", "RF3"]


def history(seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 countries over 1970-2012: RF1 drives onsets, RF2 is noise, RF3 has no data.

    A country whose RF1 is above 0.8 in December of year t has an onset in t+1 with
    probability 0.6; others almost never. RF2 is drawn independently of everything.
    """
    rng = np.random.default_rng(seed)
    rows, onsets = [], []
    for c in range(40):
        level = rng.uniform(0, 1)
        for year in range(1970, 2013):
            rf1 = float(np.clip(level + rng.normal(0, 0.1), 0, 1))
            rf2 = float(rng.uniform(0, 1))
            missing = rng.uniform() < 0.1  # some RF2 scores are missing
            rows.append((f"C{c:02d}", year, True, rf1, np.nan if missing else rf2, np.nan))
            if rf1 > 0.8 and rng.uniform() < 0.6:
                onsets.append((f"C{c:02d}", year + 1))
    frame = pd.DataFrame(rows, columns=["country", "year", "sufficient", *FACTORS])
    return frame, pd.DataFrame(onsets, columns=["country", "year"]).drop_duplicates()


def run(frame: pd.DataFrame, onsets: pd.DataFrame):
    return calibrate(
        frame,
        onsets,
        factors=FACTORS,
        published_weights={"RF1": 1.0, "RF2": 1.0, "RF3": 2.0},
        first_year=2000,
        last_year=2010,
        last_outcome_year=2010,
        draws=100,
    )


def test_the_suggestion_weighs_the_factor_that_predicts_and_drops_the_noise():
    result = run(*history())
    weights = result.suggestion.weights
    assert weights["RF1"] > 1.5
    assert weights["RF2"] < 0.3 * weights["RF1"]
    assert all(w >= 0 for w in weights.values())
    # No data at all for RF3: its published weight stays, and the note says so.
    assert weights["RF3"] == 2.0
    assert result.suggestion.uncalibrated == ["RF3"]
    assert any("RF3" in note for note in result.notes)
    # Missing RF2 scores get their own indicator, not a zero.
    assert set(result.suggestion.missingness) == {"missing RF2"}
    assert result.out_of_sample.auc.value > 0.85


def test_the_out_of_sample_score_of_a_year_never_sees_later_outcomes():
    frame, onsets = history()
    base = run(frame, onsets).predictions.set_index(["country", "year"])["score"]
    # An onset in 2009 changes the outcomes of base years 2007 and 2008 only: the
    # predictions for base years up to 2008 (trained on years up to 2006) stay the same,
    # and those from 2009 (trained on 2007 on) may move.
    extra = pd.concat(
        [onsets, pd.DataFrame([("C00", 2009), ("C01", 2009)], columns=onsets.columns)]
    )
    moved = run(frame, extra.drop_duplicates()).predictions.set_index(["country", "year"])["score"]
    early = base.index.get_level_values("year") <= 2008
    assert np.allclose(base[early], moved[early])
    assert not np.allclose(base[~early], moved[~early])


def test_too_little_history_is_an_error():
    frame, onsets = history()
    with pytest.raises(ValueError, match="too little history"):
        calibrate(
            frame[frame["year"] >= 1995],
            onsets,
            factors=FACTORS,
            published_weights={},
            first_year=2000,
            last_year=2010,
            last_outcome_year=2010,
        )

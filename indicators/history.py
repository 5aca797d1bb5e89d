"""A methodology version against history: its backtest, and a calibration of weights.

Reads what the pure ``backtest`` and ``calibration`` modules need: the December scores
of a version (stored for published and superseded versions; computed in memory for a
draft, which is never stored where analysts would see it) and the onsets of the
mass-killing episode list, read in place from the public data folder or from a newer
file with the same columns. Nothing else is an outcome: no other outcome data enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.utils import timezone

from countries.models import Country
from indicators import backtest, calibration, scoring, selectors
from indicators.models import MethodologyVersion, RiskScore
from indicators.sources import COUNTRY_CODES_FILE
from indicators.sources.base import SourceFormatError
from indicators.sources.codes import CountryCodes
from indicators.sources.episodes import read_episodes
from indicators.sources.mapping import published_mapping

# The span the best-known published statistical model reports out of sample.
DEFAULT_FIRST_BASE_YEAR = 1994


class HistoryError(ValueError):
    """The episode file or the scores needed are missing or unusable; says which."""


@dataclass(frozen=True)
class Outcomes:
    onsets: pd.DataFrame
    """country (ISO3), year: the start of each episode, located in one of our countries."""
    last_start_year: int
    source: str
    """The file the onsets were read from."""

    @property
    def last_base_year(self) -> int:
        return backtest.last_base_year(self.last_start_year)


def episode_file() -> Path:
    """The episode list in the public data folder."""
    return Path(settings.PUBLIC_DATA_DIR) / published_mapping().datasets["episodes"].file


def outcomes(*, path: Path | None = None) -> Outcomes:
    """Onsets from the episode list (default: the public data folder's), read in place.

    Raises ``HistoryError`` when the file (or the country-code table beside the public
    data) is missing or malformed.
    """
    source = Path(path) if path is not None else episode_file()
    codes_path = Path(settings.PUBLIC_DATA_DIR) / COUNTRY_CODES_FILE
    for needed in (source, codes_path):
        if not needed.is_file():
            raise HistoryError(
                f"{needed} is missing: the backtest reads the episode list and the country-code "
                "table of the public data folder (set PUBLIC_DATA_DIR, or pass --episodes)."
            )
    codes = CountryCodes(
        pd.read_csv(codes_path, dtype={"iso3": str, "name": str}),
        ours=Country.objects.values_list("iso3", flat=True),
    )
    try:
        found = read_episodes(source, codes=codes)
    except SourceFormatError as exc:
        raise HistoryError(str(exc)) from exc
    onsets = pd.DataFrame(
        [(e.iso3, e.start_year) for e in found.episodes], columns=["country", "year"]
    ).drop_duplicates()
    return Outcomes(onsets=onsets, last_start_year=found.last_year, source=str(source))


def december_scores(version: MethodologyVersion) -> pd.DataFrame:
    """country, year, score, sufficient and one column per factor, for every December.

    Stored scores for a published or superseded version; for a draft, computed here in
    memory (every December from 1960), never written.
    """
    factor_codes = list(selectors.factors_frame()["factor"])
    stored = (MethodologyVersion.Status.PUBLISHED, MethodologyVersion.Status.SUPERSEDED)
    if version.status in stored:
        rows = RiskScore.objects.filter(methodology=version, period__month=12).values_list(
            "country__iso3", "period", "overall", "level", "factor_scores"
        )
        frame = pd.DataFrame.from_records(
            list(rows), columns=["country", "period", "score", "level", "factor_scores"]
        )
        if frame.empty:
            raise HistoryError(f"v{version.number} has no stored scores to backtest.")
        factors = pd.DataFrame(list(frame.pop("factor_scores")), columns=factor_codes)
        frame = pd.concat([frame.reset_index(drop=True), factors], axis=1)
    else:
        frame = _computed_decembers(version, factor_codes)
    frame["year"] = pd.to_datetime(frame["period"]).dt.year
    frame["sufficient"] = frame["level"] != scoring.LEVEL_INSUFFICIENT
    frame["score"] = frame["score"].astype(float)
    return frame.drop(columns=["period", "level"])


def _computed_decembers(
    version: MethodologyVersion, factor_codes: list[str], *, until: date | None = None
) -> pd.DataFrame:
    """Every December's scores under ``version``, and those of the month end ``until``
    (default: the last complete month), computed in memory."""
    observations = selectors.observations_frame()
    if observations.empty:
        raise HistoryError("There are no observations to score.")
    factors, indicators = selectors.weights_frames(version)
    last = until or scoring.last_complete_month_end(timezone.localdate())
    first_year = max(settings.SCORES_FROM_YEAR, observations["observed_on"].min().year)
    decembers = [pd.Timestamp(year, 12, 31) for year in range(first_year, last.year)]
    periods = pd.DatetimeIndex([*decembers, pd.Timestamp(last)])
    result = scoring.compute_scores(
        observations,
        indicators=indicators,
        factors=factors,
        periods=periods,
        thresholds=scoring.Thresholds(**version.thresholds),
    )
    frame = result.scores[["country", "period", "overall", "level"]].rename(
        columns={"overall": "score"}
    )
    return pd.concat(
        [frame.reset_index(drop=True), result.factor_scores.reindex(columns=factor_codes)], axis=1
    )


def latest_scores(version: MethodologyVersion, *, period: date | None = None) -> pd.DataFrame:
    """country, score, level at ``period`` (default: the version's latest scored month);
    a draft's are computed in memory, for the month ``period`` (default: the last
    complete one)."""
    if version.status == MethodologyVersion.Status.DRAFT:
        frame = _computed_decembers(
            version, list(selectors.factors_frame()["factor"]), until=period
        )
        frame = frame[frame["period"] == frame["period"].max()]
        return frame[["country", "score", "level"]].reset_index(drop=True)
    if period is None:
        bounds = selectors.score_period_range(methodology=version)
        period = bounds[1] if bounds else None
    rows = RiskScore.objects.filter(methodology=version, period=period).values_list(
        "country__iso3", "overall", "level"
    )
    return pd.DataFrame.from_records(list(rows), columns=["country", "score", "level"])


def run_backtest(
    version: MethodologyVersion,
    *,
    episodes: Path | None = None,
    first_year: int | None = None,
    last_year: int | None = None,
) -> backtest.BacktestResult:
    """The version's December rankings against the onsets of the episode list.

    Base years default to 1994 through the last one whose two-year window the episode
    list covers; a later ``last_year`` is refused, never silently cut.
    """
    found = outcomes(path=episodes)
    first, last = _years(found, first_year, last_year)
    scores = december_scores(version)
    return backtest.run_backtest(scores, found.onsets, first_year=first, last_year=last)


def run_calibration(
    *,
    episodes: Path | None = None,
    first_year: int | None = None,
    last_year: int | None = None,
) -> tuple[calibration.CalibrationResult, backtest.BacktestResult, MethodologyVersion]:
    """Calibrate factor weights on the published version's factor scores; returns the
    calibration, the published version's backtest over the same years, and that version.
    """
    version = selectors.published_methodology()
    if version is None:
        raise HistoryError("Nothing is published yet: there are no scores to learn from.")
    found = outcomes(path=episodes)
    first, last = _years(found, first_year, last_year)
    scores = december_scores(version)
    factor_codes = list(selectors.factors_frame()["factor"])
    result = calibration.calibrate(
        scores,
        found.onsets,
        factors=factor_codes,
        published_weights=version.factor_weights,
        first_year=first,
        last_year=last,
        last_outcome_year=found.last_base_year,
    )
    baseline = backtest.run_backtest(scores, found.onsets, first_year=first, last_year=last)
    return result, baseline, version


def _years(found: Outcomes, first: int | None, last: int | None) -> tuple[int, int]:
    first = DEFAULT_FIRST_BASE_YEAR if first is None else first
    last = found.last_base_year if last is None else last
    if last > found.last_base_year:
        raise HistoryError(
            f"The episode list ({found.source}) ends with episodes begun in "
            f"{found.last_start_year}, so the last base year it can judge is "
            f"{found.last_base_year}, not {last}."
        )
    if first > last:
        raise HistoryError(f"The first base year {first} is after the last, {last}.")
    return first, last

"""Benchmark: a methodology version against history, on the real public data.

The public data sets are imported in place from ``PUBLIC_DATA_DIR`` into this bench's
own PostgreSQL database and scored (set-up, not measured). Then, timed:

1. reading the episode list (the only outcome data) into onsets;
2. the published version's December scores, read from the stored scores;
3. a draft's December scores, computed in memory (what the backtest page does for a
   draft before it is published);
4. the backtest itself (pure: AUC, recall and precision in the top k, 1,000 bootstrap
   resamples of base years);
5. the calibration (pure: rolling-origin elastic-net fits and their out-of-sample
   backtest).

Run with ``make bench-backtest``: its database (``$DATABASE_URL``) is created and
dropped. Prints the figures, the backtest's findings and the machine. DESIGN.md sets no
target for these; the page and the command should answer within seconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alert_latency import drop_database  # noqa: E402
from bench.fresh import start_on_fresh_database  # noqa: E402
from bench.scoring import machine  # noqa: E402


def timed(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def line(label: str, times: list[float]) -> str:
    return (
        f"{label:<42} median {statistics.median(times):7.3f} s "
        f"(min {min(times):.3f}, {len(times)} runs)"
    )


def main() -> None:
    url = start_on_fresh_database()
    from django.db import connections

    from indicators import backtest, calibration, history, methodology, public_data, selectors
    from indicators.services import refresh_scores

    try:
        print(f"Machine: {machine()}; PostgreSQL at {url.rsplit('@', 1)[-1]}")
        start = time.perf_counter()
        public_data.import_public_data()
        run = refresh_scores()
        print(
            f"Set-up: public data imported and scored ({run.scores_written:,} scores) "
            f"in {time.perf_counter() - start:.1f} s"
        )

        published = selectors.published_methodology()
        assert published is not None
        draft = methodology.create_draft(by=None, title="Bench draft")
        factor_codes = list(selectors.factors_frame()["factor"])

        outcome_times, found = timed(lambda: history.outcomes(), 5)
        first, last = history.DEFAULT_FIRST_BASE_YEAR, found.last_base_year
        stored_times, scores = timed(lambda: history.december_scores(published), 5)
        draft_times, _ = timed(lambda: history.december_scores(draft), 3)
        backtest_times, result = timed(
            lambda: backtest.run_backtest(scores, found.onsets, first_year=first, last_year=last),
            5,
        )
        calibration_times, calibrated = timed(
            lambda: calibration.calibrate(
                scores,
                found.onsets,
                factors=factor_codes,
                published_weights=published.factor_weights,
                first_year=first,
                last_year=last,
                last_outcome_year=found.last_base_year,
            ),
            3,
        )

        print(
            f"History: {len(scores):,} December scores, {len(found.onsets)} onsets, "
            f"base years {first}-{last}"
        )
        print(line("Episode list read:", outcome_times))
        print(line("Published Decembers (stored):", stored_times))
        print(line("Draft Decembers (computed in memory):", draft_times))
        print(line("Backtest (incl. 1,000 bootstrap draws):", backtest_times))
        print(line("Calibration (rolling fits + backtest):", calibration_times))
        for name, found_result in (
            (f"Published v{published.number}", result),
            ("Calibrated (out of sample)", calibrated.out_of_sample),
        ):
            auc, recall = found_result.auc, found_result.recall_at[30]
            print(
                f"{name}: AUC {auc.value:.3f} [{auc.low:.3f}, {auc.high:.3f}], "
                f"recall in the top 30 {recall.value:.1%} [{recall.low:.1%}, {recall.high:.1%}]"
            )
    finally:
        connections.close_all()
        drop_database(url)


if __name__ == "__main__":
    main()

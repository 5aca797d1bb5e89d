"""The whole public data folder imported into PostgreSQL, scored, and checked against facts.

Reads the real files where they are (settings.PUBLIC_DATA_DIR); nothing is copied. The
facts are ones any reader of the record would expect the scores to show.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings

from countries.models import MassKillingEpisode
from indicators import public_data, services
from indicators.models import Observation, RiskScore
from indicators.sources.mapping import load_mapping
from tests.conftest import skip_or_fail

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("postgres", "countries", "framework"),
]
TODAY = date(2026, 12, 1)


def december(year: int) -> pd.DataFrame:
    rows = RiskScore.objects.filter(period=date(year, 12, 31)).values(
        "country__iso3", "overall", "level"
    )
    frame = pd.DataFrame.from_records(list(rows)).set_index("country__iso3")
    scored = frame[frame["level"] != "insufficient_data"]
    return scored.assign(percentile=scored["overall"].rank(pct=True))


def test_the_full_public_folder_imports_and_its_scores_agree_with_the_record():
    folder = Path(settings.PUBLIC_DATA_DIR)
    if not folder.is_dir():
        skip_or_fail(f"the public data folder {folder} is not here (set PUBLIC_DATA_DIR)")

    result = public_data.import_public_data(data_dir=folder, today=TODAY)
    run = services.refresh_scores(today=TODAY)

    assert run.status == "succeeded"
    assert run.period_start == date(1960, 1, 31)
    assert run.period_end == date(2026, 11, 30)  # the last complete month, never December
    assert {d.status for d in result.datasets} == {"imported"}
    assert Observation.objects.count() > 300_000
    # Every indicator the mapping names has observations.
    mapped = {item.indicator for item in load_mapping().variables}
    fed = set(Observation.objects.values_list("indicator__code", flat=True).distinct())
    assert mapped <= fed, f"no observations for {sorted(mapped - fed)}"
    # About 165 countries scored with enough data today; in 1960 fewer states existed.
    assert len(december(1960)) >= 95
    assert 160 <= len(december(2025)) <= 195
    assert MassKillingEpisode.objects.filter(event_code__isnull=False).count() == 149

    year_2013 = december(2013)
    assert year_2013.loc["SYR", "level"] in ("high", "very_high")
    assert year_2013.loc["SYR", "overall"] > year_2013.loc["NOR", "overall"] + 40
    assert december(1993).loc["RWA", "percentile"] > 0.5
    assert december(2003).loc["SDN", "percentile"] > 0.5
    # Countries with a mass killing under way at the end of 2014 rank well above the median.
    ongoing = set(
        MassKillingEpisode.objects.filter(end_year__isnull=True).values_list(
            "country__iso3", flat=True
        )
    )
    year_2014 = december(2014)
    ranks = year_2014.loc[sorted(ongoing & set(year_2014.index)), "percentile"]
    assert len(ranks) >= 12
    assert ranks.median() > 0.85
    assert (ranks > 0.5).all(), ranks[ranks <= 0.5]

    again = public_data.import_public_data(data_dir=folder, today=TODAY)
    assert not again.changed
    assert {d.status for d in again.datasets} == {"unchanged"}

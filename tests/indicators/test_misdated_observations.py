"""Observations dated outside the accepted range that got in before the rule existed:
scoring leaves them out, says so in the run's record, and never fails on them."""

from __future__ import annotations

from datetime import date

import pytest

from countries.models import Country
from indicators.models import Indicator, Observation, RiskScore, ScoringRun
from indicators.services import record_observations, refresh_scores

TODAY = date(2024, 7, 1)


def store_as_before_the_rule(iso3: str, code: str, observed_on: date, value: float) -> None:
    """Write the row as the old entry paths could, without today's validation."""
    Observation.objects.create(
        country=Country.objects.get(iso3=iso3),
        indicator=Indicator.objects.get(code=code),
        observed_on=observed_on,
        value=value,
        source="typed before dates were bounded",
    )


@pytest.fixture
def good_history(countries: None, framework: None) -> None:
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "1.1",
                "observed_on": "2023-12-31",
                "value": 1.0,
                "source": "UCDP",
            },
            {
                "country": "NOR",
                "indicator": "1.1",
                "observed_on": "2023-12-31",
                "value": 0.0,
                "source": "UCDP",
            },
        ],
        recompute=False,
        today=TODAY,
    )


@pytest.mark.usefixtures("postgres", "good_history")
def test_a_full_run_leaves_out_misdated_rows_and_names_them_in_its_record():
    store_as_before_the_rule("SDN", "8.7", date(204, 5, 1), 1.0)  # a typo for 2024
    store_as_before_the_rule("NOR", "8.7", date(1800, 1, 1), 1.0)
    store_as_before_the_rule("NOR", "8.1", date(2999, 1, 31), 1.0)
    run = refresh_scores(today=TODAY)
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.observations_read == 5
    assert run.error == (
        "Left out 3 observations dated outside 1900-01-01 to 2024-07-01 (e.g. SDN 8.7 "
        "0204-05-01, NOR 8.7 1800-01-01, NOR 8.1 2999-01-31): correct or delete them."
    )
    # The century before the first good row is not scored either.
    assert run.period_start == date(2023, 12, 31)
    assert RiskScore.objects.filter(run=run, country__iso3="SDN").exists()


@pytest.mark.usefixtures("postgres", "good_history")
def test_a_one_country_run_names_only_its_countrys_misdated_rows():
    refresh_scores(today=TODAY)
    store_as_before_the_rule("SDN", "8.7", date(204, 5, 1), 1.0)
    store_as_before_the_rule("NOR", "8.7", date(1800, 1, 1), 1.0)
    run = refresh_scores(countries=["SDN"], today=TODAY)
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.countries == ["SDN"]
    assert run.error.startswith("Left out 1 observation dated outside")
    assert "SDN 8.7 0204-05-01" in run.error
    assert "NOR" not in run.error


@pytest.mark.usefixtures("good_history")
def test_a_run_with_only_good_rows_has_an_empty_record():
    run = refresh_scores(today=TODAY)
    assert (run.status, run.error) == (ScoringRun.Status.SUCCEEDED, "")

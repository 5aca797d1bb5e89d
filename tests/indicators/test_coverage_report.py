"""The coverage report: what data feeds each factor and indicator, as a selector and a command."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from indicators.selectors import coverage_report
from indicators.services import record_observations

pytestmark = pytest.mark.usefixtures("countries", "framework")


def observe(country: str, indicator: str, day: date, source: str) -> None:
    record_observations(
        rows=[
            {
                "country": country,
                "indicator": indicator,
                "observed_on": day,
                "value": 0.5,
                "source": source,
            }
        ],
        today=date(2024, 12, 31),
        recompute=False,
    )


@pytest.fixture
def some_data() -> None:
    observe("SDN", "1.1", date(2020, 3, 1), "UCDP")
    observe("SDN", "1.1", date(2022, 3, 1), "Analyst")
    observe("NOR", "1.1", date(2022, 6, 1), "UCDP")
    observe("SDN", "8.7", date(2023, 1, 1), "Analyst")


def test_it_counts_countries_years_and_sources_per_indicator(some_data):
    report = coverage_report()
    assert report.observations == 4
    assert report.countries == 2
    rf1 = next(f for f in report.factors if f.code == "RF1")
    first = rf1.indicators[0]
    assert first.code == "1.1"
    assert (first.observations, first.countries, first.years) == (3, 2, 2)
    assert (first.first_year, first.last_year) == (2020, 2022)
    assert first.sources == ["Analyst", "UCDP"]
    assert rf1.countries == 2
    assert rf1.indicators_with_data == 1
    rf8 = next(f for f in report.factors if f.code == "RF8")
    assert rf8.countries == 1


def test_it_lists_the_indicators_without_data(some_data):
    report = coverage_report()
    missing = {indicator.code for indicator in report.indicators_without_data}
    assert "1.1" not in missing
    assert "8.7" not in missing
    assert "1.2" in missing
    total = sum(len(f.indicators) for f in report.factors)
    assert len(missing) == total - 2
    rf14 = next(f for f in report.factors if f.code == "RF14")
    assert rf14.indicators == []  # the framework file lists none yet


def test_it_can_be_limited_to_some_factors(some_data):
    report = coverage_report(factor_codes=["RF8"])
    assert [f.code for f in report.factors] == ["RF8"]
    assert report.observations == 1


def test_the_command_prints_the_report(some_data):
    out = StringIO()
    call_command("coverage_report", stdout=out)
    text = out.getvalue()
    assert text.startswith("4 observations on 2 countries;")
    assert "1.1  3 observations, 2 countries, 2 years (2020-2022); sources: Analyst, UCDP" in text
    assert "1.2  no data" in text


def test_the_report_is_empty_but_complete_without_data():
    report = coverage_report()
    assert report.observations == 0
    assert len(report.factors) == 14
    assert all(not i.has_data for f in report.factors for i in f.indicators)

"""``refresh_scores`` reading observations, scoring them and storing runs and scores."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from indicators import methodology, services
from indicators.models import (
    MethodologyVersion,
    Observation,
    RiskScore,
    ScoringRun,
)
from indicators.services import record_observations, refresh_scores
from tests.conftest import publish_methodology

pytestmark = pytest.mark.usefixtures("countries", "framework")

TODAY = date(2014, 6, 15)
# Runs score up to the last complete month: a run on 1 July scores month ends to 30 June.
SCORED_ON = date(2014, 7, 1)


def observe(country: str, indicator: str, observed_on: str, value: float, source: str = "test"):
    record_observations(
        rows=[
            {
                "country": country,
                "indicator": indicator,
                "observed_on": observed_on,
                "value": value,
                "source": source,
            }
        ],
        today=TODAY,
        recompute=False,
    )


@pytest.fixture
def two_countries() -> None:
    # Syria: armed conflict (RF1) and incitement (RF8) high; Norway: low.
    observe("SYR", "1.1", "2013-12-31", 1.0)
    observe("SYR", "8.7", "2014-02-10", 2 / 3)
    observe("NOR", "1.1", "2013-12-31", 0.0)


def test_it_stores_a_score_per_country_and_month_end_with_its_run(two_countries):
    run = refresh_scores(today=SCORED_ON)
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert run.observations_read == 3
    # Dec 2013 .. Jun 2014: 7 month ends for each of the two countries.
    assert (run.period_start, run.period_end, run.period_count) == (
        date(2013, 12, 31),
        date(2014, 6, 30),
        7,
    )
    assert run.scores_written == RiskScore.objects.count() == 14
    assert run.finished_at >= run.started_at
    assert set(run.timings) == {"read", "score", "write"}
    syria = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 3, 31))
    # RF1 = 1.0, RF8 = 2/3; only common factors: 100 * (1 + 2/3) / 2
    assert syria.overall == pytest.approx(83.3333, abs=1e-3)
    assert syria.factor_scores == {"RF1": 1.0, "RF8": pytest.approx(0.6667)}
    assert sum(syria.contributions.values()) == pytest.approx(syria.overall, abs=1e-3)
    assert syria.run == run
    assert syria.methodology == run.methodology
    # Two indicators of 113 are far below the coverage floor: never shown as low.
    assert syria.level == "insufficient_data"
    norway = RiskScore.objects.get(country__iso3="NOR", period=date(2014, 3, 31))
    assert norway.overall == 0.0
    assert norway.level == "insufficient_data"


def test_coverage_is_stored_per_crime_type(two_countries):
    refresh_scores(today=SCORED_ON)
    march = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 3, 31))
    # Two indicators (1.1, 8.7) of weight 1 have data. The common factors RF1-RF8 hold
    # 82 indicators; genocide adds RF9-RF10 (13), crimes against humanity RF11-RF12 (8),
    # war crimes RF13-RF14 (10).
    assert march.coverage_genocide == pytest.approx(2 / 95, abs=1e-4)
    assert march.coverage_crimes_against_humanity == pytest.approx(2 / 90, abs=1e-4)
    assert march.coverage_war_crimes == pytest.approx(2 / 92, abs=1e-4)
    # All three scores tie, so the overall is genocide's and so is its coverage.
    assert march.overall_crime == "genocide"
    assert march.coverage == march.coverage_genocide
    december = RiskScore.objects.get(country__iso3="SYR", period=date(2013, 12, 31))
    assert december.coverage_war_crimes == pytest.approx(1 / 92, abs=1e-4)


def test_scores_become_levels_once_coverage_is_sufficient(two_countries):
    publish_methodology(thresholds={"min_coverage": 0.01}, today=SCORED_ON)
    assert RiskScore.objects.get(country__iso3="SYR", period=date(2014, 3, 31)).level == (
        "very_high"
    )
    assert RiskScore.objects.get(country__iso3="NOR", period=date(2014, 3, 31)).level == "low"


def test_changes_are_stored(two_countries):
    refresh_scores(today=SCORED_ON)
    may = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 5, 31))
    # February 2014 already had 8.7; three months before May is February: no change.
    assert may.change_3m == pytest.approx(0.0)
    march = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 3, 31))
    assert march.change_3m == pytest.approx(83.3333 - 100.0, abs=1e-3)  # vs December


def test_running_again_updates_in_place_under_the_same_methodology(two_countries):
    first = refresh_scores(today=SCORED_ON)
    second = refresh_scores(today=SCORED_ON)
    assert second.methodology == first.methodology
    assert RiskScore.objects.count() == 14
    assert set(RiskScore.objects.values_list("run", flat=True)) == {second.pk}
    assert MethodologyVersion.objects.count() == 1  # v1, made on the first run


def test_new_weights_score_under_a_new_version_and_keep_the_old_scores(two_countries):
    first = refresh_scores(today=SCORED_ON)
    version = publish_methodology(factor_weights={"RF8": 3.0}, today=SCORED_ON)
    assert version.number == first.methodology.number + 1
    assert version.factor_weights["RF8"] == 3.0
    first.methodology.refresh_from_db()
    assert first.methodology.status == MethodologyVersion.Status.SUPERSEDED
    old = RiskScore.objects.get(
        country__iso3="SYR", period=date(2014, 3, 31), methodology=first.methodology
    )
    new = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 3, 31), methodology=version)
    assert old.overall == pytest.approx(83.3333, abs=1e-3)
    assert new.overall == pytest.approx(100 * (1 + 3 * 2 / 3) / 4, abs=1e-3)
    # Later runs score the published version only; the old scores stay as they were.
    later = refresh_scores(today=SCORED_ON)
    assert later.methodology == version
    old.refresh_from_db()
    assert old.run == first


def test_a_one_country_refresh_touches_only_that_country(two_countries):
    refresh_scores(today=SCORED_ON)
    norway_before = list(RiskScore.objects.filter(country__iso3="NOR").values("run", "overall"))
    observe("SYR", "8.7", "2014-05-01", 0.0, source="later")
    run = refresh_scores(countries=["SYR"], today=SCORED_ON)
    assert run.countries == ["SYR"]
    assert run.observations_read == 3
    may = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 5, 31))
    assert may.run == run
    assert may.factor_scores["RF8"] == 0.0
    assert list(RiskScore.objects.filter(country__iso3="NOR").values("run", "overall")) == (
        norway_before
    )


def test_a_one_country_refresh_of_a_version_never_scored_in_full_becomes_a_full_refresh(
    two_countries,
):
    refresh_scores(today=SCORED_ON)
    draft = methodology.create_draft(by=None)
    run = refresh_scores(countries=["SYR"], today=SCORED_ON, methodology=draft)
    assert run.is_full
    assert RiskScore.objects.filter(methodology=draft).count() == 14


def test_a_one_country_refresh_in_a_month_after_the_last_full_run_becomes_a_full_refresh(
    two_countries,
):
    refresh_scores(today=SCORED_ON)  # full run on 1 July: month ends up to 30 June
    observe("SYR", "8.7", "2014-06-01", 0.0, source="later")  # saved on 2 August
    run = refresh_scores(countries=["SYR"], today=date(2014, 8, 2))
    assert run.is_full
    assert run.period_end == date(2014, 7, 31)
    july = RiskScore.objects.filter(period=date(2014, 7, 31))
    assert set(july.values_list("country__iso3", flat=True)) == {"SYR", "NOR"}


def test_a_one_country_refresh_of_periods_the_full_run_covered_stays_one_country(two_countries):
    refresh_scores(today=SCORED_ON)
    run = refresh_scores(countries=["SYR"], periods=[date(2014, 6, 30)], today=date(2014, 8, 2))
    assert run.countries == ["SYR"]
    beyond = refresh_scores(countries=["SYR"], periods=[date(2014, 7, 31)], today=date(2014, 8, 2))
    assert beyond.is_full


def test_no_month_that_has_not_ended_is_scored(two_countries):
    run = refresh_scores(today=date(2014, 6, 30))  # the last day of June: not over yet
    assert run.period_end == date(2014, 5, 31)
    assert not RiskScore.objects.filter(period__gt=date(2014, 5, 31)).exists()
    observe("SYR", "1.1", "2014-06-05", 0.0, source="this month")
    assert refresh_scores(today=date(2014, 6, 30)).period_end == date(2014, 5, 31)


def test_scores_start_in_january_1960_but_earlier_observations_still_count(countries, framework):
    observe("SYR", "1.1", "1955-12-31", 1.0)
    run = refresh_scores(today=date(1960, 4, 2))
    assert (run.period_start, run.period_end) == (date(1960, 1, 31), date(1960, 3, 31))
    # Dated 1955, the observation is older than the 730-day limit by 1960: missing.
    assert not RiskScore.objects.exists()
    observe("SYR", "1.1", "1959-06-30", 1.0)
    refresh_scores(today=date(1960, 4, 2))
    assert RiskScore.objects.get(period=date(1960, 1, 31)).overall == 100.0


def test_scores_no_longer_backed_by_observations_are_removed(two_countries):
    refresh_scores(today=SCORED_ON)
    Observation.objects.filter(country__iso3="NOR").delete()
    refresh_scores(today=SCORED_ON)
    assert not RiskScore.objects.filter(country__iso3="NOR").exists()
    assert RiskScore.objects.filter(country__iso3="SYR").count() == 7


def test_scores_go_when_every_observation_is_gone(two_countries):
    refresh_scores(today=SCORED_ON)
    Observation.objects.all().delete()
    run = refresh_scores(today=SCORED_ON)
    assert (run.observations_read, run.scores_written) == (0, 0)
    assert not RiskScore.objects.exists()


def test_a_country_that_lost_all_its_observations_loses_its_scores(two_countries):
    refresh_scores(today=SCORED_ON)
    Observation.objects.filter(country__iso3="NOR").delete()
    run = refresh_scores(countries=["NOR"], today=SCORED_ON)
    assert run.countries == ["NOR"]
    assert run.observations_read == 0
    assert not RiskScore.objects.filter(country__iso3="NOR").exists()
    assert RiskScore.objects.filter(country__iso3="SYR").count() == 7


def test_refreshes_take_turns_on_postgresql(postgres, two_countries, monkeypatch):
    from django.db import connection

    held: list[bool] = []
    read = services.selectors.observations_frame

    def read_and_check_the_lock(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = 0 AND objid = %s",
                [services.REFRESH_LOCK_ID],
            )
            held.append(cursor.fetchone()[0] > 0)
        return read(**kwargs)

    monkeypatch.setattr(services.selectors, "observations_frame", read_and_check_the_lock)
    refresh_scores(today=SCORED_ON)
    assert held == [True]  # the observations are read while the lock is held


def test_limiting_periods_writes_only_those_but_keeps_history_for_changes(two_countries):
    run = refresh_scores(periods=[date(2014, 3, 31)], today=TODAY)
    stored = RiskScore.objects.get(country__iso3="SYR")
    assert stored.period == date(2014, 3, 31)
    assert stored.change_3m == pytest.approx(83.3333 - 100.0, abs=1e-3)
    assert run.scores_written == 2


def test_no_observations_is_a_successful_empty_run():
    run = refresh_scores(today=SCORED_ON)
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert (run.observations_read, run.scores_written) == (0, 0)


def test_a_failing_run_is_recorded_with_its_error_and_writes_no_scores(two_countries, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(services.scoring, "compute_scores", broken)
    with pytest.raises(RuntimeError):
        refresh_scores(today=SCORED_ON)
    run = ScoringRun.objects.get()
    assert run.status == ScoringRun.Status.FAILED
    assert run.error == "RuntimeError: engine exploded"
    assert run.finished_at is not None
    assert not RiskScore.objects.exists()


def test_recording_observations_recomputes_the_country_on_commit(
    two_countries, django_capture_on_commit_callbacks
):
    refresh_scores()  # publish a full run up to this month, as the recompute task scores
    with django_capture_on_commit_callbacks(execute=True):
        record_observations(
            rows=[
                {
                    "country": "SYR",
                    "indicator": "1.1",
                    "observed_on": "2014-01-31",
                    "value": 1.0,
                    "source": "test",
                }
            ],
            today=TODAY,
        )
    run = ScoringRun.objects.order_by("-started_at").first()
    assert run.countries == ["SYR"]
    assert RiskScore.objects.filter(country__iso3="SYR").exists()


def test_the_command_prints_the_run(two_countries):
    out = StringIO()
    call_command("refresh_scores", "SYR", stdout=out)
    assert "succeeded" in out.getvalue()
    assert "3 observations read" in out.getvalue()  # a first run is always full

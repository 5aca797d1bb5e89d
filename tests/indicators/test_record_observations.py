"""``record_observations`` against the real database (PostgreSQL in CI)."""

from __future__ import annotations

import logging
from datetime import date, datetime

import pytest
from django.contrib.auth import get_user_model

from alerts import tasks as alert_tasks
from indicators import tasks
from indicators.models import Observation, RecomputeRequest, RiskScore
from indicators.services import (
    ObservationBatchError,
    RowError,
    _queue_recompute_drain,
    delete_observations,
    drain_recompute_requests,
    record_observations,
)
from tests.conftest import pending_recomputes

pytestmark = pytest.mark.usefixtures("postgres", "countries", "framework")

TODAY = date(2026, 11, 22)


def good_rows() -> list[dict[str, object]]:
    return [
        {
            "country": "SYR",
            "indicator": "1.1",
            "observed_on": "2013-12-31",
            "value": 1.0,
            "confidence": "high",
            "source": "UCDP",
            "source_url": "https://ucdp.uu.se/",
            "note": "war",
        },
        {
            "country": "NOR",
            "indicator": "1.1",
            "observed_on": date(2013, 12, 31),
            "value": 0,
            "source": "UCDP",
        },
        {
            "country": "syr",
            "indicator": "8.7",
            # Spreadsheets hand over naive datetimes; only the date part counts.
            "observed_on": datetime(2014, 3, 1),  # noqa: DTZ001
            "value": 0.5,
            "source": "Analyst",
        },
    ]


def record(rows, **kwargs):
    kwargs.setdefault("today", TODAY)
    return record_observations(rows=rows, **kwargs)


def test_a_valid_batch_is_stored(django_capture_on_commit_callbacks):
    user = get_user_model().objects.create_user("analyst")
    with django_capture_on_commit_callbacks() as callbacks:
        result = record(good_rows(), recorded_by=user)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert result.countries == {"SYR", "NOR"}
    # A recompute request per changed country, in the same transaction; one drain queued.
    assert pending_recomputes() == ["NOR", "SYR"]
    assert callbacks.count(_queue_recompute_drain) == 1
    stored = Observation.objects.get(country__iso3="SYR", indicator__code="1.1")
    assert (stored.value, stored.confidence, stored.source_url, stored.note) == (
        1.0,
        "high",
        "https://ucdp.uu.se/",
        "war",
    )
    assert stored.recorded_by == user
    assert Observation.objects.get(country__iso3="NOR").confidence == "medium"


def test_recording_the_same_batch_again_changes_nothing(django_capture_on_commit_callbacks):
    record(good_rows())
    before = list(Observation.objects.values().order_by("id"))
    with django_capture_on_commit_callbacks() as callbacks:
        result = record(good_rows())
    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert callbacks == []
    assert list(Observation.objects.values().order_by("id")) == before


def test_a_changed_value_updates_the_row_in_place():
    record(good_rows())
    rows = good_rows()
    rows[0]["value"] = 0.5
    result = record(rows)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert result.countries == {"SYR"}
    assert Observation.objects.count() == 3
    assert Observation.objects.get(country__iso3="SYR", indicator__code="1.1").value == 0.5


def test_another_source_on_the_same_date_is_a_new_row():
    record(good_rows())
    rows = good_rows()[:1]
    rows[0]["source"] = "ACLED"
    assert record(rows).created == 1
    assert Observation.objects.filter(country__iso3="SYR", indicator__code="1.1").count() == 2


def test_the_analyst_scale_maps_0_to_3_onto_0_to_1():
    rows = [
        {
            "country": "SYR",
            "indicator": "1.1",
            "observed_on": "2014-01-01",
            "value": v,
            "source": f"analyst {v}",
        }
        for v in ("0", 1, 2.0, 3)
    ]
    record(rows, scale="analyst")
    values = sorted(Observation.objects.values_list("value", flat=True))
    assert values == pytest.approx([0, 1 / 3, 2 / 3, 1])


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("country", "XXX", "unknown country code 'XXX'"),
        ("country", "", "is required"),
        ("indicator", "99.9", "unknown indicator code '99.9'"),
        ("value", 1.5, "outside [0, 1]"),
        ("value", -0.1, "outside [0, 1]"),
        ("value", "high", "is not a number"),
        ("value", "nan", "not a finite number"),
        ("value", None, "is required"),
        ("observed_on", "2026-11-23", "in the future"),
        ("observed_on", "31/12/2013", "not a date in the form YYYY-MM-DD"),
        ("observed_on", "2013-02-30", "not a date"),
        ("observed_on", "20131231", "not a date in the form YYYY-MM-DD"),
        ("observed_on", "2013-W01-1", "not a date in the form YYYY-MM-DD"),
        ("observed_on", "2013-12-3", "not a date in the form YYYY-MM-DD"),
        ("confidence", "certain", "is not one of low, medium, high"),
        ("source", " ", "is required"),
        ("source_url", "ftp://example.org/x", "not a valid http(s) URL"),
    ],
)
def test_each_kind_of_bad_row_is_rejected_with_its_message_and_nothing_is_written(
    field: str, bad: object, message: str
):
    rows = good_rows()
    rows[1][field] = bad
    with pytest.raises(ObservationBatchError) as caught:
        record(rows)
    assert len(caught.value.errors) == 1
    error = caught.value.errors[0]
    assert (error.row, error.field) == (2, field)
    assert message in error.message
    assert f"row 2, {field}" in str(caught.value)
    assert not Observation.objects.exists()


def test_every_problem_is_listed_not_just_the_first():
    rows = good_rows()
    rows[0]["country"] = "ZZZ"
    rows[0]["value"] = 7
    rows[2]["indicator"] = "0.0"
    with pytest.raises(ObservationBatchError) as caught:
        record(rows)
    assert caught.value.errors == [
        RowError(1, "country", "unknown country code 'ZZZ'"),
        RowError(1, "value", "7 is outside [0, 1]"),
        RowError(3, "indicator", "unknown indicator code '0.0'"),
    ]
    assert not Observation.objects.exists()


def test_the_analyst_scale_refuses_values_between_the_steps():
    rows = good_rows()[:1]
    rows[0]["value"] = 1.5
    with pytest.raises(ObservationBatchError, match="0-3 scale"):
        record(rows, scale="analyst")


def test_a_key_repeated_within_the_batch_is_an_error():
    rows = [*good_rows(), good_rows()[0]]
    with pytest.raises(ObservationBatchError) as caught:
        record(rows)
    assert caught.value.errors == [
        RowError(4, "source", "repeats row 1 (same country, indicator, date and source)")
    ]
    assert not Observation.objects.exists()


def test_an_empty_batch_is_an_error():
    with pytest.raises(ObservationBatchError, match="empty"):
        record([])


def test_a_dry_run_counts_but_writes_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        result = record(good_rows(), dry_run=True)
    assert result.created == 3
    assert not Observation.objects.exists()
    assert callbacks == []


def test_a_broker_outage_after_commit_loses_neither_the_write_nor_the_recompute(
    django_capture_on_commit_callbacks, monkeypatch, caplog
):
    red_flag_checks: list[list[int]] = []

    def broker_down() -> None:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks.drain_recompute_requests, "delay", broker_down)
    monkeypatch.setattr(alert_tasks.evaluate_red_flags, "delay", red_flag_checks.append)
    with (
        caplog.at_level(logging.ERROR, logger="indicators.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = record(good_rows())
    assert result.created == 3
    assert Observation.objects.count() == 3
    assert red_flag_checks == [sorted(Observation.objects.values_list("pk", flat=True))]
    assert "Could not run or queue the recompute drain" in caplog.text
    assert "Redis is down" in caplog.text
    # The requests are rows: the beat's drain recomputes them once the broker is back.
    assert pending_recomputes() == ["NOR", "SYR"]
    run = drain_recompute_requests()
    assert set(RiskScore.objects.values_list("country__iso3", flat=True)) == {"NOR", "SYR"}
    assert pending_recomputes() == []
    assert set(RecomputeRequest.objects.values_list("run", flat=True)) == {run.pk}
    assert drain_recompute_requests() is None  # nothing left


def test_deleting_observations_recomputes_their_countries_on_commit(
    django_capture_on_commit_callbacks,
):
    record(good_rows())
    RecomputeRequest.objects.all().delete()
    doomed = Observation.objects.filter(country__iso3="SYR").values_list("pk", flat=True)
    with django_capture_on_commit_callbacks() as callbacks:
        countries = delete_observations(ids=list(doomed))
    assert countries == {"SYR"}
    assert list(Observation.objects.values_list("country__iso3", flat=True)) == ["NOR"]
    assert pending_recomputes() == ["SYR"]
    assert callbacks.count(_queue_recompute_drain) == 1

"""The scoring pipeline through a real broker: Redis and a separate Celery worker process."""

from __future__ import annotations

import time

import pytest

from indicators.models import RiskScore, ScoringRun
from indicators.services import record_observations
from indicators.tasks import recompute_all_scores

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("countries", "framework")]


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail("timed out waiting for the worker")


def test_the_worker_recomputes_after_observations_are_recorded(celery_worker):
    record_observations(
        rows=[
            {
                "country": "SYR",
                "indicator": "1.1",
                "observed_on": "2013-12-31",
                "value": 1.0,
                "source": "UCDP",
            },
            {
                "country": "NOR",
                "indicator": "1.1",
                "observed_on": "2013-12-31",
                "value": 0.0,
                "source": "UCDP",
            },
        ]
    )
    # One task per changed country; with no full run published yet, the first becomes
    # a full run, the second scores its own country only.
    runs = wait_for(
        lambda: (
            list(
                ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).order_by("started_at")
            )
            if ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).count() == 2
            else None
        )
    )
    assert runs[0].is_full
    assert runs[0].observations_read == 2
    assert len(runs[1].countries) == 1
    assert runs[1].observations_read == 1
    syria = wait_for(
        lambda: RiskScore.objects.filter(country__iso3="SYR").order_by("period").first()
    )
    assert syria.overall == pytest.approx(100.0)
    assert syria.run.status == ScoringRun.Status.SUCCEEDED
    assert RiskScore.objects.filter(country__iso3="NOR").exists()


def test_a_full_recompute_sent_through_the_broker_runs_on_the_worker(celery_worker):
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "8.7",
                "observed_on": "2017-08-31",
                "value": 1.0,
                "source": "analyst",
            }
        ],
        recompute=False,
    )
    assert not ScoringRun.objects.exists()
    recompute_all_scores.delay()
    run = wait_for(lambda: ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).first())
    assert run.is_full
    assert RiskScore.objects.filter(country__iso3="MMR", run=run).count() == run.scores_written > 0

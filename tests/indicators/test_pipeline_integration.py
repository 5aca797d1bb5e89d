"""The scoring pipeline through a real broker: Redis and a separate Celery worker process."""

from __future__ import annotations

import time

import pytest

from indicators.models import RiskScore, ScoringRun
from indicators.services import record_observations
from indicators.tasks import recompute_all_scores
from tests.conftest import pending_recomputes

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
    # One recompute request per changed country, drained once by the worker: with no
    # full run published yet, that run is a full one.
    run = wait_for(lambda: ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).first())
    assert run.is_full
    assert run.observations_read == 2
    wait_for(lambda: not pending_recomputes())
    assert ScoringRun.objects.count() == 1
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

"""Scoring runs and methodology versions."""

from __future__ import annotations

import csv
import io
import json

import pytest

from indicators import methodology
from indicators.models import ScoringRun
from indicators.services import refresh_scores
from tests.conftest import publish_methodology

from .conftest import TODAY

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/scoring-runs/"
VERSIONS = "/api/v1/methodology-versions/"


@pytest.fixture
def two_versions(scored) -> ScoringRun:
    """A new version published (a full run under its weights), then a one-country run."""
    publish_methodology(factor_weights={"RF10": 3.0}, today=TODAY)
    return refresh_scores(countries=["SDN"], today=TODAY)


def test_runs_newest_first(analyst_client, two_versions, scored):
    body = analyst_client.get(RUNS).json()
    assert body["count"] == 3
    newest = body["results"][0]
    assert newest["id"] == two_versions.pk
    assert newest["full"] is False
    assert newest["countries"] == ["SDN"]
    assert newest["methodology"] == 3
    oldest = body["results"][-1]
    assert oldest["id"] == scored.pk
    assert oldest["full"] is True
    assert oldest["countries"] is None
    assert oldest["status"] == "succeeded"
    assert oldest["period_start"] == "2024-01-31"
    assert oldest["period_end"] == "2025-06-30"
    assert oldest["observations_read"] == 9
    assert oldest["scores_written"] > 0
    assert set(oldest["timings"]) >= {"read", "score", "write"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"full": "true"}, 2),
        ({"full": "false"}, 1),
        ({"methodology": 2}, 1),
        ({"methodology": 3}, 2),
        ({"status": "failed"}, 0),
        ({"status": "succeeded", "full": "true"}, 2),
    ],
)
def test_run_filters(analyst_client, two_versions, params, expected):
    assert analyst_client.get(RUNS, params).json()["count"] == expected


def test_run_bad_filters(analyst_client, scored):
    assert analyst_client.get(RUNS, {"status": "exploded"}).status_code == 400
    assert analyst_client.get(RUNS, {"methodology": "first"}).status_code == 400


def test_run_detail_pagination_ordering_and_csv(analyst_client, two_versions, scored):
    assert analyst_client.get(f"{RUNS}{scored.pk}/").json()["id"] == scored.pk
    assert analyst_client.get(f"{RUNS}987654/").status_code == 404
    page = analyst_client.get(RUNS, {"page_size": 2, "page": 2}).json()
    assert [r["id"] for r in page["results"]] == [scored.pk]
    oldest_first = analyst_client.get(RUNS, {"ordering": "started_at"}).json()["results"]
    assert oldest_first[0]["id"] == scored.pk
    response = analyst_client.get(RUNS, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 3
    assert rows[0]["countries"] == '["SDN"]'
    assert set(json.loads(rows[0]["timings"])) >= {"read", "score", "write"}


def test_methodology_versions_newest_first_with_the_published_one(analyst_client, two_versions):
    body = analyst_client.get(VERSIONS).json()
    # v1 equal weights (made for the first publication), v2 the test's floor, v3 RF10 x3.
    assert [v["number"] for v in body["results"]] == [3, 2, 1]
    latest, earlier, first = body["results"]
    assert [v["status"] for v in body["results"]] == ["published", "superseded", "superseded"]
    assert latest["published"] is True
    assert earlier["published"] is False
    assert (latest["based_on"], latest["rationale"]) == (2, "Weights for this test.")
    assert latest["published_at"] is not None
    assert first["title"] == "Equal weights"
    assert latest["factor_weights"]["RF10"] == 3.0
    assert earlier["factor_weights"]["RF10"] == 1.0
    assert latest["indicator_weights"]["1.1"] == 1.0
    assert latest["staleness_days"]["1.1"] == 730
    assert latest["thresholds"]["very_high_from"] == 75.0
    assert len(latest["fingerprint"]) == 64


def test_methodology_version_detail_ordering_and_csv(analyst_client, two_versions):
    assert analyst_client.get(f"{VERSIONS}1/").json()["published"] is False
    assert analyst_client.get(f"{VERSIONS}99/").status_code == 404
    ordered = analyst_client.get(VERSIONS, {"ordering": "number"}).json()["results"]
    assert [v["number"] for v in ordered] == [1, 2, 3]
    page = analyst_client.get(VERSIONS, {"page_size": 1, "page": 2}).json()
    assert [v["number"] for v in page["results"]] == [2]
    response = analyst_client.get(VERSIONS, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["number"] for r in rows] == ["3", "2", "1"]
    assert json.loads(rows[0]["factor_weights"])["RF10"] == 3.0


def test_drafts_are_listed_for_administrators_only(analyst_client, client_for, two_versions):
    methodology.create_draft(by=None)
    assert [v["number"] for v in analyst_client.get(VERSIONS).json()["results"]] == [3, 2, 1]
    assert analyst_client.get(f"{VERSIONS}4/").status_code == 404
    administrator = client_for("administrator")
    listed = administrator.get(VERSIONS).json()["results"]
    assert next((v["number"], v["status"]) for v in listed) == (4, "draft")


def test_no_versions_before_the_first_run(analyst_client, framework):
    assert analyst_client.get(VERSIONS).json()["count"] == 0
    assert analyst_client.get(RUNS).json()["count"] == 0

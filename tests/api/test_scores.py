"""A country's score history and the rankings, under the published methodology only."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from django.utils import timezone

from countries.models import Country
from indicators.models import MethodologyVersion, RiskScore, ScoringRun

pytestmark = pytest.mark.django_db

HISTORY = "/api/v1/countries/{}/scores/"
RANKINGS = "/api/v1/rankings/"


@pytest.fixture
def unpublished_score(scored) -> RiskScore:
    """A score under weights whose full run failed: nobody should see it."""
    version = MethodologyVersion.objects.create(
        number=99,
        fingerprint="f" * 64,
        factor_weights={},
        indicator_weights={},
        staleness_days={},
        thresholds={},
    )
    run = ScoringRun.objects.create(
        methodology=version, status=ScoringRun.Status.FAILED, started_at=timezone.now()
    )
    return RiskScore.objects.create(
        country=Country.objects.get(iso3="SDN"),
        period=date(2025, 7, 31),
        methodology=version,
        run=run,
        overall=1.0,
        level="low",
        coverage=1.0,
    )


# --- history ---------------------------------------------------------------------------


def test_history_lists_every_month_oldest_first(analyst_client, scored):
    response = analyst_client.get(HISTORY.format("SDN"), {"page_size": 100})
    assert response.status_code == 200
    body = response.json()
    # Jan 2024 .. Jun 2025
    assert body["count"] == 18
    periods = [row["period"] for row in body["results"]]
    assert periods[0] == "2024-01-31"
    assert periods[-1] == "2025-06-30"
    assert periods == sorted(periods)
    last = body["results"][-1]
    stored = RiskScore.objects.get(country__iso3="SDN", period=date(2025, 6, 30))
    assert last["score"] == pytest.approx(stored.overall)
    assert last["overall"] == pytest.approx(stored.overall)
    assert last["run"] == scored.pk
    assert last["methodology"] == scored.methodology.number
    assert set(last["factor_scores"]) >= {"RF1", "RF10", "RF12"}


def test_history_shows_only_the_published_methodology(analyst_client, unpublished_score):
    periods = [
        r["period"]
        for r in analyst_client.get(HISTORY.format("SDN"), {"page_size": 100}).json()["results"]
    ]
    assert "2025-07-31" not in periods
    country = analyst_client.get("/api/v1/countries/SDN/").json()
    assert country["latest_score"]["period"] == "2025-06-30"
    ranking = analyst_client.get(RANKINGS, {"date": "2025-12-31"}).json()["results"]
    assert {r["period"] for r in ranking} == {"2025-06-30"}


def test_history_from_and_to(analyst_client, scored):
    body = analyst_client.get(
        HISTORY.format("sdn"), {"from": "2024-03-01", "to": "2024-05-31"}
    ).json()
    assert [r["period"] for r in body["results"]] == ["2024-03-31", "2024-04-30", "2024-05-31"]


def test_history_crime_picks_the_score(analyst_client, scored):
    rows = analyst_client.get(HISTORY.format("SDN"), {"crime": "genocide"}).json()["results"]
    assert all(r["score"] == r["genocide"] for r in rows)
    assert any(r["score"] != r["war_crimes"] for r in rows)


def test_history_ordering_newest_first(analyst_client, scored):
    rows = analyst_client.get(HISTORY.format("SDN"), {"ordering": "-period"}).json()["results"]
    assert rows[0]["period"] == "2025-06-30"


@pytest.mark.parametrize(
    "params", [{"crime": "arson"}, {"from": "last year"}, {"to": "2024-13-01"}]
)
def test_history_bad_parameters_are_field_errors(analyst_client, scored, params):
    response = analyst_client.get(HISTORY.format("SDN"), params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_history_of_an_unknown_country_is_404(analyst_client, scored):
    response = analyst_client.get(HISTORY.format("XXX"))
    assert response.status_code == 404
    assert "detail" in response.json()


def test_history_is_empty_before_the_first_run(analyst_client, countries):
    assert analyst_client.get(HISTORY.format("SDN")).json()["count"] == 0


def test_history_pagination_and_csv(analyst_client, scored):
    page = analyst_client.get(HISTORY.format("SDN"), {"page_size": 5, "page": 4}).json()
    assert [r["period"] for r in page["results"]] == ["2025-04-30", "2025-05-31", "2025-06-30"]
    response = analyst_client.get(HISTORY.format("SDN"), {"format": "csv", "page_size": 100})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 18
    assert rows[-1]["period"] == "2025-06-30"
    assert json.loads(rows[-1]["factor_scores"])["RF1"] == pytest.approx(1.0)
    assert float(rows[-1]["score"]) == pytest.approx(float(rows[-1]["overall"]))


# --- rankings --------------------------------------------------------------------------


def test_rankings_rank_the_latest_period_highest_first(analyst_client, scored):
    body = analyst_client.get(RANKINGS).json()
    assert body["count"] == 4
    rows = body["results"]
    assert {r["period"] for r in rows} == {"2025-06-30"}
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0]["rank"] == 1
    assert rows[-1]["country"]["iso3"] == "NOR"
    assert rows[0]["country"].keys() == {"iso3", "name", "region", "sub_region"}


def test_rankings_for_a_date_rank_its_month(analyst_client, scored):
    rows = analyst_client.get(RANKINGS, {"date": "2024-01-15"}).json()["results"]
    assert {r["period"] for r in rows} == {"2024-01-31"}
    assert {r["country"]["iso3"] for r in rows} == {"SDN", "MMR", "NOR"}  # no UKR yet
    rows = analyst_client.get(RANKINGS, {"date": "2024-02-01"}).json()["results"]
    assert {r["period"] for r in rows} == {"2024-02-29"}
    assert analyst_client.get(RANKINGS, {"date": "2023-12-31"}).json()["count"] == 0


def test_rankings_after_the_last_scored_month_rank_that_month(analyst_client, scored):
    rows = analyst_client.get(RANKINGS, {"date": "2031-01-01"}).json()["results"]
    assert {r["period"] for r in rows} == {"2025-06-30"}


def test_rankings_by_region_rank_within_it(analyst_client, scored):
    rows = analyst_client.get(RANKINGS, {"region": "Europe"}).json()["results"]
    assert [(r["country"]["iso3"], r["rank"]) for r in rows] == [("UKR", 1), ("NOR", 2)]
    rows = analyst_client.get(RANKINGS, {"sub_region": "south-eastern asia"}).json()["results"]
    assert [(r["country"]["iso3"], r["rank"]) for r in rows] == [("MMR", 1)]


def test_rankings_by_crime(analyst_client, scored):
    rows = analyst_client.get(RANKINGS, {"crime": "war_crimes"}).json()["results"]
    assert all(r["score"] == r["war_crimes"] for r in rows)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_rankings_ties_share_a_rank(analyst_client, scored):
    for iso3, overall in [("SDN", 80.0), ("MMR", 80.0), ("UKR", 60.0), ("NOR", 10.0)]:
        RiskScore.objects.filter(period=date(2025, 6, 30), country__iso3=iso3).update(
            overall=overall
        )
    rows = analyst_client.get(RANKINGS).json()["results"]
    assert [(r["country"]["iso3"], r["rank"]) for r in rows] == [
        ("MMR", 1),  # ties in alphabetical order
        ("SDN", 1),
        ("UKR", 3),
        ("NOR", 4),
    ]


def test_rankings_ordering_by_name(analyst_client, scored):
    rows = analyst_client.get(RANKINGS, {"ordering": "country__name"}).json()["results"]
    assert [r["country"]["name"] for r in rows] == ["Myanmar", "Norway", "Sudan", "Ukraine"]


@pytest.mark.parametrize("params", [{"date": "yesterday"}, {"crime": "all"}])
def test_rankings_bad_parameters_are_field_errors(analyst_client, scored, params):
    response = analyst_client.get(RANKINGS, params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_rankings_are_empty_before_the_first_run(analyst_client, countries):
    assert analyst_client.get(RANKINGS).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_rankings_pagination_and_csv(analyst_client, scored):
    page = analyst_client.get(RANKINGS, {"page_size": 3, "page": 2}).json()
    assert [r["country"]["iso3"] for r in page["results"]] == ["NOR"]
    response = analyst_client.get(RANKINGS, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    assert rows[0]["rank"] == "1"
    assert rows[0]["country.iso3"]
    assert list(rows[0])[:4] == ["rank", "country.iso3", "country.name", "country.region"]


def test_rankings_put_insufficient_data_after_every_country_with_enough(analyst_client, scored):
    # Sudan's top score rests on too little data: it ranks last, flagged.
    RiskScore.objects.filter(period=date(2025, 6, 30), country__iso3="SDN").update(
        overall=99.0, coverage=0.0, level="insufficient_data"
    )
    methodology = RiskScore.objects.first().methodology
    # The fixture's few observations cover about 1 % of the framework.
    methodology.thresholds = {**methodology.thresholds, "min_coverage": 0.005}
    methodology.save(update_fields=["thresholds"])
    rows = analyst_client.get(RANKINGS).json()["results"]
    assert rows[-1]["country"]["iso3"] == "SDN"
    assert rows[-1]["insufficient_data"] is True
    assert rows[-1]["rank"] == 4
    assert not any(r["insufficient_data"] for r in rows[:-1])

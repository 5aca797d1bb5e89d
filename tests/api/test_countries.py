"""GET /api/v1/countries/ and /api/v1/countries/{iso3}/: countries with their latest score."""

from __future__ import annotations

import csv
import io

import pytest

from indicators.models import RiskScore

URL = "/api/v1/countries/"
pytestmark = pytest.mark.django_db


def test_it_lists_every_country_with_its_latest_score(analyst_client, scored):
    response = analyst_client.get(URL, {"page_size": 500})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 195
    by_code = {c["iso3"]: c for c in body["results"]}
    latest = RiskScore.objects.filter(country__iso3="SDN").order_by("-period").first()
    sudan = by_code["SDN"]
    assert sudan["name"] == "Sudan"
    assert sudan["region"] == "Africa"
    assert sudan["latest_score"]["period"] == latest.period.isoformat()
    assert sudan["latest_score"]["overall"] == pytest.approx(latest.overall)
    assert sudan["latest_score"]["level"] == latest.level
    assert by_code["FRA"]["latest_score"] is None  # no observations


def test_without_a_scoring_run_countries_have_no_score(analyst_client, countries):
    body = analyst_client.get(URL).json()
    assert body["count"] == 195
    assert all(c["latest_score"] is None for c in body["results"])


def test_it_shows_the_published_methodology_only(analyst_client, scored):
    # A country-only run under the same weights does not change which version is shown.
    sudan = analyst_client.get(URL + "SDN/").json()
    assert sudan["latest_score"]["period"] == "2025-06-30"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"region": "africa"}, {"SDN"}),
        ({"sub_region": "Northern Europe", "level": "low"}, {"NOR"}),
        ({"search": "myan"}, {"MMR"}),
        ({"search": "gb"}, {"GBR"}),  # alpha-2
        ({"search": "sdn"}, {"SDN"}),
        ({"un_status": "observer"}, {"PSE", "VAT"}),
    ],
)
def test_filters(analyst_client, scored, params, expected):
    params = {**params, "page_size": 500}
    results = analyst_client.get(URL, params).json()["results"]
    codes = {c["iso3"] for c in results}
    if "region" in params:
        assert expected <= codes
        assert all(c["region"] == "Africa" for c in results)
    else:
        assert codes == expected


def test_level_filter_uses_the_latest_score(analyst_client, scored):
    latest_levels = {
        c["iso3"]: c["latest_score"]["level"]
        for c in analyst_client.get(URL, {"page_size": 500}).json()["results"]
        if c["latest_score"]
    }
    level = latest_levels["SDN"]
    results = analyst_client.get(URL, {"level": level, "page_size": 500}).json()["results"]
    assert {c["iso3"] for c in results} == {k for k, v in latest_levels.items() if v == level}


def test_ordering_by_latest_score_puts_countries_without_one_last(analyst_client, scored):
    results = analyst_client.get(URL, {"ordering": "-latest_overall", "page_size": 10}).json()[
        "results"
    ]
    scores = [c["latest_score"]["overall"] for c in results[:4]]
    assert scores == sorted(scores, reverse=True)
    assert {c["iso3"] for c in results[:4]} == {"SDN", "MMR", "UKR", "NOR"}
    assert results[4]["latest_score"] is None


def test_bad_filter_values_are_field_errors(analyst_client, scored):
    response = analyst_client.get(URL, {"level": "apocalyptic"})
    assert response.status_code == 400
    assert "level" in response.json()


def test_pagination(analyst_client, scored):
    first = analyst_client.get(URL, {"page_size": 2})
    body = first.json()
    assert body["count"] == 195
    assert [c["name"] for c in body["results"]] == ["Afghanistan", "Albania"]
    assert body["next"].endswith("page=2&page_size=2")
    assert body["previous"] is None
    assert first["X-Total-Count"] == "195"
    assert 'rel="next"' in first["Link"]
    second = analyst_client.get(URL, {"page_size": 2, "page": 2}).json()
    assert [c["name"] for c in second["results"]] == ["Algeria", "Andorra"]
    assert analyst_client.get(URL, {"page": 999}).status_code == 404


def test_page_size_is_capped_at_500(analyst_client, countries):
    body = analyst_client.get(URL, {"page_size": 10_000}).json()
    assert len(body["results"]) == 195  # all of them: fewer than the cap
    assert body["next"] is None


def test_csv(analyst_client, scored):
    response = analyst_client.get(URL, {"format": "csv", "search": "Sudan"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["iso3"] for r in rows] == ["SSD", "SDN"]  # South Sudan, Sudan
    assert rows[0]["latest_score.level"] == ""  # South Sudan: no score, same columns
    assert rows[1]["latest_score.level"] == "very_high"
    assert float(rows[1]["latest_score.overall"]) > 75


def test_csv_pages_like_json(analyst_client, countries):
    response = analyst_client.get(URL, {"format": "csv", "page_size": 3, "page": 2})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["Andorra", "Angola", "Antigua and Barbuda"]
    assert response["X-Total-Count"] == "195"
    assert "format=csv" in response["Link"]


def test_detail(analyst_client, scored):
    response = analyst_client.get(URL + "sdn/")
    assert response.status_code == 200
    assert response.json()["iso3"] == "SDN"
    assert response.json()["latest_score"]["overall"] is not None


def test_unknown_country_is_404_with_a_message(analyst_client, countries):
    response = analyst_client.get(URL + "XXX/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No Country matches the given query."}
    assert analyst_client.get(URL + "TOOLONG/").status_code == 404

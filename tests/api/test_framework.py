"""Risk factors and indicators with the published version's weights (read-only here)."""

from __future__ import annotations

import csv
import io

import pytest

from indicators.models import Indicator
from tests.conftest import publish_methodology

pytestmark = pytest.mark.django_db

FACTORS = "/api/v1/risk-factors/"
INDICATORS = "/api/v1/indicators/"


def test_risk_factors_with_their_indicators_and_weights(analyst_client, framework):
    publish_methodology(
        factor_weights={"RF10": 2.5},
        indicator_weights={"10.1": 3.0},
        staleness_days={"10.1": 365},
    )
    body = analyst_client.get(FACTORS).json()
    assert body["count"] == 14
    assert [f["code"] for f in body["results"]][:3] == ["RF1", "RF2", "RF3"]
    rf10 = next(f for f in body["results"] if f["code"] == "RF10")
    assert rf10["weight"] == 2.5
    assert rf10["group"] == "genocide"
    first = rf10["indicators"][0]
    assert first == {
        "code": "10.1",
        "position": 1,
        "label": Indicator.objects.get(code="10.1").label,
        "weight": 3.0,
        "staleness_days": 365,
        "verification": Indicator.objects.get(code="10.1").verification,
    }
    assert rf10["indicators"][1]["staleness_days"] == 730  # the default


def test_risk_factor_filters_ordering_and_detail(analyst_client, framework):
    results = analyst_client.get(FACTORS, {"group": "war_crimes"}).json()["results"]
    codes = [f["code"] for f in results]
    assert codes == ["RF13", "RF14"]
    publish_methodology(factor_weights={"RF5": 9})
    assert analyst_client.get(FACTORS + "rf5/").json()["weight"] == 9
    assert analyst_client.get(FACTORS + "RF99/").status_code == 404
    assert analyst_client.get(FACTORS, {"group": "arson"}).status_code == 400


def test_indicators(analyst_client, framework):
    body = analyst_client.get(INDICATORS, {"page_size": 500}).json()
    assert body["count"] == Indicator.objects.count()
    first = body["results"][0]
    assert first["code"] == "1.1"
    assert first["factor"] == "RF1"
    assert first["group"] == "common"
    assert set(first) == {
        "code",
        "factor",
        "group",
        "position",
        "label",
        "weight",
        "staleness_days",
        "verification",
    }


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"factor": "rf10"}, lambda i: i["factor"] == "RF10"),
        ({"group": "crimes_against_humanity"}, lambda i: i["factor"] in {"RF11", "RF12"}),
        ({"verification": "verified"}, lambda i: i["verification"] == "verified"),
    ],
)
def test_indicator_filters(analyst_client, framework, params, check):
    results = analyst_client.get(INDICATORS, {**params, "page_size": 500}).json()["results"]
    assert results
    assert all(check(i) for i in results)


def test_indicator_detail_and_404(analyst_client, framework):
    assert analyst_client.get(INDICATORS + "8.7/").json()["factor"] == "RF8"
    assert analyst_client.get(INDICATORS + "8.99/").status_code == 404
    response = analyst_client.get(INDICATORS, {"verification": "rumoured"})
    assert response.status_code == 400
    assert list(response.json()) == ["verification"]


def test_indicators_pagination_ordering_and_csv(analyst_client, framework):
    page = analyst_client.get(INDICATORS, {"page_size": 3, "page": 2}).json()
    assert [i["code"] for i in page["results"]] == ["1.4", "1.5", "1.6"]
    publish_methodology(indicator_weights={"3.2": 7})
    assert analyst_client.get(INDICATORS + "3.2/").json()["weight"] == 7
    response = analyst_client.get(INDICATORS, {"format": "csv", "factor": "RF1"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["code"] for r in rows][:2] == ["1.1", "1.2"]
    assert rows[0]["factor"] == "RF1"


def test_risk_factors_csv_writes_nested_indicators_as_json(analyst_client, framework):
    response = analyst_client.get(FACTORS, {"format": "csv", "group": "genocide"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["code"] for r in rows] == ["RF9", "RF10"]
    assert rows[1]["indicators"].startswith('[{"code": "10.1"')


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_weights_are_read_only(client_for, framework, method):
    client = client_for("administrator")
    for url in (FACTORS, FACTORS + "RF1/", INDICATORS, INDICATORS + "1.1/"):
        response = getattr(client, method)(url, {"weight": 5}, format="json")
        assert response.status_code == 405, url
        assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}
    assert client.get(FACTORS + "RF1/").json()["weight"] == 1.0

"""Conventions of every endpoint: throttling, bounded queries, CSV, error bodies, paging links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import ValidationError
from rest_framework.throttling import SimpleRateThrottle

from alerts.models import Alert, Subscription
from alerts.services import evaluate_red_flags, save_subscription
from countries.models import Country
from indicators.api_support import PaginatedCSVRenderer, api_exception_handler
from indicators.models import Observation
from indicators.services import record_observations
from tests.conftest import publish_methodology

from .conftest import TODAY, observation_rows

pytestmark = pytest.mark.django_db


# --- throttling ------------------------------------------------------------------------


@pytest.fixture
def low_rates(monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "3/min"})
    cache.clear()


def test_users_are_throttled_per_user(client_for, framework, low_rates):
    client = client_for("analyst")
    assert [client.get("/api/v1/risk-factors/").status_code for _ in range(3)] == [200] * 3
    response = client.get("/api/v1/risk-factors/")
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Request was throttled.")
    assert int(response["Retry-After"]) > 0
    # Another user has a budget of their own.
    assert client_for("focal_point").get("/api/v1/risk-factors/").status_code == 200


def test_anonymous_callers_and_token_guessers_are_throttled(api_client, framework, low_rates):
    assert [api_client.get("/api/v1/risk-factors/").status_code for _ in range(2)] == [401] * 2
    assert api_client.get("/api/v1/risk-factors/").status_code == 429
    api_client.credentials(HTTP_AUTHORIZATION="Token guess")
    assert api_client.get("/api/v1/risk-factors/").status_code == 429


def test_a_forged_forwarded_for_header_does_not_reset_the_count(api_client, framework, low_rates):
    for number in range(3):
        response = api_client.get("/api/v1/countries/", HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")
    assert response.status_code == 429


def test_users_without_a_role_are_throttled_too(client_for, framework, low_rates):
    client = client_for("no_role_user")
    codes = [client.get("/api/v1/risk-factors/").status_code for _ in range(4)]
    assert codes == [403, 403, 403, 429]


def test_rates_come_from_the_environment():
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"anon": "60/min", "user": "1200/min"}


# --- bounded queries -------------------------------------------------------------------


@pytest.fixture
def list_urls(scored, analyst) -> list[str]:
    # More runs and methodology versions than a page of 2 holds.
    publish_methodology(factor_weights={"RF3": 2.0}, today=TODAY)
    publish_methodology(factor_weights={"RF3": 3.0}, today=TODAY)
    Observation.objects.update(recorded_by=analyst)
    for region in ("Africa", "Asia", "Europe"):
        save_subscription(
            subscription=Subscription(user=analyst, regions=[region]),
            countries=Country.objects.filter(iso3__in=["SDN", "MMR"]),
        )
    # Three red-flag alerts, one acknowledged by the analyst (its user is read too).
    record_observations(
        rows=observation_rows([(c, "12.1", "2025-06-01", 1.0) for c in ("MMR", "UKR", "NOR")]),
        today=TODAY,
        recompute=False,
        evaluate_alerts=False,
    )
    evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True),
        now=datetime(2025, 6, 2, tzinfo=UTC),
    )
    Alert.objects.filter(country__iso3="MMR").update(acknowledged_by=analyst)
    return [
        "/api/v1/countries/",
        "/api/v1/countries/SDN/scores/",
        "/api/v1/rankings/",
        "/api/v1/risk-factors/",
        "/api/v1/indicators/",
        "/api/v1/observations/",
        "/api/v1/scoring-runs/",
        "/api/v1/methodology-versions/",
        "/api/v1/alerts/",
        "/api/v1/subscriptions/",
    ]


def _queries(client, url: str, **params) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, (url, response.content[:300])
    rows = len(response.json()["results"]) if params["format"] == "json" else 0
    return len(captured), rows


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_list_queries_do_not_grow_with_the_page(client_for, list_urls, fmt):
    client = client_for("analyst")
    for url in list_urls:
        small, small_rows = _queries(client, url, page_size=2, format=fmt)
        large, large_rows = _queries(client, url, page_size=50, format=fmt)
        assert small == large, url
        assert large <= 8, url
        if fmt == "json":
            assert small_rows == 2 < large_rows, url


# --- CSV -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "empty", "full"),
    [
        ("/api/v1/rankings/", {"region": "Atlantis"}, {}),
        ("/api/v1/countries/", {"search": "Atlantis"}, {"search": "Sudan"}),
        ("/api/v1/countries/SDN/scores/", {"to": "2000-01-31"}, {}),
        ("/api/v1/observations/", {"country": "FRA"}, {"country": "SDN"}),
    ],
)
def test_csv_of_an_empty_page_has_the_columns_of_a_full_one(
    analyst_client, scored, url, empty, full
):
    def header(params):
        response = analyst_client.get(url, {"format": "csv", **params})
        assert response.status_code == 200, response.content[:300]
        return response.content.decode().splitlines()[0], len(response.content.splitlines())

    empty_header, empty_lines = header(empty)
    full_header, full_lines = header(full)
    assert empty_header == full_header
    assert empty_lines == 1 < full_lines
    if url == "/api/v1/rankings/":
        assert full_header.startswith("rank,country.iso3,country.name,country.region,")


def test_csv_errors_are_a_row_too(api_client, countries):
    response = api_client.get("/api/v1/countries/", {"format": "csv"})
    assert response.status_code == 401
    assert response.content.decode().splitlines() == [
        "detail",
        "Authentication credentials were not provided.",
    ]


def test_csv_renderer_flattens_and_defuses_formulas():
    body = {
        "count": 2,
        "results": [
            {"a": 1, "b": {"c": None, "d": "-x"}, "e": ["X", "Y"]},
            {"a": 2, "f": "@SUM(A1)"},
        ],
    }
    text = PaginatedCSVRenderer().render(body).decode()
    assert text.splitlines() == [
        "a,b.c,b.d,e,f",
        '1,,\'-x,"[""X"", ""Y""]",',
        "2,,,,'@SUM(A1)",
    ]


def test_unknown_formats_are_404(analyst_client, countries):
    response = analyst_client.get("/api/v1/countries/", {"format": "xml"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- errors and paging links -----------------------------------------------------------


def test_a_bare_validation_message_gets_a_key():
    response = api_exception_handler(ValidationError("Nope."), {})
    assert response.data == {"non_field_errors": ["Nope."]}


def test_link_header_names_every_page(analyst_client, countries):
    response = analyst_client.get("/api/v1/countries/", {"page_size": 10, "page": 2})
    links = response["Link"]
    assert '<http://testserver/api/v1/countries/?page=3&page_size=10>; rel="next"' in links
    assert '<http://testserver/api/v1/countries/?page=1&page_size=10>; rel="prev"' in links


def test_errors_of_list_items_are_flat_messages_that_say_which_item(client_for, countries):
    response = client_for("focal_point").post(
        "/api/v1/subscriptions/", {"regions": ["Africa", ""]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"regions": ["item 2: This field may not be blank."]}


def test_nested_validation_errors_flatten_into_strings():
    nested = ValidationError({"rows": [{}, {"url": ["Bad."]}], "tags": {"0": ["Blank."]}})
    response = api_exception_handler(nested, {})
    assert response.data == {"rows": ["item 2, url: Bad."], "tags": ["item 1: Blank."]}


# --- 404 and 405 -----------------------------------------------------------------------


@override_settings(DEBUG=False)
@pytest.mark.parametrize(
    "path", ["/api/v1/countries/12/", "/api/v1/subscriptions/abc/", "/api/v1/nothing/", "/api/"]
)
@pytest.mark.parametrize("signed_in", [False, True])
def test_unmatched_api_paths_are_json_404s(client_for, api_client, path, signed_in):
    client = client_for("analyst") if signed_in else api_client
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@override_settings(DEBUG=False)
def test_unmatched_pages_outside_the_api_are_still_html(client, analyst):
    client.force_login(analyst)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("role", ["analyst", "focal_point", "administrator"])
def test_a_method_a_view_does_not_allow_is_405_for_every_role(client_for, countries, role):
    client = client_for(role)
    assert client.put("/api/v1/subscriptions/1/", {}, format="json").status_code == 405
    assert client.delete("/api/v1/countries/SDN/").status_code == 405

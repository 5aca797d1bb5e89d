"""Fixtures for the REST API tests: scored data, token clients per role, no throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from indicators.models import ScoringRun
from indicators.services import record_observations
from tests.conftest import publish_methodology

# Scores run to the last complete month before TODAY (June 2025); observations are dated
# before it.
TODAY = date(2025, 7, 1)

# (country, indicator, date, value): Sudan and Myanmar high, Ukraine mixed, Norway low.
OBSERVATIONS = [
    ("SDN", "1.1", "2024-01-10", 1.0),
    ("SDN", "10.1", "2024-03-05", 2 / 3),
    ("SDN", "12.1", "2025-02-01", 1.0),
    ("MMR", "1.1", "2024-01-20", 2 / 3),
    ("MMR", "10.1", "2024-11-02", 1.0),
    ("UKR", "1.1", "2024-02-01", 1.0),
    ("UKR", "13.1", "2024-12-01", 1 / 3),
    ("NOR", "1.1", "2024-01-10", 0.0),
    ("NOR", "12.1", "2024-04-10", 0.0),
]


@pytest.fixture(autouse=True)
def _unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No throttling unless a test sets rates itself (DRF reads them once, at import)."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": None, "user": None})
    cache.clear()


def observation_rows(rows: list[tuple[str, str, str, float]]) -> list[dict[str, Any]]:
    return [
        {"country": c, "indicator": i, "observed_on": d, "value": v, "source": "test source"}
        for c, i, d, v in rows
    ]


@pytest.fixture
def scored(countries: None, framework: None) -> ScoringRun:
    """A few observations and one full scoring run over them.

    A handful of indicators covers little of the framework, so the coverage floor is off:
    the scores get real levels instead of "insufficient data".
    """
    record_observations(rows=observation_rows(OBSERVATIONS), today=TODAY, recompute=False)
    version = publish_methodology(thresholds={"min_coverage": 0.0}, today=TODAY)
    return ScoringRun.objects.get(methodology=version)


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous client."""
    return APIClient()


@pytest.fixture
def analyst_client(analyst: Any) -> APIClient:
    return token_client(analyst)


@pytest.fixture
def client_for(request: pytest.FixtureRequest) -> Callable[[str], APIClient]:
    """A token client for the user of the named fixture (analyst, focal_point, ...)."""

    def make(fixture: str) -> APIClient:
        return token_client(request.getfixturevalue(fixture))

    return make

"""Property-based tests of the whole API against its own live OpenAPI schema (schemathesis).

Every documented operation is called with generated input, valid and invalid, on loaded data
(countries, the framework, observations, a scoring run, red-flag alerts and a subscription of
the caller's). It runs twice: as an analyst (most writes refused) and as an administrator
(every write allowed). Path parameters are drawn half the time from the ids and codes of the
loaded data, so detail pages, alert actions and subscription changes reach real objects
rather than only 404. Each response must not be a server error, must have a documented status
code and content type, and must match the documented schema. Runs in process against the
WSGI application.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import Alert, Subscription
from alerts.services import evaluate_scoring_run, save_subscription
from countries.models import Country
from indicators.models import Observation, ScoringRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Uncompressed answers: the WSGI transport hands the checks the body as sent, and
# GZipMiddleware compresses for any client that accepts gzip.
PLAIN = {"Accept-Encoding": "identity"}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 renames the running test after each operation through the
    # ``_nodeid`` attribute, which pytest 9 no longer has; give it one to write to.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(params=["analyst", "administrator"])
def caller(request: pytest.FixtureRequest, scored: ScoringRun) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def real_path_values(scored: ScoringRun, caller: Any) -> dict[str, dict[str, Any]]:
    """Path parameters of loaded objects, by a regex on the operation's path."""
    subscription = save_subscription(
        subscription=Subscription(user=caller, regions=["Africa"], min_severity="info"),
        countries=Country.objects.filter(iso3__in=["SDN"]),
    )
    # Sudan's loaded assessment of 12.1 (2025-02-01) is a red flag for a day after it,
    # raised with the evaluation of the run that scored it.
    evaluate_scoring_run(run_id=scored.pk, now=datetime(2025, 2, 2, 12, tzinfo=UTC))
    alert = Alert.objects.filter(status=Alert.Status.OPEN).order_by("pk").first()
    assert alert is not None
    return {
        r"^/api/v1/countries/\{iso3\}/": {"iso3": "SDN"},
        r"^/api/v1/risk-factors/\{code\}/$": {"code": "RF10"},
        r"^/api/v1/indicators/\{code\}/$": {"code": "10.1"},
        r"^/api/v1/observations/\{id\}/$": {"id": Observation.objects.order_by("pk")[0].pk},
        r"^/api/v1/scoring-runs/\{id\}/$": {"id": scored.pk},
        r"^/api/v1/methodology-versions/\{number\}/$": {"number": scored.methodology.number},
        r"^/api/v1/alerts/\{id\}/": {"id": alert.pk},
        r"^/api/v1/subscriptions/\{id\}/$": {"id": subscription.pk},
    }


# As an administrator, each of these must answer 2xx at least once, or the run proved little.
MUST_SUCCEED = {
    "GET /api/v1/countries/{iso3}/",
    "GET /api/v1/risk-factors/{code}/",
    "GET /api/v1/indicators/{code}/",
    "GET /api/v1/observations/{id}/",
    "GET /api/v1/scoring-runs/{id}/",
    "GET /api/v1/methodology-versions/{number}/",
    "GET /api/v1/alerts/{id}/",
    "POST /api/v1/alerts/{id}/acknowledge/",  # the first action on the open alert
    "GET /api/v1/subscriptions/{id}/",
    "POST /api/v1/subscriptions/",
    "PATCH /api/v1/subscriptions/{id}/",
    "DELETE /api/v1/subscriptions/{id}/",
}


@pytest.fixture
def succeeded(request: pytest.FixtureRequest) -> Iterator[set[str]]:
    """Operations that answered 2xx; checked for the administrator once every one has run."""
    labels: set[str] = set()
    yield labels
    if request.node.callspec.params["caller"] == "administrator":
        assert labels >= MUST_SUCCEED, sorted(MUST_SUCCEED - labels)


@pytest.fixture
def token(caller: Any) -> str:
    return Token.objects.create(user=caller).key


@pytest.fixture
def api_schema(token: str, real_path_values: dict[str, dict[str, Any]]) -> Iterator[Any]:
    # Like Django's test client: keep the test's database connection (and its
    # transaction) open across requests instead of closing it after each one.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        loaded = schemathesis.openapi.from_wsgi(
            "/api/v1/schema/?format=json",
            WSGIHandler(),
            headers={"Authorization": f"Token {token}", **PLAIN},
        )

        def before_generate_path_parameters(context: Any, strategy: Any) -> Any:
            path = context.operation.path
            for pattern, values in real_path_values.items():
                if re.search(pattern, path):
                    return st.one_of(st.just(values), strategy)
            return strategy

        loaded.hook(before_generate_path_parameters)
        yield loaded
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_the_promises_of_its_schema(
    case: Any, token: str, succeeded: set[str]
) -> None:
    response = case.call_and_validate(
        headers={"Authorization": f"Token {token}", **PLAIN}, checks=CHECKS
    )
    if 200 <= response.status_code < 300:
        succeeded.add(case.operation.label)

"""Property-based tests of the whole API against its own live OpenAPI schema (schemathesis).

Every documented operation is called with generated input, valid and invalid, as an analyst
with a token, on loaded data (countries, the framework, observations, a scoring run). Each
response must not be a server error, must have a documented status code, and must match
the documented schema. Runs in process against the WSGI application.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 renames the running test after each operation through the
    # ``_nodeid`` attribute, which pytest 9 no longer has; give it one to write to.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def token(scored: Any, analyst: Any) -> str:
    return Token.objects.create(user=analyst).key


@pytest.fixture
def api_schema(token: str) -> Iterator[Any]:
    # Like Django's test client: keep the test's database connection (and its
    # transaction) open across requests instead of closing it after each one.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/v1/schema/?format=json",
            WSGIHandler(),
            headers={"Authorization": f"Token {token}"},
        )
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
def test_the_api_keeps_the_promises_of_its_schema(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

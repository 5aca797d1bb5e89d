"""Who may read the API: any of the three roles; 401 without credentials, 403 without a role."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from indicators.models import Observation

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(scored) -> list[str]:
    observation = Observation.objects.first()
    return [
        "/api/v1/countries/",
        "/api/v1/countries/SDN/",
        "/api/v1/countries/SDN/scores/",
        "/api/v1/rankings/",
        "/api/v1/risk-factors/",
        "/api/v1/risk-factors/RF1/",
        "/api/v1/indicators/",
        "/api/v1/indicators/1.1/",
        "/api/v1/observations/",
        f"/api/v1/observations/{observation.pk}/",
        "/api/v1/scoring-runs/",
        f"/api/v1/scoring-runs/{scored.pk}/",
        "/api/v1/methodology-versions/",
        f"/api/v1/methodology-versions/{scored.methodology.number}/",
        "/api/v1/schema/?format=json",
    ]


@pytest.mark.parametrize("fixture", ["analyst", "focal_point", "administrator"])
def test_every_role_reads_every_endpoint_with_a_token(client_for, urls, fixture):
    client = client_for(fixture)
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("fixture", ["analyst", "focal_point", "administrator"])
def test_every_role_reads_every_endpoint_in_a_browser_session(request, urls, fixture):
    client = APIClient()
    client.force_login(request.getfixturevalue(fixture))
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_a_user_without_a_role_gets_403(client_for, urls):
    client = client_for("no_role_user")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json() == {
            "detail": "You need the Analyst, Focal point or Administrator role to use the API."
        }


def test_an_anonymous_caller_gets_401_and_is_told_how_to_authenticate(api_client, urls):
    for url in urls:
        response = api_client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"
        assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_wrong_token_gets_401(api_client, urls):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get(urls[0])
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_an_inactive_users_token_stops_working(client_for, analyst, urls):
    client = client_for("analyst")
    analyst.is_active = False
    analyst.save()
    assert client.get(urls[0]).status_code == 401


def test_a_revoked_token_stops_working(client_for, analyst, urls):
    from indicators.services import revoke_api_token

    client = client_for("analyst")
    assert client.get(urls[0]).status_code == 200
    assert revoke_api_token(user=analyst) is True
    assert client.get(urls[0]).status_code == 401

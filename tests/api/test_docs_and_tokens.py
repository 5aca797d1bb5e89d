"""The OpenAPI schema and its docs page, the token page, and tokens in the admin."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

SCHEMA = "/api/v1/schema/"
DOCS = "/api/v1/docs/"
TOKEN_PAGE = "/accounts/token/"


# --- schema ----------------------------------------------------------------------------


def test_the_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(target), stdout=StringIO()
    )
    assert "/api/v1/countries/" in target.read_text()


def test_every_operation_is_described(analyst_client):
    response = analyst_client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = {
        (path, method): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert {path for path, _ in operations} == {
        "/api/v1/countries/",
        "/api/v1/countries/{iso3}/",
        "/api/v1/countries/{iso3}/scores/",
        "/api/v1/rankings/",
        "/api/v1/risk-factors/",
        "/api/v1/risk-factors/{code}/",
        "/api/v1/indicators/",
        "/api/v1/indicators/{code}/",
        "/api/v1/observations/",
        "/api/v1/observations/{id}/",
        "/api/v1/observations/batch/",
        "/api/v1/scoring-runs/",
        "/api/v1/scoring-runs/{id}/",
        "/api/v1/methodology-versions/",
        "/api/v1/methodology-versions/{number}/",
        "/api/v1/methodology-versions/{number}/backtest/",
        "/api/v1/alerts/",
        "/api/v1/alerts/{id}/",
        "/api/v1/alerts/{id}/acknowledge/",
        "/api/v1/alerts/{id}/resolve/",
        "/api/v1/alerts/{id}/dismiss/",
        "/api/v1/subscriptions/",
        "/api/v1/subscriptions/{id}/",
    }
    for key, operation in operations.items():
        assert operation.get("summary") or operation.get("description"), key
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (key, parameter["name"])
        for code, response in operation["responses"].items():
            json_body = response.get("content", {}).get("application/json")
            if code.startswith("2") and json_body is not None:
                assert json_body.get("examples"), (key, code)
        request_body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if request_body is not None:
            assert request_body.get("examples"), (key, "request")
        assert {"401", "403", "429"} <= set(operation["responses"]), key
        assert {"200", "201", "204"} & set(operation["responses"]), key
        assert operation["security"] == [{"tokenAuth": []}, {"cookieAuth": []}], key
    listing = operations[("/api/v1/observations/", "get")]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {"country", "indicator", "factor", "from", "to", "page", "page_size"}
    assert names >= {"ordering", "format"}
    batch = operations[("/api/v1/observations/batch/", "post")]
    assert batch["requestBody"]["content"]["application/json"]["examples"]
    assert "400" in batch["responses"]


def test_the_schema_needs_a_role(api_client, client_for):
    assert api_client.get(SCHEMA).status_code == 401
    assert client_for("no_role_user").get(SCHEMA).status_code == 403


# --- docs page -------------------------------------------------------------------------


def test_the_docs_page_loads_nothing_from_another_host(client, analyst):
    client.force_login(analyst)
    response = client.get(DOCS)
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html
    external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.IGNORECASE)
    assert external == []
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
    # ... and what it loads is in our static files (from the sidecar package).
    bundle = re.search(r'src="/static/([^"]*swagger-ui-bundle\.js)"', html)[1]
    assert finders.find(bundle)


def test_the_docs_page_sends_signed_out_browsers_to_the_login_page(client):
    response = client.get(DOCS)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=/api/v1/docs/")


def test_the_docs_page_needs_a_role(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(DOCS).status_code == 403


# --- token page ------------------------------------------------------------------------


def test_the_token_page_needs_a_signed_in_user_with_a_role(client, no_role_user):
    response = client.get(TOKEN_PAGE)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    client.force_login(no_role_user)
    assert client.get(TOKEN_PAGE).status_code == 403


def test_create_use_regenerate_and_revoke_a_token(client, analyst, countries):
    client.force_login(analyst)
    page = client.get(TOKEN_PAGE).content.decode()
    assert "You have no token." in page
    assert "Create token" in page

    created = client.post(TOKEN_PAGE, {"action": "create"})
    assert created.status_code == 200
    key = Token.objects.get(user=analyst).key
    assert key in created.content.decode()  # shown once ...
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/countries/").status_code == 200

    later = client.get(TOKEN_PAGE).content.decode()
    assert key not in later  # ... and never again
    assert "You have a token, created" in later
    assert "Regenerate token" in later

    client.post(TOKEN_PAGE, {"action": "create"})
    new_key = Token.objects.get(user=analyst).key
    assert new_key != key
    assert api.get("/api/v1/countries/").status_code == 401

    revoked = client.post(TOKEN_PAGE, {"action": "revoke"}, follow=True)
    assert revoked.redirect_chain == [(TOKEN_PAGE, 302)]
    assert "Your API token was revoked." in revoked.content.decode()
    assert not Token.objects.filter(user=analyst).exists()
    revoked_api = Client(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert revoked_api.get("/api/v1/countries/").status_code == 401


def test_the_token_page_forms_need_the_csrf_token(analyst):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(analyst)
    page = browser.get(TOKEN_PAGE).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    assert browser.post(TOKEN_PAGE, {"action": "create"}).status_code == 403
    assert not Token.objects.filter(user=analyst).exists()


def test_an_unknown_action_changes_nothing(client, analyst):
    client.force_login(analyst)
    assert client.post(TOKEN_PAGE, {"action": "steal"}).status_code == 400
    assert not Token.objects.exists()


def test_the_navigation_links_to_the_token_page(client, analyst):
    client.force_login(analyst)
    assert f'href="{TOKEN_PAGE}"' in client.get(TOKEN_PAGE).content.decode()


# --- admin -----------------------------------------------------------------------------


def test_administrators_may_manage_tokens_in_the_admin(client, administrator, analyst):
    codenames = set(
        Permission.objects.filter(
            group__name="Administrator", content_type__app_label="authtoken"
        ).values_list("codename", flat=True)
    )
    assert codenames == {"view_tokenproxy", "add_tokenproxy", "delete_tokenproxy"}
    client.force_login(administrator)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": analyst.pk})
    assert response.status_code == 302
    assert Token.objects.filter(user=analyst).exists()
    response = client.post(f"/admin/authtoken/tokenproxy/{analyst.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=analyst).exists()


def test_other_roles_cannot_see_tokens_in_the_admin(client, analyst):
    analyst.is_staff = True
    analyst.save()
    client.force_login(analyst)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403


def test_the_admin_shows_tokens_by_a_key_prefix_only(client, administrator, analyst):
    key = Token.objects.create(user=analyst).key
    client.force_login(administrator)
    pages = [
        "/admin/authtoken/tokenproxy/",
        f"/admin/authtoken/tokenproxy/{analyst.pk}/change/",
        f"/admin/authtoken/tokenproxy/{analyst.pk}/delete/",
        f"/admin/authtoken/tokenproxy/{analyst.pk}/history/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert key not in html, url
        assert key[:8] not in html, url
    assert f"{key[:4]}…" in client.get(pages[0]).content.decode()


def test_an_administrator_sees_a_new_key_once_and_the_history_never(client, administrator, analyst):
    client.force_login(administrator)
    created = client.post("/admin/authtoken/tokenproxy/add/", {"user": analyst.pk}, follow=True)
    key = Token.objects.get(user=analyst).key
    assert f"The new API key for {analyst} is {key}." in created.content.decode()
    assert key not in client.get("/admin/authtoken/tokenproxy/").content.decode()
    assert key not in client.get("/admin/").content.decode()  # recent actions
    revoked = client.post(
        f"/admin/authtoken/tokenproxy/{analyst.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert key not in revoked.content.decode()
    assert not Token.objects.filter(user=analyst).exists()
    assert not [r for r in LogEntry.objects.values_list("object_repr", flat=True) if key[:8] in r]


def test_a_token_cannot_be_moved_to_another_user(client, analyst, focal_point, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "root@example.org", "pw-123456")
    Token.objects.create(user=analyst)
    client.force_login(superuser)
    client.post(f"/admin/authtoken/tokenproxy/{analyst.pk}/change/", {"user": focal_point.pk})
    assert Token.objects.get().user == analyst

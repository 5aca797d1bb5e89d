"""Every URL of the project refuses visitors without a role, found by walking the URLconf.

A page added later without a role check fails here without anyone listing it: each
pattern is resolved with real path values (a country, a factor, an alert, ...), then
requested signed out (login page, or 401 for the API) and as a signed-in user who
holds no role (403). Only the pages a person needs to sign in or out, change a
password, or acknowledge an alert from an e-mail's signed link are allowed without
a role; the admin has its own gate (staff accounts), checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from alerts.models import Alert, Subscription
from countries.models import Country
from indicators.models import MethodologyVersion, Observation, ScoringRun
from indicators.services import record_observations, refresh_scores

pytestmark = pytest.mark.usefixtures("countries", "framework")

# Allowed without a role (a signed-out visitor may still be sent to log in).
WITHOUT_ROLE = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "alerts:acknowledge_link",
}
# The admin's own gate: non-staff users, with or without a role, go to its login page.
ADMIN_LOGIN = "/admin/login/"
# The API's documentation is a page for people: signed out, it sends them to log in.
API_PAGES = {"api:docs"}
ADMIN_OPEN = {"admin:login", "admin:logout", "admin:jsi18n"}


def walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(full regex or route, namespaced name) of every pattern."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace or "") if part)
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name or prefix + str(pattern.pattern)


def fill(route: str, values: dict[str, str]) -> str:
    """A concrete path for a route or regex, with the named parameters filled in."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], path)
    path = path.replace("^", "").replace("$", "")
    assert not re.search(r"[<>()\\?*]", path), f"could not fill {route!r}: {path!r}"
    return "/" + path


@pytest.fixture
def path_values(no_role_user: Any) -> dict[str, str]:
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "1.1",
                "observed_on": "2024-01-15",
                "value": 1.0,
                "source": "Test assessment",
            }
        ],
        recompute=False,
    )
    refresh_scores()
    sudan = Country.objects.get(iso3="SDN")
    alert = Alert.objects.create(
        country=sudan,
        rule="surge",
        crime_type="overall",
        severity="warning",
        summary="Test surge",
        period="2024-01-31",
        opened_at=timezone.now(),
    )
    subscription = Subscription.objects.create(user=no_role_user)
    observation = Observation.objects.get()
    return {
        "iso3": "SDN",
        "code": "RF1",
        "pk": str(alert.pk),
        "action": "acknowledge",
        "token": "not-a-valid-token",
        "number": str(MethodologyVersion.objects.get().number),
        "object_id": str(sudan.pk),
        "content_type_id": "1",
        "id": str(no_role_user.pk),
        "app_label": "countries",
        "url": "no-such-page/",
        "_observation": str(observation.pk),
        "_run": str(ScoringRun.objects.get().pk),
        "_subscription": str(subscription.pk),
    }


# Named patterns whose <pk> or <code> is another kind of object.
SPECIAL = {
    "api:observation-detail": {"pk": "_observation"},
    "api:scoringrun-detail": {"pk": "_run"},
    "alerts_api:subscription-detail": {"pk": "_subscription"},
    "alerts:subscription_edit": {"pk": "_subscription"},
    "api:indicator-detail": {"code": "=1.1"},
}


def concrete_paths(values: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for route, name in walk(get_resolver().url_patterns):
        own = dict(values)
        for key, source in SPECIAL.get(name, {}).items():
            own[key] = source[1:] if source.startswith("=") else values[source]
        found.append((name, fill(route, own)))
    return found


def request(client: Any, path: str) -> Any:
    """GET, or POST for the views that only take POST (their GET says 405)."""
    response = client.get(path)
    if response.status_code == 405:
        response = client.post(path)
    return response


def test_every_url_refuses_anonymous_visitors_and_users_without_a_role(
    client, no_role_user, path_values
):
    paths = concrete_paths(path_values)
    assert len(paths) > 40, "the walk found too few URLs to be the whole project"
    problems = []
    for name, path in paths:
        anonymous = request(client, path)
        if name in WITHOUT_ROLE or name in ADMIN_OPEN:
            continue
        if path.startswith("/api/") and name not in API_PAGES:
            if anonymous.status_code != 401:
                problems.append(f"{name} {path}: signed out got {anonymous.status_code}")
        elif path.startswith("/admin/"):
            if not (anonymous.status_code == 302 and anonymous.url.startswith(ADMIN_LOGIN)):
                problems.append(f"{name} {path}: signed out got {anonymous.status_code}")
        elif not (anonymous.status_code == 302 and anonymous.url.startswith("/accounts/login/")):
            problems.append(f"{name} {path}: signed out got {anonymous.status_code}")

    client.force_login(no_role_user)
    for name, path in paths:
        if name in WITHOUT_ROLE or name in ADMIN_OPEN:
            continue
        response = request(client, path)
        if path.startswith("/admin/"):
            if not (response.status_code == 302 and response.url.startswith(ADMIN_LOGIN)):
                problems.append(f"{name} {path}: no role got {response.status_code}")
        elif response.status_code != 403:
            problems.append(f"{name} {path}: no role got {response.status_code}")
    assert problems == []


def test_the_refusal_page_says_why_and_keeps_the_navigation(client, no_role_user):
    client.force_login(no_role_user)
    response = client.get("/")
    assert response.status_code == 403
    content = response.content.decode()
    assert "You do not have access to this page" in content
    assert "no role" in content
    assert 'class="site-header"' in content
    assert "Log out" in content


def test_an_unknown_page_is_a_404_with_the_navigation(client, analyst):
    client.force_login(analyst)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    content = response.content.decode()
    assert "Page not found" in content
    assert 'href="/"' in content
    assert "Overview" in content  # the main navigation, for a signed-in user

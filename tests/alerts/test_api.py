"""REST API for alerts and the caller's subscriptions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from alerts.models import Alert, Subscription
from countries.models import Country
from indicators.roles import Role
from tests.alerts.conftest import red_flags, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.usefixtures("scoring")
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)


def api_as(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}"
        )
    return client


def test_anonymous_callers_get_401_and_roleless_403(alert, no_role_user):
    assert api_as().get("/api/v1/alerts/").status_code == 401
    assert api_as(no_role_user).get("/api/v1/alerts/").status_code == 403


@pytest.mark.parametrize("role", ["analyst", "focal_point", "administrator"])
def test_every_role_lists_and_reads_alerts(request, role, alert):
    client = api_as(request.getfixturevalue(role))
    listed = client.get("/api/v1/alerts/").json()
    assert listed["count"] == 1
    item = listed["results"][0]
    assert (item["country"], item["rule"], item["severity"], item["status"]) == (
        "MMR",
        "red_flag",
        "critical",
        "open",
    )
    assert client.get(f"/api/v1/alerts/{alert.pk}/").json()["summary"] == alert.summary
    assert client.get("/api/v1/alerts/999999/").status_code == 404


def test_alert_filters(focal_point, analyst):
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR", "SDN", "NOR")
    Alert.objects.filter(country__iso3="NOR").update(status="resolved")
    client = api_as(focal_point)

    def countries(**params):
        return sorted(a["country"] for a in client.get("/api/v1/alerts/", params).json()["results"])

    assert countries() == ["MMR", "NOR", "SDN"]
    assert countries(status="active") == ["MMR", "SDN"]
    assert countries(status="resolved") == ["NOR"]
    assert countries(region="Africa") == ["SDN"]
    assert countries(region="South-eastern Asia") == ["MMR"]
    assert countries(country="sdn") == ["SDN"]
    assert countries(mine="true") == ["MMR"]
    assert countries(severity="info") == []
    assert client.get("/api/v1/alerts/", {"status": "bogus"}).status_code == 400


def test_alert_list_pages_and_exports_csv(analyst):
    red_flags("MMR", "SDN", "NOR")
    client = api_as(analyst)
    page = client.get("/api/v1/alerts/", {"page_size": 2}).json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert page["next"]
    response = client.get("/api/v1/alerts/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(r["country"] for r in rows) == ["MMR", "NOR", "SDN"]


def test_alert_list_queries_do_not_grow_with_page_size(analyst, django_assert_num_queries):
    red_flags("MMR", "SDN", "NOR", "SYR", "ETH")
    client = api_as(analyst)
    client.get("/api/v1/alerts/", {"page_size": 1})  # warm the token and role caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/alerts/", {"page_size": 1})
    with django_assert_num_queries(len(small.captured_queries)):
        client.get("/api/v1/alerts/", {"page_size": 50})


def test_a_recipient_acknowledges_then_resolves(alert, focal_point):
    client = api_as(focal_point)
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["acknowledged_by"]) == (
        "acknowledged",
        focal_point.username,
    )
    again = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert again.status_code == 409
    assert "Only an open alert" in again.json()["detail"]
    resolved = client.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"note": "Envoy"}, format="json")
    assert (resolved.json()["status"], resolved.json()["resolution_note"]) == ("resolved", "Envoy")


def test_only_recipients_and_administrators_act(alert, analyst, administrator):
    assert api_as(analyst).post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert api_as().post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 401
    assert Alert.objects.get().status == "open"
    dismissed = api_as(administrator).post(
        f"/api/v1/alerts/{alert.pk}/dismiss/", {"reason": "Data error"}, format="json"
    )
    assert dismissed.status_code == 200
    assert dismissed.json()["dismissal_reason"] == "Data error"


def test_a_dismissal_without_reason_is_a_field_error(alert, administrator):
    response = api_as(administrator).post(f"/api/v1/alerts/{alert.pk}/dismiss/", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    blank = api_as(administrator).post(
        f"/api/v1/alerts/{alert.pk}/dismiss/", {"reason": "   "}, format="json"
    )
    assert blank.status_code == 400
    assert Alert.objects.get().status == "open"


def test_focal_points_manage_only_their_own_subscriptions(focal_point, administrator):
    theirs = subscribe(administrator, all_countries=True)
    client = api_as(focal_point)
    created = client.post(
        "/api/v1/subscriptions/",
        {
            "regions": ["Africa"],
            "countries": ["MMR"],
            "min_severity": "critical",
            "webhook_url": "https://chat.example.org/hook",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["regions"], body["countries"], body["min_severity"]) == (
        ["Africa"],
        ["MMR"],
        "critical",
    )
    assert len(body["webhook_secret"]) == 64
    listed = client.get("/api/v1/subscriptions/").json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]
    assert client.get(f"/api/v1/subscriptions/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/v1/subscriptions/{theirs.pk}/").status_code == 404
    patched = client.patch(
        f"/api/v1/subscriptions/{body['id']}/", {"delivery": "digest"}, format="json"
    )
    assert patched.json()["delivery"] == "digest"
    assert patched.json()["countries"] == ["MMR"]
    assert client.delete(f"/api/v1/subscriptions/{body['id']}/").status_code == 204
    assert list(Subscription.objects.values_list("pk", flat=True)) == [theirs.pk]


def test_bad_subscriptions_are_refused_with_field_errors(focal_point, analyst):
    client = api_as(focal_point)
    empty = client.post("/api/v1/subscriptions/", {"min_severity": "info"}, format="json")
    assert empty.status_code == 400
    assert "Choose countries, regions or all countries." in empty.json()["non_field_errors"]
    bad = client.post(
        "/api/v1/subscriptions/", {"regions": ["Atlantis"], "countries": ["XXX"]}, format="json"
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"regions", "countries"}
    assert not Subscription.objects.exists()
    refused = api_as(analyst).post("/api/v1/subscriptions/", {"all_countries": True}, format="json")
    assert refused.status_code == 403


# --- alert filters and ordering ----------------------------------------------------------


def other_alert(country: str, *, rule: str, crime_type: str, severity: str) -> Alert:
    return Alert.objects.create(
        country=Country.objects.get(iso3=country),
        rule=rule,
        crime_type=crime_type,
        severity=severity,
        summary=f"{rule} in {country}",
        period="2024-05-31",
        opened_at=NOW,
    )


@pytest.fixture
def three_rules(analyst):
    red_flags("MMR")  # red flag, crimes against humanity (RF12), critical
    other_alert("SDN", rule="surge", crime_type="overall", severity="warning")
    other_alert("NOR", rule="level_crossing", crime_type="genocide", severity="info")


def listed(client, **params) -> list[str]:
    response = client.get("/api/v1/alerts/", params)
    assert response.status_code == 200, response.json()
    return [a["country"] for a in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"rule": "red_flag"}, ["MMR"]),
        ({"rule": "surge"}, ["SDN"]),
        ({"rule": "level_crossing"}, ["NOR"]),
        ({"crime_type": "crimes_against_humanity"}, ["MMR"]),
        ({"crime_type": "overall"}, ["SDN"]),
        ({"crime_type": "genocide"}, ["NOR"]),
        ({"severity": "critical"}, ["MMR"]),
        ({"severity": "warning"}, ["SDN"]),
        ({"severity": "info"}, ["NOR"]),
        ({"region": "africa"}, ["SDN"]),
        ({"region": "NORTHERN EUROPE"}, ["NOR"]),
        ({"rule": "surge", "severity": "critical"}, []),
    ],
)
def test_alert_filters_on_rule_crime_type_severity_and_region(
    analyst, three_rules, params, expected
):
    assert listed(api_as(analyst), **params) == expected


def test_alerts_order_by_severity_rank_not_by_name(analyst, three_rules):
    client = api_as(analyst)
    assert listed(client, ordering="severity") == ["NOR", "SDN", "MMR"]  # info, warning, critical
    assert listed(client, ordering="-severity") == ["MMR", "SDN", "NOR"]


@pytest.mark.parametrize("params", [{"rule": "bogus"}, {"crime_type": "x"}, {"severity": "high"}])
def test_unknown_filter_values_are_field_errors(analyst, params):
    response = api_as(analyst).get("/api/v1/alerts/", params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


# --- alert actions: who may act --------------------------------------------------------


ACTIONS = [("acknowledge", {}), ("resolve", {"note": "Done"}), ("dismiss", {"reason": "Noise"})]


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_a_focal_point_who_is_not_a_recipient_cannot_act(alert, action, body):
    outsider = make_user("fred", Role.FOCAL_POINT)
    subscribe(outsider, countries=("SDN",))  # covers another country
    response = api_as(outsider).post(f"/api/v1/alerts/{alert.pk}/{action}/", body, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only the alert's recipients and administrators can do this."
    }
    assert Alert.objects.get(pk=alert.pk).status == "open"


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_anonymous_and_roleless_callers_cannot_act(alert, no_role_user, action, body):
    url = f"/api/v1/alerts/{alert.pk}/{action}/"
    assert api_as().post(url, body, format="json").status_code == 401
    assert api_as(no_role_user).post(url, body, format="json").status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == "open"


@pytest.mark.parametrize(("action", "body"), ACTIONS)
def test_acting_on_an_unknown_alert_is_404(administrator, action, body):
    response = api_as(administrator).post(f"/api/v1/alerts/999999/{action}/", body, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No Alert matches the given query."}


# --- subscriptions: paging, CSV, access ------------------------------------------------


def test_subscriptions_page_and_export_csv(focal_point):
    for region in ("Africa", "Europe", "Asia"):
        subscribe(focal_point, regions=(region,), countries=("SDN",))
    client = api_as(focal_point)
    page = client.get("/api/v1/subscriptions/", {"page_size": 2})
    assert (page.json()["count"], len(page.json()["results"])) == (3, 2)
    assert page["X-Total-Count"] == "3"
    rest = client.get(page.json()["next"]).json()
    assert [s["regions"] for s in rest["results"]] == [["Asia"]]
    response = client.get("/api/v1/subscriptions/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["regions"], r["countries"]) for r in rows] == [
        ('["Africa"]', '["SDN"]'),
        ('["Europe"]', '["SDN"]'),
        ('["Asia"]', '["SDN"]'),
    ]


def test_subscriptions_need_a_signed_in_caller_with_a_role(focal_point, no_role_user):
    mine = subscribe(focal_point, all_countries=True)
    for url in ("/api/v1/subscriptions/", f"/api/v1/subscriptions/{mine.pk}/"):
        assert api_as().get(url).status_code == 401
        assert api_as(no_role_user).get(url).status_code == 403
    assert api_as().post("/api/v1/subscriptions/", {"all_countries": True}).status_code == 401
    refused = api_as(no_role_user).post(
        "/api/v1/subscriptions/", {"all_countries": True}, format="json"
    )
    assert refused.status_code == 403
    assert list(Subscription.objects.all()) == [mine]


def test_another_users_subscription_cannot_be_changed_or_deleted(focal_point, administrator):
    theirs = subscribe(administrator, regions=("Africa",), min_severity="critical")
    client = api_as(focal_point)
    url = f"/api/v1/subscriptions/{theirs.pk}/"
    patched = client.patch(url, {"min_severity": "info", "regions": ["Asia"]}, format="json")
    assert patched.status_code == 404
    assert client.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.min_severity, theirs.regions, theirs.user) == (
        "critical",
        ["Africa"],
        administrator,
    )


def test_an_analyst_may_read_but_not_change_their_subscription(analyst):
    mine = subscribe(analyst, regions=("Africa",))
    client = api_as(analyst)
    url = f"/api/v1/subscriptions/{mine.pk}/"
    assert client.get(url).json()["regions"] == ["Africa"]
    assert client.patch(url, {"regions": ["Asia"]}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    mine.refresh_from_db()
    assert mine.regions == ["Africa"]

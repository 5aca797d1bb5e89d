"""Alert pages: inbox, detail with history and delivery log, actions, links, subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from alerts.models import Alert, Notification, Subscription
from alerts.transports import acknowledgement_token
from countries.models import Country
from tests.alerts.conftest import red_flags, subscribe

pytestmark = pytest.mark.usefixtures("scoring")
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize("role", ["analyst", "focal_point", "administrator"])
def test_every_role_sees_the_inbox_and_an_alert(client, request, role, alert):
    client.force_login(request.getfixturevalue(role))
    inbox = client.get(reverse("alerts:inbox"))
    assert inbox.status_code == 200
    assert alert.summary in inbox.content.decode()
    detail = client.get(reverse("alerts:detail", args=[alert.pk]))
    assert detail.status_code == 200
    assert "Delivery log" in detail.content.decode()


def test_anonymous_and_roleless_users_see_no_alerts(client, alert, no_role_user):
    response = client.get(reverse("alerts:inbox"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    client.force_login(no_role_user)
    assert client.get(reverse("alerts:detail", args=[alert.pk])).status_code == 403


def test_inbox_filters(client, analyst, focal_point):
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR", "SDN", "NOR")
    client.force_login(focal_point)
    text = client.get(reverse("alerts:inbox"), {"region": "Africa"}).content.decode()
    assert "Sudan" in text
    assert "Myanmar" not in text
    mine = client.get(reverse("alerts:inbox"), {"mine": "on", "status": "active"})
    assert "Myanmar" in mine.content.decode()
    assert "Sudan" not in mine.content.decode()
    resolved = client.get(reverse("alerts:inbox"), {"status": "resolved"}).content.decode()
    assert "No alerts match" in resolved


def test_inbox_queries_do_not_grow_with_alerts(client, analyst, django_assert_max_num_queries):
    red_flags("MMR")
    client.force_login(analyst)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("alerts:inbox"))
    red_flags("SDN", "NOR", "SYR", "ETH", "UKR", "YEM")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("alerts:inbox"))


def test_detail_queries_are_bounded(client, administrator, alert, django_assert_max_num_queries):
    client.force_login(administrator)
    with django_assert_max_num_queries(16):
        client.get(reverse("alerts:detail", args=[alert.pk]))


def test_a_recipient_acknowledges_and_resolves_from_the_page(client, focal_point, alert):
    client.force_login(focal_point)
    client.post(reverse("alerts:action", args=[alert.pk, "acknowledge"]))
    client.post(reverse("alerts:action", args=[alert.pk, "resolve"]), {"note": "Envoy sent"})
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_note) == ("resolved", "Envoy sent")
    page = client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    assert "Envoy sent" in page
    assert "Acknowledged" in page


def test_someone_else_cannot_act_on_the_alert(client, analyst, alert):
    client.force_login(analyst)
    response = client.post(reverse("alerts:action", args=[alert.pk, "acknowledge"]))
    assert response.status_code == 403
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "dismiss"]), {"reason": "noise"}
    )
    assert response.status_code == 403
    assert Alert.objects.get().status == "open"
    page = client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    assert "Only the alert's recipients and administrators" in page


def test_a_dismissal_without_reason_is_refused_with_a_message(client, administrator, alert):
    client.force_login(administrator)
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "dismiss"]), {"reason": ""}, follow=True
    )
    assert "A dismissal needs a reason" in response.content.decode()
    assert Alert.objects.get().status == "open"


def test_anyone_with_a_role_adds_notes(client, analyst, alert):
    client.force_login(analyst)
    client.post(reverse("alerts:action", args=[alert.pk, "note"]), {"text": "Seen in news"})
    assert alert.events.filter(kind="note", message="Seen in news", actor=analyst).exists()


def test_the_email_link_shows_the_alert_and_confirms_before_acknowledging(client, alert):
    token = acknowledgement_token(Notification.objects.get(alert=alert))
    url = reverse("alerts:acknowledge_link", args=[token])
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    # Which alert, before anything is done: the country, what happened, its status.
    assert "Myanmar" in text
    assert alert.summary in text
    assert "Acknowledge this alert</button>" in text
    assert Alert.objects.get().status == "open"
    done = client.post(url)
    assert done.status_code == 200
    assert alert.summary in done.content.decode()
    assert Alert.objects.get().status == "acknowledged"
    assert client.post(url).status_code == 400
    again = client.get(url).content.decode()
    assert "already been used" in again
    bad = client.post(reverse("alerts:acknowledge_link", args=["forged-token"]))
    assert bad.status_code == 400
    assert b"not valid" in bad.content
    assert client.get(reverse("alerts:acknowledge_link", args=["forged-token"])).status_code == 400


def test_the_inbox_groups_alerts_by_country_the_most_urgent_first(client, focal_point):
    subscribe(focal_point, all_countries=True)
    red_flags("NOR", "MMR", "SDN")
    Alert.objects.filter(country__iso3="NOR").update(severity="warning")
    # Sudan: a second, more recent alert; Myanmar's is older.
    Alert.objects.filter(country__iso3="MMR").update(opened_at=datetime(2024, 6, 1, tzinfo=UTC))
    client.force_login(focal_point)
    page = client.get(reverse("alerts:inbox")).content.decode()
    order = [page.index(f'id="country-{iso3}"') for iso3 in ("SDN", "MMR", "NOR")]
    assert order == sorted(order)
    assert "3 alerts in 3 countries" in page
    assert 'name="country" value="SDN"' in page  # acknowledge a whole country


def test_bulk_acknowledgement_from_the_inbox(client, focal_point, analyst):
    subscribe(focal_point, all_countries=True)
    red_flags("NOR", "MMR", "SDN")
    chosen = list(
        Alert.objects.filter(country__iso3__in=["NOR", "MMR"]).values_list("pk", flat=True)
    )
    client.force_login(analyst)
    refused = client.post(reverse("alerts:acknowledge_many"), {"alert": chosen}, follow=True)
    assert "Nothing was acknowledged" in refused.content.decode()
    client.force_login(focal_point)
    back = reverse("alerts:inbox") + "?status=active"
    response = client.post(reverse("alerts:acknowledge_many"), {"alert": chosen, "next": back})
    assert response.url == back
    statuses = dict(Alert.objects.values_list("country__iso3", "status"))
    assert statuses == {"NOR": "acknowledged", "MMR": "acknowledged", "SDN": "open"}
    client.post(reverse("alerts:acknowledge_many"), {"country": "SDN"})
    assert Alert.objects.get(country__iso3="SDN").status == "acknowledged"


def test_the_alert_page_names_indicators_and_gives_assessments_on_their_scale(
    client, analyst, alert
):
    client.force_login(analyst)
    page = client.get(reverse("alerts:detail", args=[alert.pk])).content.decode()
    assert "12.1 Documents" in page
    assert "high (3 of 3)" in page
    assert "1.00" not in page


def test_the_overview_shows_the_most_urgent_countries_and_never_hides_a_critical_one(
    client, analyst
):
    red_flags(*(["NOR", "SDN", "MMR", "SYR", "ETH", "UKR", "YEM", "SOM", "KEN", "COD"]))
    Alert.objects.exclude(country__iso3="COD").update(severity="warning")
    Alert.objects.filter(country__iso3="COD").update(opened_at=datetime(2020, 1, 1, tzinfo=UTC))
    client.force_login(analyst)
    page = client.get(reverse("overview")).content.decode()
    section = page[page.index('id="open-alerts-title"') :]
    # The oldest alert is the only critical one: it comes first, not last or left out.
    congo = Country.objects.get(iso3="COD").name
    assert section.index(congo) < section.index("Norway")
    assert "2 more countries with open alerts" in section


def test_focal_points_manage_their_own_subscriptions(client, focal_point):
    client.force_login(focal_point)
    assert client.get(reverse("alerts:subscriptions")).status_code == 200
    response = client.post(
        reverse("alerts:subscription_new"),
        {
            "regions": ["Africa"],
            "min_severity": "warning",
            "delivery": "immediate",
            "webhook_url": "https://chat.example.org/hook",
            "weekly_summary": "on",
            "active": "on",
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get(user=focal_point)
    assert subscription.regions == ["Africa"]
    assert len(subscription.webhook_secret) == 64
    page = client.get(reverse("alerts:subscriptions")).content.decode()
    assert "Africa" in page
    assert subscription.webhook_secret in page


def test_an_empty_subscription_is_refused(client, focal_point):
    client.force_login(focal_point)
    response = client.post(
        reverse("alerts:subscription_new"), {"min_severity": "warning", "delivery": "immediate"}
    )
    assert response.status_code == 400
    assert "Choose countries, regions or all countries." in response.content.decode()
    assert not Subscription.objects.exists()


def test_nobody_edits_another_users_subscription(client, focal_point, administrator):
    theirs = subscribe(administrator, all_countries=True)
    client.force_login(focal_point)
    assert client.get(reverse("alerts:subscription_edit", args=[theirs.pk])).status_code == 404
    response = client.post(reverse("alerts:subscription_edit", args=[theirs.pk]), {"delete": "1"})
    assert response.status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk).exists()


def test_analysts_have_no_subscription_pages(client, analyst):
    client.force_login(analyst)
    assert client.get(reverse("alerts:subscriptions")).status_code == 403


def inbox_actions(text: str, alert: Alert) -> dict[str, bool]:
    return {
        action: reverse("alerts:action", args=[alert.pk, action]) in text
        for action in ("acknowledge", "resolve", "dismiss", "note")
    }


def test_the_inbox_offers_each_alerts_actions_to_those_who_may_take_them(
    client, focal_point, analyst, administrator, alert
):
    (other,) = red_flags("SDN")  # not sent to the focal point, who covers Myanmar only
    client.force_login(focal_point)
    text = client.get(reverse("alerts:inbox")).content.decode()
    assert inbox_actions(text, alert) == dict.fromkeys(
        ("acknowledge", "resolve", "dismiss", "note"), True
    )
    assert inbox_actions(text, other) == {
        "acknowledge": False,
        "resolve": False,
        "dismiss": False,
        "note": True,
    }
    client.force_login(analyst)
    text = client.get(reverse("alerts:inbox")).content.decode()
    assert not inbox_actions(text, alert)["acknowledge"]
    client.force_login(administrator)
    text = client.get(reverse("alerts:inbox")).content.decode()
    assert inbox_actions(text, other)["dismiss"]


def test_an_inbox_action_returns_to_the_inbox_with_its_filters(client, focal_point, alert):
    client.force_login(focal_point)
    back = reverse("alerts:inbox") + "?status=active&severity=critical"
    response = client.post(reverse("alerts:action", args=[alert.pk, "acknowledge"]), {"next": back})
    assert (response.status_code, response.url) == (302, back)
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "note"]), {"next": back, "text": "On it"}
    )
    assert response.url == back
    assert alert.events.filter(kind="note", message="On it").exists()
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "resolve"]),
        {"next": back, "note": "Envoy sent"},
        follow=True,
    )
    assert response.redirect_chain == [(back, 302)]
    assert "Alert resolved." in response.content.decode()


def test_an_inbox_dismissal_needs_a_reason_and_keeps_it(client, administrator, alert):
    client.force_login(administrator)
    back = reverse("alerts:inbox") + "?region=Asia"
    url = reverse("alerts:action", args=[alert.pk, "dismiss"])
    refused = client.post(url, {"next": back, "reason": " "}, follow=True)
    assert refused.redirect_chain == [(back, 302)]
    assert "A dismissal needs a reason" in refused.content.decode()
    assert Alert.objects.get().status == "open"
    client.post(url, {"next": back, "reason": "Duplicate report"})
    alert.refresh_from_db()
    assert (alert.status, alert.dismissal_reason) == ("dismissed", "Duplicate report")


@pytest.mark.parametrize(
    "target", ["https://evil.example/alerts/", "//evil.example/alerts/", "/admin/", ""]
)
def test_an_action_goes_back_only_to_our_own_inbox(client, focal_point, alert, target):
    client.force_login(focal_point)
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "acknowledge"]), {"next": target}
    )
    assert response.url == reverse("alerts:detail", args=[alert.pk])


def test_inbox_actions_are_refused_to_someone_else(client, analyst, alert):
    client.force_login(analyst)
    response = client.post(
        reverse("alerts:action", args=[alert.pk, "dismiss"]),
        {"next": reverse("alerts:inbox"), "reason": "noise"},
    )
    assert response.status_code == 403
    assert Alert.objects.get().status == "open"


def test_the_country_page_lists_its_open_alerts_only(client, analyst, administrator, alert):
    (resolved,) = red_flags("SDN")
    client.force_login(administrator)
    client.post(reverse("alerts:action", args=[resolved.pk, "resolve"]), {"note": "Handled"})
    client.force_login(analyst)
    myanmar = client.get("/countries/MMR/")
    assert myanmar.status_code == 200
    assert "Red flag on 12.1" in myanmar.content.decode()  # in words, the summary a click away
    assert reverse("alerts:detail", args=[alert.pk]) in myanmar.content.decode()
    sudan = client.get("/countries/SDN/").content.decode()
    assert reverse("alerts:detail", args=[resolved.pk]) not in sudan
    assert "No open alerts." in sudan


def test_a_failed_delivery_is_listed_in_the_admin_and_the_retry_action_requeues_it(
    client, administrator, alert
):
    notification = Notification.objects.get(alert=alert)
    Notification.objects.filter(pk=notification.pk).update(
        attempts=31, failed_at=NOW, last_error="SMTPServerDisconnected: gone"
    )
    client.force_login(administrator)
    changelist = reverse("admin:alerts_notification_changelist")
    listing = client.get(changelist, {"failed_at__isnull": "False"}).content.decode()
    assert "SMTPServerDisconnected: gone" in listing
    assert '<td class="field-status_label">failed</td>' in listing
    alert_admin = client.get(reverse("admin:alerts_alert_changelist")).content.decode()
    assert '<td class="field-failed_deliveries">1</td>' in alert_admin
    response = client.post(
        changelist,
        {"action": "retry_delivery", "_selected_action": [notification.pk]},
        follow=True,
    )
    assert "1 notification(s) queued again." in response.content.decode()
    notification.refresh_from_db()
    assert (notification.failed_at, notification.attempts) == (None, 0)
    assert notification.status == "pending"

"""The alert pages, the pickers, forms and phone layouts in a real browser (headless
Chromium), at laptop (1366) and phone (390) widths, with screenshots in
artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from alerts import services as alert_services
from alerts.models import Alert, Notification, Subscription
from alerts.transports import acknowledgement_token
from indicators.models import Observation
from indicators.services import record_observations
from tests.browser.test_dashboard import (  # noqa: F401  (fixtures)
    LAPTOP,
    PHONE,
    Session,
    browser,
    build_scores,
    months_ago,
    users,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("countries", "framework"),
]


@pytest.fixture
def alerts(users: None) -> dict[str, Any]:  # noqa: F811
    """Scores, then red flags in four countries for the focal point (Africa and Myanmar)."""
    build_scores()
    fay = get_user_model().objects.get(username="fay")
    alert_services.save_subscription(
        subscription=Subscription(user=fay, regions=["Africa"], min_severity="info"),
        countries=[],
    )
    record_observations(
        rows=[
            {
                "country": country,
                "indicator": indicator,
                "observed_on": months_ago(0),
                "value": value,
                "source": "Browser test report",
            }
            for country, indicator, value in (
                ("KEN", "8.7", 1.0),
                ("KEN", "12.1", 2 / 3),
                ("ETH", "10.1", 1.0),
                ("NGA", "8.7", 2 / 3),
                ("SOM", "12.3", 2 / 3),
            )
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    alert_services.evaluate_red_flags(
        observation_ids=Observation.objects.filter(source="Browser test report").values_list(
            "pk", flat=True
        ),
        now=datetime.now(tz=UTC),
    )
    kenya = Notification.objects.get(recipient=fay, alert__country__iso3="KEN")
    return {"kenya_token": acknowledgement_token(kenya)}


def db(query: Any) -> Any:
    """An ORM read while Playwright's event loop runs in this thread (Django refuses it
    here): in a thread of its own, with a connection of its own."""

    def run() -> Any:
        try:
            return query()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def fits(session: Session) -> bool:
    return session.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize(("size", "viewport"), [("1366", LAPTOP), ("390", PHONE)])
def test_the_inbox_puts_the_most_urgent_country_first_and_acknowledges_in_bulk(
    alerts,
    browser,  # noqa: F811
    live_server,
    size,
    viewport,
):
    session = Session(browser, live_server.url, viewport)
    page = session.page
    session.log_in("fay")
    session.goto("/alerts/")
    countries = page.locator("section.inbox-country h2 a").all_inner_texts()
    # Critical before warning; each country once, however many alerts it has.
    assert countries[:2] == sorted(countries[:2]) or countries[0] in ("Kenya", "Ethiopia")
    assert len(countries) == len(set(countries))
    critical = page.locator("section.inbox-country h2 .severity").all_inner_texts()
    assert critical == sorted(critical, key=lambda s: s != "Critical")
    session.shot(f"inbox-{size}")
    if size == "390":
        assert fits(session), "the inbox scrolls sideways on a phone"
    page.locator("section.inbox-country").first.locator("input[type=checkbox]").first.check()
    page.locator("section.inbox-country").nth(1).locator("input[type=checkbox]").first.check()
    page.click("#bulk button[type=submit]")
    page.wait_for_load_state()
    assert "2 alerts acknowledged" in page.inner_text(".messages")
    assert db(lambda: Alert.objects.filter(status="acknowledged").count()) == 2
    page.click("text=Acknowledge all open for")
    page.wait_for_load_state()
    assert "acknowledged" in page.inner_text(".messages")
    session.shot(f"inbox-after-bulk-{size}")
    assert session.errors == []
    session.close()


@pytest.mark.parametrize(("size", "viewport"), [("1366", LAPTOP), ("390", PHONE)])
def test_the_alert_and_acknowledgement_pages_say_which_alert_in_words(
    alerts,
    browser,  # noqa: F811
    live_server,
    size,
    viewport,
):
    session = Session(browser, live_server.url, viewport)
    page = session.page
    # The e-mail's link, opened without signing in: the alerts first, then a button.
    session.goto(f"/alerts/ack/{alerts['kenya_token']}/")
    text = page.inner_text("main")
    assert "Kenya" in text
    assert "8.7 " in text
    assert "high (3 of 3)" in text
    assert db(lambda: Alert.objects.filter(country__iso3="KEN", status="open").count()) == 2
    session.shot(f"acknowledge-confirm-{size}")
    if size == "1366":
        page.click("main form button[type=submit]")
        page.wait_for_load_state()
        assert "Acknowledged 2 alerts" in page.inner_text("main")
        session.shot(f"acknowledge-done-{size}")
    session.log_in("fay")
    alert = db(lambda: Alert.objects.filter(country__iso3="KEN").order_by("pk").first().pk)
    session.goto(f"/alerts/{alert}/")
    text = page.inner_text("main")
    assert "0.67" not in text
    assert "1.00" not in text
    session.shot(f"alert-detail-{size}")
    if size == "390":
        assert fits(session)
    assert session.errors == []
    session.close()


def test_countries_are_chosen_by_typing_a_few_letters(alerts, browser, live_server):  # noqa: F811
    session = Session(browser, live_server.url, LAPTOP)
    page = session.page
    session.log_in("fay")
    session.goto("/compare/")
    picker = page.locator("#compare-countries-ts-control")
    picker.fill("sud")
    page.locator(".ts-dropdown .option", has_text="Sudan (SDN)").first.click()
    picker.fill("nor")
    page.locator(".ts-dropdown .option", has_text="Norway").first.click()
    page.keyboard.press("Escape")
    session.shot("compare-picker-1366")
    page.click("form.compare-form button[type=submit]")
    page.wait_for_url("**c=SDN**")
    assert "c=NOR" in page.url
    session.wait_for_chart("[data-figure=compare-profile]")
    session.shot("compare-chosen-1366")

    session.goto("/alerts/subscriptions/new/")
    countries = page.locator("#id_countries-ts-control")
    countries.fill("ken")
    page.locator(".ts-dropdown .option", has_text="Kenya (KEN)").first.click()
    page.keyboard.press("Escape")
    session.shot("subscription-picker-1366")
    page.click("form button[type=submit]:text('Save')")
    page.wait_for_url("**/alerts/subscriptions/")
    assert "Kenya" in page.inner_text("main")
    assert db(
        lambda: Subscription.objects.filter(user__username="fay", countries__iso3="KEN").exists()
    )
    assert session.errors == []
    session.close()

    phone = Session(browser, live_server.url, PHONE)
    phone.log_in("fay")
    phone.goto("/alerts/subscriptions/new/")
    phone.page.locator("#id_regions-ts-control").fill("afr")
    phone.page.locator(".ts-dropdown .option", has_text="Africa").first.click()
    phone.page.keyboard.press("Escape")
    assert fits(phone)
    phone.shot("subscription-picker-390")
    phone.goto("/compare/?c=SDN&c=NOR")
    assert fits(phone)
    assert phone.errors == []
    phone.close()


@pytest.mark.parametrize(("size", "viewport"), [("1366", LAPTOP), ("390", PHONE)])
def test_a_form_with_problems_names_them_all_and_takes_the_focus_there(
    alerts,
    browser,  # noqa: F811
    live_server,
    size,
    viewport,
):
    session = Session(browser, live_server.url, viewport)
    page = session.page
    session.log_in("ana")
    session.goto("/observations/new/?country=SDN&indicator=8.7")
    page.fill("#id_observed_on", "2999-01-01")
    page.click("form.assessment-form button[type=submit]")
    page.wait_for_load_state()
    summary = page.locator("[data-error-summary]")
    text = summary.inner_text()
    # The date's problem comes with the others, not after they are fixed.
    assert "Date observed" in text
    assert "Source" in text
    assert "Severity" in text
    focused = page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert focused, "the focus is not on the error summary"
    summary.locator("a", has_text="Source").click()
    assert page.evaluate("document.activeElement.id") == "id_source"
    session.shot(f"assessment-errors-{size}")
    session.close()


def test_on_a_phone_tables_and_charts_fit_and_say_what_scrolls(alerts, browser, live_server):  # noqa: F811
    session = Session(browser, live_server.url, PHONE)
    page = session.page
    session.log_in("ana")
    session.wait_for_chart("[data-figure=map-figure]")
    assert fits(session)
    # The ranking's score, change and coverage are on screen; the rest is a scroll away,
    # and the hint says so.
    for header in ("Country", "Level", "Overall", "3-month change", "Coverage"):
        box = page.locator("#ranking thead th", has_text=header).first.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], f"{header} is off screen"
    assert page.locator("[data-scroll-hint-for=ranking]").is_visible()
    # No chart toolbar over the charts on a phone.
    assert page.locator(".modebar").count() == 0
    session.shot("overview-ranking-390")

    session.goto("/countries/SDN/")
    session.wait_for_chart("[data-figure=trend-figure]")
    session.draw_every_chart()
    assert fits(session)
    assert page.locator(".modebar").count() == 0
    # Axis titles inside their chart, not cut off at the edge.
    for figure in ("trend-figure", "contributions-figure", "waterfall-figure"):
        box = page.locator(f"[data-figure={figure}]").bounding_box()
        title = page.locator(f"[data-figure={figure}] .ytitle").bounding_box()
        assert title["x"] >= box["x"] - 1, figure
    session.shot("country-what-moved-390")

    session.goto("/compare/?c=SDN&c=MMR&c=NOR")
    session.wait_for_chart("[data-figure=compare-profile]")
    assert fits(session)
    heatmap = page.locator("[data-figure=compare-profile] .nsewdrag").first.bounding_box()
    assert heatmap["width"] > 150, "the heatmap collapsed"
    session.shot("compare-390")

    session.goto("/factors/RF1/")
    assert fits(session)
    session.shot("factor-390")
    assert session.errors == []
    session.close()

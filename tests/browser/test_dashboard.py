"""The dashboard in a real browser: headless Chromium (Debian's) against a live server.

Logs in through the form as each role, checks that the charts render (Plotly from our
own static files, the map's geometry too), that tables sort and filter from the
keyboard, that roles are enforced, and that no page logs a JavaScript error. Saves
screenshots to artifacts/screenshots/ at laptop (1366x900) and phone (390x844) sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from indicators.models import Indicator
from indicators.roles import Role
from indicators.services import record_observations, refresh_scores
from tests.conftest import ROOT, make_user, skip_or_fail

pytestmark = [
    pytest.mark.integration,
    # A live server needs committed data, so these tests run in transactions of their own.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("countries", "framework"),
]

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "a-long-test-password"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def months_ago(months: int) -> date:
    today = timezone.localdate().replace(day=1)
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, 1)


@pytest.fixture
def scored(users: None) -> None:
    build_scores()


def build_scores() -> None:
    """Three countries over two years with rising scores; one with too little data."""
    codes = list(Indicator.objects.values_list("code", flat=True))
    rows = []
    profiles = {"SDN": (0.5, 1.0), "MMR": (0.6, 0.8), "NOR": (0.0, 0.2)}
    for iso3, (first, last) in profiles.items():
        for position, code in enumerate(codes):
            for months, value in ((24, first), (10, (first + last) / 2), (1, last)):
                rows.append(
                    {
                        "country": iso3,
                        "indicator": code,
                        "observed_on": months_ago(months),
                        # Vary by indicator so that factors differ.
                        "value": round(min(1.0, value * (0.6 + 0.4 * (position % 3) / 2)), 4),
                        "source": "Browser test assessment",
                        "source_url": "https://example.org/assessment",
                    }
                )
    rows.append(
        {
            "country": "SYR",
            "indicator": "1.1",
            "observed_on": months_ago(2),
            "value": 1.0,
            "source": "Browser test assessment",
        }
    )
    record_observations(rows=rows, recompute=False)
    refresh_scores()


@pytest.fixture
def browser(users: None) -> Iterator[Any]:
    """Chromium, started after the test's data is written.

    Playwright's sync API runs an event loop in this thread, and database work done
    while it runs would be refused (and its connection left open): request ``scored``
    before ``browser`` so that the data is in place first.
    """
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (make browser installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


class Session:
    """A browser page signed in as one user, recording every console error."""

    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int]) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        # Nothing may come from outside our own server (no CDN for Plotly or the map).
        self.outside: list[str] = []
        self.page.on(
            "request",
            lambda request: (
                self.outside.append(request.url)
                if not request.url.startswith((base_url, "data:"))
                else None
            ),
        )

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def log_in(self, username: str) -> None:
        self.goto("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base_url + "/")

    def wait_for_chart(self, selector: str) -> None:
        # Charts are drawn as they come near the screen, as a reader scrolls to them.
        self.page.locator(selector).first.scroll_into_view_if_needed()
        self.page.wait_for_selector(f"{selector}.js-plotly-plot .main-svg", timeout=20_000)

    def draw_every_chart(self) -> None:
        """Draw the charts below the fold too (charts.js draws them all for printing)."""
        count = self.page.locator("[data-figure]").count()
        if count:
            self.page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
            self.page.wait_for_function(
                f"document.querySelectorAll('[data-figure] .main-svg').length >= {count}",
                timeout=20_000,
            )

    def shot(self, name: str) -> None:
        self.draw_every_chart()
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def users() -> None:
    # The flush after an earlier transactional test removes the groups the roles
    # migration made; the roles only need the groups' names.
    for role in Role:
        Group.objects.get_or_create(name=role.value)
    make_user("ana", Role.ANALYST, password=PASSWORD)
    make_user("fay", Role.FOCAL_POINT, password=PASSWORD)
    make_user("ada", Role.ADMINISTRATOR, password=PASSWORD, is_staff=True)


def test_the_empty_dashboard_explains_that_there_are_no_scores(browser, live_server):
    session = Session(browser, live_server.url, LAPTOP)
    session.log_in("ana")
    assert "No scores yet" in session.page.inner_text("main")
    session.shot("overview-empty-1366")
    session.goto("/countries/SDN/")
    assert "No scores yet for Sudan" in session.page.inner_text("main")
    assert session.errors == []
    session.close()


def test_an_analyst_browses_map_ranking_country_and_compare(scored, browser, live_server):
    session = Session(browser, live_server.url, LAPTOP)
    page = session.page
    session.log_in("ana")

    # Overview: the map is drawn with its geometry, and the ranking has rows.
    session.wait_for_chart("[data-figure=map-figure]")
    page.wait_for_selector("[data-figure=map-figure] .geo .choroplethlocation", timeout=20_000)
    rows = page.locator("#ranking tbody tr")
    assert rows.count() == 4
    assert page.locator("#ranking tbody tr").first.locator("th a").inner_text() == "Sudan"
    session.shot("overview-1366")

    # Sorting from the keyboard: focus the Country header button and press Enter.
    country_header = page.locator("#ranking thead th").nth(1)
    country_header.locator("button").focus()
    page.keyboard.press("Enter")
    assert country_header.get_attribute("aria-sort") == "ascending"
    assert rows.first.locator("th a").inner_text() == "Myanmar"
    # Filtering: a search narrows the rows and says how many are shown.
    page.fill("[data-filter=search]", "nor")
    assert page.locator("#ranking tbody tr:not([hidden])").count() == 1
    assert "Showing 1 of 4" in page.inner_text("[data-filter-count]")
    page.fill("[data-filter=search]", "")
    page.select_option("[data-filter=level]", "insufficient_data")
    assert page.locator("#ranking tbody tr:not([hidden]) th a").inner_text() == "Syria"
    page.select_option("[data-filter=level]", "")

    # The crime switch is a plain GET form.
    page.select_option("select[name=crime]", "war_crimes")
    page.click("form.toolbar button[type=submit]")
    page.wait_for_url("**crime=war_crimes**")
    session.wait_for_chart("[data-figure=map-figure]")

    # A country link leads to its page, with the trend chart and the waterfall.
    page.click("#ranking tbody tr th a:text('Sudan')")
    page.wait_for_url("**/countries/SDN/")
    assert page.title().startswith("Sudan")
    session.wait_for_chart("[data-figure=trend-figure]")
    session.wait_for_chart("[data-figure=contributions-figure]")
    session.wait_for_chart("[data-figure=waterfall-figure]")
    assert page.locator("[data-figure=waterfall-figure] .waterfalllayer .point").count() >= 3
    assert page.locator("[data-figure=trend-figure] .shapelayer path").count() >= 4
    page.locator("details.factor summary").first.click()
    assert page.locator("details.factor").first.get_attribute("open") is not None
    session.shot("country-1366")

    # Insufficient data is labelled as such on its country page.
    session.goto("/countries/SYR/")
    assert "Insufficient data" in page.inner_text(".headline")
    session.shot("country-insufficient-1366")

    session.goto("/compare/?c=SDN&c=MMR&c=NOR")
    session.wait_for_chart("[data-figure=compare-trend]")
    session.wait_for_chart("[data-figure=compare-profile]")
    # One line per country, each over a white outline of its own.
    assert page.locator("[data-figure=compare-trend] .scatterlayer .trace").count() == 6
    session.shot("compare-1366")

    session.goto("/factors/RF1/")
    assert page.locator("#factor-ranking tbody tr").count() == 4
    session.goto("/methodology/")
    assert "No public data set is imported in this installation yet" in page.inner_text("main")
    session.shot("methodology-1366")
    session.goto("/observations/new/?country=SDN&indicator=8.7")
    session.shot("assessment-form-1366")

    assert session.errors == []
    assert session.outside == []
    session.close()


def test_a_focal_point_sees_the_dashboard_but_not_the_assessment_form(scored, browser, live_server):
    session = Session(browser, live_server.url, LAPTOP)
    session.log_in("fay")
    session.wait_for_chart("[data-figure=map-figure]")
    assert session.page.locator("a:text('Record assessment')").count() == 0
    response = session.goto("/observations/new/")
    assert response.status == 403
    # The refused page itself is the only error the browser may report.
    assert all("403" in error for error in session.errors)
    session.close()


def test_an_administrator_reaches_every_page(scored, browser, live_server):
    session = Session(browser, live_server.url, LAPTOP)
    session.log_in("ada")
    session.wait_for_chart("[data-figure=map-figure]")
    for path in ("/countries/MMR/", "/compare/?c=SDN&c=NOR", "/factors/RF8/", "/methodology/"):
        assert session.goto(path).status == 200
    assert session.errors == []
    session.close()


def test_the_pages_fit_a_phone(scored, browser, live_server):
    session = Session(browser, live_server.url, PHONE)
    session.log_in("ana")
    session.wait_for_chart("[data-figure=map-figure]")
    session.shot("overview-390")
    width = session.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the overview scrolls sideways on a phone"
    session.goto("/countries/SDN/")
    session.wait_for_chart("[data-figure=trend-figure]")
    session.shot("country-390")
    width = session.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the country page scrolls sideways on a phone"
    assert session.errors == []
    session.close()


def test_clicking_a_country_on_the_map_opens_its_page(scored, browser, live_server):
    session = Session(browser, live_server.url, LAPTOP)
    page = session.page
    session.log_in("ana")
    page.wait_for_selector("[data-figure=map-figure] .geo .choroplethlocation", timeout=20_000)
    paths = page.locator("[data-figure=map-figure] .choroplethlocation")
    # Plotly binds each country path to its point; find Sudan's among them.
    index = page.evaluate(
        """() => Array.from(document.querySelectorAll(
            '[data-figure=map-figure] .choroplethlocation'
        )).findIndex((path) => path.__data__ && path.__data__.loc === 'SDN')"""
    )
    assert index >= 0, "Sudan is not drawn on the map"
    # Plotly's geo layer takes the pointer events and finds the country under them: click
    # at the middle of Sudan's outline, as a person would, not on the path element.
    box = paths.nth(index).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url("**/countries/SDN/")
    assert page.title().startswith("Sudan")
    assert session.errors == []
    session.close()


@pytest.fixture
def nobody(users: None) -> None:
    make_user("nobody", password=PASSWORD)


def refused(session: Session, path: str) -> None:
    response = session.goto(path)
    assert response.status == 403, path
    text = session.page.inner_text("main")
    assert "You do not have access to this page" in text, path
    # The refusal keeps the site's navigation, so the person is not stranded.
    assert session.page.locator("header.site-header nav").count() == 1


def test_each_role_is_refused_the_pages_of_other_roles(scored, nobody, browser, live_server):
    for username, forbidden, allowed in (
        ("nobody", ["/", "/countries/SDN/", "/methodology/"], []),
        ("ana", ["/alerts/subscriptions/"], ["/observations/upload/", "/alerts/"]),
        ("fay", ["/observations/upload/", "/observations/new/"], ["/alerts/subscriptions/"]),
    ):
        session = Session(browser, live_server.url, LAPTOP)
        session.goto("/accounts/login/")
        session.page.fill("#id_username", username)
        session.page.fill("#id_password", PASSWORD)
        session.page.click("button[type=submit]")
        session.page.wait_for_load_state()
        for path in forbidden:
            refused(session, path)
        if username == "nobody":
            assert "no role yet" in session.page.inner_text("main")
        # Refused pages may only log their own 403; allowed pages log nothing at all.
        assert all("403" in error for error in session.errors), (username, session.errors)
        session.errors.clear()
        for path in allowed:
            assert session.goto(path).status == 200, (username, path)
        assert session.errors == [], (username, session.errors)
        session.close()

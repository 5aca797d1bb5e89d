"""Every page through axe-core in a real browser, at laptop and phone sizes: no serious or
critical accessibility violation.

axe-core (MPL-2.0) comes from npm and is vendored for the tests only
(``tests/browser/vendor/axe.min.js``): it is injected into each page, never served by
the product. Every violation of any impact is written to ``artifacts/axe-report.json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from alerts import services as alert_services
from alerts.models import Notification, Subscription
from alerts.transports import acknowledgement_token
from indicators.models import Observation
from indicators.services import record_observations
from tests.browser.test_dashboard import (  # noqa: F401  (fixtures)
    LAPTOP,
    PHONE,
    SHOTS,
    Session,
    browser,
    build_scores,
    months_ago,
    users,
)
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("countries", "framework"),
]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
REPORT = ROOT / "artifacts" / "axe-report.json"
BLOCKING = {"serious", "critical"}


@pytest.fixture
def dashboard(users: None) -> dict[str, Any]:  # noqa: F811
    """Scores for a few countries, an open red-flag alert sent to the focal point, and
    its acknowledgement link."""
    build_scores()
    fay = get_user_model().objects.get(username="fay")
    alert_services.save_subscription(
        subscription=Subscription(user=fay, regions=["Africa"], min_severity="info"),
        countries=[],
    )
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "12.1",
                "observed_on": months_ago(0),
                "value": 1.0,
                "source": "Accessibility test",
            }
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    alert_services.evaluate_red_flags(
        observation_ids=Observation.objects.filter(indicator__code="12.1").values_list(
            "pk", flat=True
        ),
        now=datetime.now(tz=UTC),
    )
    notification = Notification.objects.filter(recipient=fay).latest("pk")
    alert = notification.alert
    token = acknowledgement_token(notification)
    return {"alert": alert.pk, "subscription": Subscription.objects.get().pk, "token": token}


def pages(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(user, path) of every page of the product (the Django admin is Django's own)."""
    return [
        ("", "/accounts/login/"),
        ("", f"/alerts/ack/{data['token']}/"),
        ("ana", "/"),
        ("ana", "/?crime=war_crimes"),
        ("ana", "/countries/SDN/"),
        ("ana", "/countries/SYR/"),
        ("ana", "/compare/"),
        ("ana", "/compare/?c=SDN&c=MMR&c=NOR"),
        ("ana", "/factors/RF1/"),
        ("ana", "/methodology/"),
        ("ana", "/observations/new/?country=SDN"),
        ("ana", "/observations/upload/"),
        ("ana", "/alerts/"),
        ("ana", f"/alerts/{data['alert']}/"),
        ("ana", "/accounts/token/"),
        ("ana", "/accounts/password_change/"),
        ("ana", "/countries/XXX/"),  # the 404 page
        ("fay", "/alerts/?status=active"),
        ("fay", "/alerts/subscriptions/"),
        ("fay", "/alerts/subscriptions/new/"),
        ("fay", f"/alerts/subscriptions/{data['subscription']}/"),
        ("fay", "/observations/new/"),  # the 403 page
    ]


def run_axe(session: Session) -> list[dict[str, Any]]:
    session.page.add_script_tag(content=AXE.read_text())
    result = session.page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(
                    (n) => ({target: n.target, summary: n.failureSummary})
                ),
            }));
        }"""
    )
    return list(result)


def test_no_page_has_a_serious_accessibility_violation(dashboard, browser, live_server):  # noqa: F811
    report: dict[str, Any] = {}
    blocking: list[str] = []
    for name, viewport in (("1366", LAPTOP), ("390", PHONE)):
        sessions: dict[str, Session] = {}
        for username, path in pages(dashboard):
            session = sessions.get(username)
            if session is None:
                session = sessions[username] = Session(browser, live_server.url, viewport)
                if username:
                    session.log_in(username)
            session.goto(path)
            session.page.wait_for_load_state("load")
            session.draw_every_chart()
            violations = run_axe(session)
            report[f"{name} {username or 'anonymous'} {path}"] = violations
            blocking += [
                f"{name} {path}: {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                for v in violations
                if v["impact"] in BLOCKING
            ]
        for session in sessions.values():
            session.close()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    assert blocking == [], "\n".join(blocking)
    assert SHOTS.parent.exists()

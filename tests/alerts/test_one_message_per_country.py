"""An upload as a focal point lives it, on real services: a Celery worker on Redis, an
SMTP server on loopback. Twelve countries in one file, triggers in five of them: each
subscribed focal point gets at most one e-mail per country, listing every trigger with
names instead of codes, and the inbox puts the most urgent country first."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.models import Alert, Notification, RedFlagCheck, RunEvaluation
from indicators.models import Indicator, Observation, ScoringRun
from indicators.roles import Role
from indicators.scoring import last_complete_month_end
from indicators.services import record_observations
from tests.alerts.conftest import subscribe
from tests.conftest import ROOT, SmtpSink, make_user

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("scoring")]

QUIET = ("FRA", "NOR", "BRA", "IND", "CAN", "JPN", "AUS")


@pytest.fixture
def celery_worker_env(smtp_server: SmtpSink) -> dict[str, str]:
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "SITE_URL": "http://testserver",
        "DEFAULT_FROM_EMAIL": "alerts@earlywarning.test",
    }


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    pytest.fail("timed out")


def row(country: str, indicator: str, observed_on, value: int, source: str = "Field report"):
    return {
        "country": country,
        "indicator": indicator,
        "observed_on": observed_on,
        "value": value,  # the analysts' 0-3 scale, as in an uploaded file
        "source": source,
    }


def settled(runs_before: int) -> bool:
    """The upload's run is scored and evaluated and every red flag is checked."""
    runs = ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED)
    return (
        runs.count() > runs_before
        and RunEvaluation.objects.count() == runs.count()
        and not Notification.objects.filter(sent_at__isnull=True).exists()
    )


def test_an_upload_with_triggers_in_five_countries_sends_one_email_per_country(
    celery_worker, smtp_server, client
):
    # An earlier transactional test's flush removes the groups the roles migration made.
    for role in Role:
        Group.objects.get_or_create(name=role.value)
    fay = make_user("fay", Role.FOCAL_POINT)  # Africa, Kenya and Myanmar, everything
    fox = make_user("fox", Role.FOCAL_POINT)  # every country, critical only
    analyst = make_user("ana", Role.ANALYST)
    subscribe(fay, regions=("Africa",), countries=("KEN", "MMR"))
    subscribe(fox, all_countries=True, min_severity="critical")
    countries = ("KEN", "MMR", "SDN", "ETH", "NGA", *QUIET)

    # Last year's assessments, scored and evaluated: every country low (0). (The fixture's
    # publication of the test weights is a run already.)
    runs_at_start = ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).count()
    last_year = (timezone.localdate() - timedelta(days=400)).isoformat()
    record_observations(
        rows=[row(c, "1.1", last_year, 0) for c in countries], recorded_by=analyst, scale="analyst"
    )
    wait_for(lambda: settled(runs_at_start))
    assert not Alert.objects.exists()
    sent_before = len(smtp_server.messages)
    runs_before = ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).count()

    # The upload: one batch, twelve countries, dated in the last complete month.
    day = last_complete_month_end(timezone.localdate()) - timedelta(days=5)
    earlier = day - timedelta(days=20)
    rows = [
        row("KEN", "1.1", day, 3),
        row("KEN", "8.7", day, 3),
        row("KEN", "8.7", day, 3, source="Radio monitoring"),
        row("KEN", "8.7", earlier, 3),
        row("KEN", "12.1", day, 3),
        row("MMR", "8.7", day, 2),
        row("SDN", "1.1", day, 2),
        row("ETH", "10.1", day, 3),
        row("NGA", "1.1", day, 1),
        row("NGA", "1.2", day, 0),  # a little rise: warnings only
        *(row(c, "1.2", day, 0) for c in QUIET),
    ]
    record_observations(rows=rows, recorded_by=analyst, scale="analyst")
    wait_for(lambda: settled(runs_before))
    # Give a stray e-mail time to arrive (there must be none), then count.
    time.sleep(1.0)
    received = [message for _at, message in smtp_server.messages[sent_before:]]

    per_person_and_country = Counter(
        (m["To"], m["Subject"].split("] ", 1)[1].split(":")[0]) for m in received
    )
    assert max(per_person_and_country.values()) == 1
    assert set(per_person_and_country) == {
        *((fay.email, name) for name in ("Kenya", "Myanmar", "Sudan", "Ethiopia", "Nigeria")),
        # Nigeria's alerts are warnings at most: not for a critical-only subscriber.
        *((fox.email, name) for name in ("Kenya", "Myanmar", "Sudan", "Ethiopia")),
    }

    # Kenya's one e-mail lists every trigger, the most urgent first, in words.
    kenya = next(m for m in received if m["To"] == fay.email and "Kenya" in m["Subject"])
    body = kenya.get_body(preferencelist=("plain",)).get_content()
    (ROOT / "artifacts" / "emails").mkdir(parents=True, exist_ok=True)
    (ROOT / "artifacts" / "emails" / "kenya.txt").write_text(
        f"Subject: {kenya['Subject']}\n\n{body}"
    )
    (ROOT / "artifacts" / "emails" / "kenya.html").write_text(
        kenya.get_body(preferencelist=("html",)).get_content()
    )
    triggers = [
        "Overall risk rose from low to very high (0.0 → 100.0)",
        "Overall risk surged: +100.0 points in 3 months",
        "Crimes against humanity risk rose from low to very high",
        "Genocide risk rose from low to very high",
        "War crimes risk rose from low to very high",
        "Red flag: 8.7 ",
        "in 3 assessments",
        "Red flag: 12.1",
    ]
    positions = [body.index(text) for text in triggers]
    assert positions == sorted(positions)
    incitement = Indicator.objects.get(code="8.7").label
    assert f"8.7 {incitement[:40]}" in body
    assert "high (3 of 3)" in body
    assert "1.00" not in body
    assert (
        kenya["Subject"]
        .strip()
        .startswith("[Critical] Kenya: overall risk low → very high and 6 more")
    )
    # One event is one rise: nothing escalated several times over.
    assert not Alert.objects.filter(escalation_count__gt=0).exists()
    assert (
        RedFlagCheck.objects.count()
        == Observation.objects.filter(indicator__code__in=["8.7", "12.1", "10.1"]).count()
    )

    # Nothing was left for the safety net to send later.
    notifications = Notification.objects.count()
    services.evaluate_missed(now=datetime.now(tz=UTC) + timedelta(minutes=15))
    assert Notification.objects.count() == notifications

    # The inbox: by country, the most urgent first (severity, then the size of the rise).
    client.force_login(fay)
    page = client.get(reverse("alerts:inbox")).content.decode()
    order = [page.index(f'id="country-{iso3}"') for iso3 in ("KEN", "SDN", "ETH", "MMR", "NGA")]
    assert order == sorted(order)

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, date, datetime
from typing import Any

import pytest

from alerts import services, webhook_addresses
from alerts.models import Alert, Subscription
from alerts.services import save_subscription
from countries.models import Country
from indicators.models import Observation
from indicators.services import record_observations
from tests.conftest import publish_methodology

TODAY = date(2024, 6, 15)
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)
# Scores stop at the last complete month: runs on this day score up to June 2024.
SCORED_ON = date(2024, 7, 1)


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Webhook host names resolve from this table, never over the network; a name not in
    it does not resolve (as on a closed network). IP literals resolve to themselves."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[Any]:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = table[host]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(webhook_addresses, "resolve", resolve)
    return table


def observe(
    country: str, indicator: str, observed_on: str, value: float, source: str = "analyst"
) -> list[int]:
    """Record one observation without queueing anything; returns nothing useful."""
    record_observations(
        rows=[
            {
                "country": country,
                "indicator": indicator,
                "observed_on": observed_on,
                "value": value,
                "source": source,
            }
        ],
        today=TODAY,
        recompute=False,
        evaluate_alerts=False,
    )
    return []


def subscribe(
    user: Any,
    *,
    countries: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
    all_countries: bool = False,
    min_severity: str = "info",
    delivery: str = "immediate",
    webhook_url: str = "",
) -> Subscription:
    return save_subscription(
        subscription=Subscription(
            user=user,
            regions=list(regions),
            all_countries=all_countries,
            min_severity=min_severity,
            delivery=delivery,
            webhook_url=webhook_url,
        ),
        countries=Country.objects.filter(iso3__in=countries),
    )


@pytest.fixture
def scoring(countries: None, framework: None) -> None:
    # Tests use a handful of indicators: let thin coverage still produce levels.
    publish_methodology(thresholds={"min_coverage": 0.005})


def red_flags(*countries: str) -> list[Alert]:
    """A high assessment of 12.1 (plan to attack civilians) in each country, evaluated now."""
    record_observations(
        rows=[
            {
                "country": c,
                "indicator": "12.1",
                "observed_on": "2024-06-01",
                "value": 1.0,
                "source": "analyst",
            }
            for c in countries
        ],
        recompute=False,
        evaluate_alerts=False,
    )
    return services.evaluate_red_flags(
        observation_ids=Observation.objects.values_list("pk", flat=True), now=NOW
    )


@pytest.fixture
def alert(focal_point: Any) -> Alert:
    """An open critical red-flag alert on Myanmar, notified to the focal point."""
    subscribe(focal_point, countries=("MMR",))
    (alert,) = red_flags("MMR")
    return alert

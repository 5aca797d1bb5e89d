from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from alerts.models import Subscription
from alerts.services import save_subscription
from countries.models import Country
from indicators.models import ScoringSettings
from indicators.services import record_observations

TODAY = date(2024, 6, 15)


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
    ScoringSettings.objects.create(pk=1, min_coverage=0.005)

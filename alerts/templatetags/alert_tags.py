"""Template tags that put alerts on dashboard pages without the indicators app importing
alerts: ``{% load alert_tags %}{% active_alerts country %}`` and
``{% alert_markers country as markers %}``."""

from __future__ import annotations

from typing import Any

from django import template

from alerts import selectors
from alerts.models import Alert

register = template.Library()


@register.inclusion_tag("alerts/_alert_list.html")
def active_alerts(country: Any = None, limit: int = 10) -> dict[str, Any]:
    """Open and acknowledged alerts, of one country or of all, most recent first."""
    alerts = (
        selectors.active_alerts_for_country(country)
        if country is not None
        else Alert.objects.filter(status__in=Alert.ACTIVE).order_by("-opened_at")
    )
    alerts = list(alerts.select_related("country")[:limit])
    return {"alerts": alerts, "show_country": country is None}


@register.simple_tag
def alert_markers(country: Any) -> list[dict[str, Any]]:
    """{date, label} of each alert on a country, for marking its trend chart."""
    return [
        {"date": when.isoformat(), "label": label}
        for when, label in selectors.alert_markers(country)
    ]

"""Template tags that put alerts on dashboard pages without the indicators app importing
alerts (``{% load alert_tags %}{% active_alerts country %}``, ``{% alert_markers country
as markers %}``), and the filters that put an alert into words for pages and e-mails:
names for codes, assessments on the scale they were entered on, what a number is
compared with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from alerts import rules, selectors
from alerts.models import Alert

register = template.Library()

OVERVIEW_COUNTRIES = 8


@register.inclusion_tag("alerts/_alert_list.html")
def active_alerts(country: Any = None) -> dict[str, Any]:
    """Open and acknowledged alerts, the most urgent first: one country's, or, on the
    overview, the most urgent countries' (critical ones first, so none hides behind
    older warnings) with a count of the countries left out."""
    if country is not None:
        return {"alerts": selectors.active_alerts_for_country(country), "groups": None}
    groups, left_out = selectors.open_alerts_overview(countries=OVERVIEW_COUNTRIES)
    return {"groups": groups, "left_out": left_out, "alerts": None}


@register.simple_tag
def alert_markers(country: Any) -> list[dict[str, Any]]:
    """{date, label} of each alert on a country, for marking its trend chart."""
    return [
        {"date": when.isoformat(), "label": label}
        for when, label in selectors.alert_markers(country)
    ]


@register.filter
def crime_words(crime: str) -> str:
    """ "crimes_against_humanity" -> "crimes against humanity"."""
    return rules.crime_words(crime or "")


@register.filter
def level_words(level: str) -> str:
    return rules.LEVEL_WORDS.get(level or "", (level or "").replace("_", " "))


@register.filter
def named(code: str, names: Mapping[str, str] | None) -> str:
    """A factor or indicator code with its name: "8.7 Incitement or hateful propaganda"."""
    name = (names or {}).get(code, "").strip().rstrip(".")
    return f"{code} {name}".strip()


@register.filter
def assessment(flag: Mapping[str, Any]) -> str:
    """A red flag's value as it was entered (0-3 in words, or 0-1 with its data set)."""
    return rules.describe_value(float(flag["value"]), dataset=str(flag.get("dataset") or ""))


@register.filter
def value_words(value: Any, dataset: str = "") -> str:
    """An observation value in [0, 1] as entered: "moderate (2 of 3)", or 0-1 with its
    data set's name when ``dataset`` is given."""
    if value is None:
        return ""
    return rules.describe_value(float(value), dataset=dataset or "")


@register.filter
def signed(value: Any, digits: int = 1) -> str:
    """+1.5, -0.3, 0.0 (points)."""
    if value is None:
        return ""
    number = float(value)
    text = f"{number:+.{int(digits)}f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


@register.filter
def compared_with(alert: Alert) -> str:
    """What the alert's previous score is, in words."""
    when = alert.baseline_period
    month = f" ({when:%B %Y})" if when else ""
    if alert.compared_with == rules.COMPARED_WITH_3_MONTHS:
        return f"the score three months earlier{month}"
    if alert.compared_with == rules.COMPARED_WITH_PREVIOUS:
        return f"the previous published score{month}"
    return "the previous score"


@register.filter
def headline(alert: Alert) -> str:
    """A short line for a subject or a list: what the alert says, in words."""
    crime = rules.crime_words(alert.crime_type)
    if alert.rule == rules.Rule.LEVEL_CROSSING:
        return (
            f"{crime} risk {rules.LEVEL_WORDS.get(alert.previous_level, alert.previous_level)}"
            f" → {rules.LEVEL_WORDS.get(alert.level, alert.level)}"
        )
    if alert.rule == rules.Rule.SURGE and alert.change_3m is not None:
        return f"overall risk {alert.change_3m:+.1f} points in 3 months"
    if alert.rule == rules.Rule.RED_FLAG:
        flags = alert.red_flags or []
        indicators = {flag["indicator"] for flag in flags} or {alert.indicator}
        if len(indicators) > 1:
            return f"red flags on {len(indicators)} indicators"
        return f"red flag on {alert.indicator}"
    return alert.get_rule_display().lower()


@register.filter
def item(mapping: Mapping[Any, Any] | None, key: Any) -> Any:
    """``mapping[key]`` (None when missing), for keys a template cannot spell."""
    return (mapping or {}).get(key)


@register.filter
def as_date(value: Any) -> Any:
    """An ISO date string (as kept in JSON) as a date, for the ``date`` filter."""
    from datetime import date

    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value

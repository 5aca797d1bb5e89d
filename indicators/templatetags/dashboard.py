"""Small formatting filters for the dashboard templates; missing numbers never show as 0."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from indicators.charts import CRIME_LABELS, LEVEL_LABELS, LEVELS

register = template.Library()
MISSING = "\u2013"  # an en dash


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


@register.filter
def score(value: Any) -> str:
    """A 0-100 score with one decimal, or a dash when there is none."""
    number = _number(value)
    return MISSING if number is None else f"{number:.1f}"


@register.filter
def percent(value: Any) -> str:
    """A share in [0, 1] as a whole percentage."""
    number = _number(value)
    return MISSING if number is None else f"{number:.0%}"


@register.filter
def unit(value: Any) -> str:
    """A value in [0, 1] with two decimals."""
    number = _number(value)
    return MISSING if number is None else f"{number:.2f}"


@register.filter
def sort_key(value: Any) -> str:
    """A number for a ``data-sort`` attribute; empty when missing (sorted last)."""
    number = _number(value)
    return "" if number is None else f"{number:.4f}"


@register.filter
def change(value: Any) -> SafeString | str:
    """A signed change in points, marked up as a rise or a fall (arrow and words)."""
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number) < 0.05:
        return format_html('<span class="flat">{}</span>', "±0.0")
    direction, arrow, words = ("up", "▲", "rise") if number > 0 else ("down", "▼", "fall")
    return format_html(
        '<span class="{}"><span aria-hidden="true">{} </span>{}<span class="visually-hidden"> '
        "({})</span></span>",
        direction,
        arrow,
        f"{number:+.1f}",
        words,
    )


@register.filter
def level_label(level: Any) -> str:
    return LEVEL_LABELS.get(str(level), str(level or MISSING))


@register.filter
def level_rank(level: Any) -> int:
    """Order of levels for sorting: insufficient data first, then low ... very high."""
    return LEVELS.index(level) if level in LEVELS else -1


@register.simple_tag
def level_badge(level: Any) -> SafeString:
    """The level as a coloured pill that always carries its name in text."""
    key = str(level) if level in LEVELS else "insufficient_data"
    return format_html('<span class="level level-{}">{}</span>', key, LEVEL_LABELS[key])


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` for templates, None when absent."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def crime_label(crime: Any) -> str:
    return CRIME_LABELS.get(str(crime), str(crime or ""))


@register.filter
def analyst_value(value: Any) -> str:
    """An analyst's assessment on the scale it was most likely entered on: "2 (moderate)"
    for a step of the 0-3 scale, else the 0-1 value with two decimals."""
    number = _number(value)
    if number is None:
        return MISSING
    steps = number * 3
    if abs(steps - round(steps)) < 1e-6:
        labels = ("absent", "low", "moderate", "high")
        return f"{round(steps)} ({labels[round(steps)]})"
    return f"{number:.2f}"


@register.filter
def newest_value(status: Any) -> str:
    """An indicator's value the scores use, on the scale it was entered on: an analyst's
    assessment on 0-3 ("2 (moderate)"), a data-derived value (or a mean with one) on 0-1."""
    if status.value is None:
        return MISSING
    if status.latest and not any(line.from_data for line in status.latest):
        return analyst_value(status.value)
    return f"{status.value:.2f}"


@register.filter
def raw_number(value: Any) -> str:
    """A data set's raw value as published: whole numbers without decimals, thousands
    separated; others with up to four significant decimals."""
    number = _number(value)
    if number is None:
        return MISSING
    if number == int(number):
        return f"{int(number):,}"
    return f"{number:,.4g}" if abs(number) < 1000 else f"{number:,.0f}"

"""Chart builders for the dashboard: small frames in, Plotly figures out.

Pure by design, like ``scoring.py``: no Django, no database, no clock. Views fetch rows
through ``selectors``, hand them here as frames, and pass ``figure_json(fig)`` to the
template, where ``static/js/charts.js`` draws it with Plotly from our own static files.

Level colours are defined once, here, and are the same ColorBrewer YlOrBr steps as the
``--level-*`` variables in ``static/css/earlywarning.css`` (a test keeps them equal).
Every level also carries a text label: colour is never the only cue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

LEVELS: tuple[str, ...] = ("insufficient_data", "low", "moderate", "high", "very_high")
LEVEL_LABELS: dict[str, str] = {
    "insufficient_data": "Insufficient data",
    "low": "Low",
    "moderate": "Moderate",
    "high": "High",
    "very_high": "Very high",
}
# ColorBrewer YlOrBr steps, one lightness apart each, so they read in grey and with
# any colour-vision deficiency. Low is a clear yellow: the palest step (#ffffd4) was
# hard to tell from the map's light grey "no scores".
LEVEL_COLOURS: dict[str, str] = {
    "insufficient_data": "#d9d9d9",
    "low": "#fee391",
    "moderate": "#fe9929",
    "high": "#cc4c02",
    "very_high": "#8c2d04",
}
SCORED_LEVELS: tuple[str, ...] = ("low", "moderate", "high", "very_high")

CRIMES: tuple[str, ...] = ("overall", "genocide", "crimes_against_humanity", "war_crimes")
CRIME_LABELS: dict[str, str] = {
    "overall": "Overall (any atrocity crime)",
    "genocide": "Genocide",
    "crimes_against_humanity": "Crimes against humanity",
    "war_crimes": "War crimes",
}
# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies and
# readable on top of the YlOrBr level bands; dashes tell the lines apart in grey too.
CRIME_COLOURS: dict[str, str] = {
    "overall": "#1d2430",
    "genocide": "#0072b2",
    "crimes_against_humanity": "#009e73",
    "war_crimes": "#cc79a7",
}
CRIME_DASHES: dict[str, str] = {
    "overall": "solid",
    "genocide": "dash",
    "crimes_against_humanity": "dot",
    "war_crimes": "dashdot",
}
# Fourteen factors cannot have fourteen colours anyone tells apart: charts show the few
# that matter most in Okabe-Ito colours (safe with the common colour-vision
# deficiencies; yellow left out, it vanishes on white), label them directly, and group
# the rest as "other factors" in grey.
FACTOR_PALETTE: tuple[str, ...] = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
)
OTHER_FACTORS_COLOUR = "#b8bec8"
# Lines drawn over the level bands: dark, far apart in hue, each with its own dash,
# and a white outline so that no line vanishes on a band of its own colour.
LINE_PALETTE: tuple[str, ...] = (
    "#0072b2",
    "#1d2430",
    "#009e73",
    "#cc79a7",
    "#6b4c9a",
    "#56b4e9",
    "#882255",
    "#117733",
)
LINE_DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
HALO = "rgba(255,255,255,0.9)"
RISE_COLOUR = LEVEL_COLOURS["very_high"]
FALL_COLOUR = "#0072b2"
TOTAL_COLOUR = "#5b6473"
INSUFFICIENT_COLOUR = "#8a8a8a"
# On the map, "no scores" (land without a row) must not look like Low (#ffffd4, nearly
# white): a cool light grey, and a clearly darker grey for insufficient data, which
# the hatched badge of the tables cannot be on a choropleth.
MAP_NO_SCORES_COLOUR = "#dde1e7"
MAP_INSUFFICIENT_COLOUR = "#9a9a9a"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"

Thresholds = Mapping[str, float]
"""moderate_from, high_from, very_high_from (0-100), as stored with a methodology version."""


def figure_json(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON data for ``json_script``: NaN becomes null, arrays lists."""
    result: dict[str, Any] = json.loads(fig.to_json())
    return result


def level_bands(thresholds: Thresholds) -> list[tuple[str, float, float]]:
    """(level, from, to) on the 0-100 scale, lowest first."""
    edges = [
        0.0,
        float(thresholds["moderate_from"]),
        float(thresholds["high_from"]),
        float(thresholds["very_high_from"]),
        100.0,
    ]
    return [(level, edges[k], edges[k + 1]) for k, level in enumerate(SCORED_LEVELS)]


def _base_layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": {"family": FONT, "size": 13, "color": "#1d2430"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 56, "r": 16, "t": 16, "b": 40},
        "hoverlabel": {"font": {"family": FONT}},
        # No Plotly theme: our own colours throughout, and a smaller page.
        "template": "none",
    }
    layout.update(extra)
    return layout


BAND_LABEL_MARGIN = 72


def _band_shapes_and_labels(
    thresholds: Thresholds,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shaded level bands behind a 0-100 chart, each labelled in text in the right margin
    (``BAND_LABEL_MARGIN`` wide)."""
    shapes = []
    labels = []
    for level, low, high in level_bands(thresholds):
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": low,
                "y1": high,
                "fillcolor": LEVEL_COLOURS[level],
                "opacity": 0.3,
                "line": {"width": 0},
                "layer": "below",
                "name": f"band-{level}",
            }
        )
        labels.append(
            {
                "xref": "paper",
                "yref": "y",
                # In the right margin, outside the plot: alert lines and the latest
                # month's values sit at the plot's right edge and would cover them.
                "x": 1,
                "y": (low + high) / 2,
                "xanchor": "left",
                "xshift": 4,
                "showarrow": False,
                "text": LEVEL_LABELS[level],
                "font": {"size": 11, "color": "#5b6473"},
            }
        )
    return shapes, labels


def _masked(values: pd.Series, keep: pd.Series) -> np.ndarray:
    """Values rounded to 2 decimals, NaN (a gap in a line) where ``keep`` is false.

    Numpy arrays rather than lists: Plotly checks them as a whole instead of value by
    value, and sends them to the browser as compact typed arrays.
    """
    array = np.round(values.to_numpy(dtype=np.float64), 2)
    return np.where(keep.to_numpy(dtype=bool), array, np.nan)


def _period_labels(periods: pd.Series) -> np.ndarray:
    # Day precision: to_json writes these as "YYYY-MM-DD", the form Plotly's date axes read.
    return pd.DatetimeIndex(periods).to_numpy(dtype="datetime64[D]")


# --- World map -------------------------------------------------------------------------


def world_map_figure(scores: pd.DataFrame, *, crime: str, thresholds: Thresholds) -> go.Figure:
    """A choropleth of one score per country, coloured by level band.

    ``scores`` columns: iso3, name, score (0-100 or NaN), level (of that score),
    change_12m, coverage (0-1). Countries whose level is insufficient_data get a grey
    trace of their own, labelled as such, so thin data never looks like low risk.
    Countries without a row are not drawn: the base map's light grey land means "no
    scores", distinct from both Low and the darker grey of insufficient data.
    """
    bands = level_bands(thresholds)
    # A stepped colour scale: each band is one flat colour between its thresholds.
    colourscale: list[list[float | str]] = []
    for level, low, high in bands:
        colourscale.append([low / 100, LEVEL_COLOURS[level]])
        colourscale.append([high / 100, LEVEL_COLOURS[level]])
    sufficient = scores[scores["level"] != "insufficient_data"]
    insufficient = scores[scores["level"] == "insufficient_data"]
    hover = (
        "<b>%{customdata[0]}</b><br>"
        + f"{CRIME_LABELS[crime]}: "
        + "%{customdata[1]}<br>Level: %{customdata[2]}<br>"
        + "12-month change: %{customdata[3]}<br>Coverage: %{customdata[4]}<extra></extra>"
    )

    def customdata(frame: pd.DataFrame) -> list[list[str]]:
        return [
            [
                str(row.name),
                _format_score(row.score),
                LEVEL_LABELS.get(str(row.level), str(row.level)),
                _format_change(row.change_12m),
                _format_share(row.coverage),
            ]
            for row in frame.itertuples(index=False)
        ]

    traces = [
        go.Choropleth(
            name=CRIME_LABELS[crime],
            locations=list(sufficient["iso3"]),
            locationmode="ISO-3",
            z=np.round(sufficient["score"].to_numpy(dtype=np.float64), 2),
            zmin=0,
            zmax=100,
            colorscale=colourscale,
            marker={"line": {"color": "#6b7280", "width": 0.4}},
            colorbar={
                "title": {"text": "Level"},
                "tickvals": [(low + high) / 2 for _level, low, high in bands],
                "ticktext": [LEVEL_LABELS[level] for level, _low, _high in bands],
                "len": 0.75,
                "thickness": 14,
            },
            customdata=customdata(sufficient),
            hovertemplate=hover,
        ),
        go.Choropleth(
            name=LEVEL_LABELS["insufficient_data"],
            locations=list(insufficient["iso3"]),
            locationmode="ISO-3",
            z=[0] * len(insufficient),
            colorscale=[[0, MAP_INSUFFICIENT_COLOUR], [1, MAP_INSUFFICIENT_COLOUR]],
            showscale=False,
            marker={"line": {"color": "#6b7280", "width": 0.4}},
            customdata=customdata(insufficient),
            hovertemplate=hover,
        ),
    ]
    layout = _base_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=360,
        geo={
            "projection": {"type": "natural earth"},
            "showframe": False,
            "showcoastlines": False,
            "showcountries": True,
            "countrycolor": "#b8bec8",
            "showland": True,
            "landcolor": MAP_NO_SCORES_COLOUR,
            "showocean": True,
            # Near white, so that the grey "no scores" land stands out from the sea.
            "oceancolor": "#f8fafc",
            "lataxis": {"range": [-58, 85]},
        },
    )
    return go.Figure(data=traces, layout=layout)


# --- Country trends --------------------------------------------------------------------


def trend_figure(
    history: pd.DataFrame,
    *,
    thresholds: Thresholds,
    alert_markers: Sequence[tuple[date, str]] = (),
) -> go.Figure:
    """Overall and crime-specific scores over time, over shaded level bands.

    ``history`` columns: period, overall, genocide, crimes_against_humanity, war_crimes,
    level (of the overall score). In periods with insufficient data the scores are not
    drawn on the bands; a grey dotted "insufficient data" line shows the overall score
    there instead. ``alert_markers`` are (date, label) pairs drawn as vertical lines.
    """
    x = _period_labels(history["period"])
    sufficient = history["level"] != "insufficient_data"
    traces = []
    for crime in CRIMES:
        traces.extend(
            _haloed_line(
                name=CRIME_LABELS[crime],
                x=x,
                y=_masked(history[crime], sufficient),
                colour=CRIME_COLOURS[crime],
                dash=CRIME_DASHES[crime],
                width=3 if crime == "overall" else 1.8,
                hovertemplate="%{y:.1f}",
            )
        )
    if not sufficient.all():
        traces.append(
            go.Scatter(
                name="Overall, insufficient data",
                x=x,
                y=_masked(history["overall"], ~sufficient),
                mode="lines+markers",
                line={"color": INSUFFICIENT_COLOUR, "width": 1.5, "dash": "dot"},
                marker={"symbol": "x-thin", "size": 6, "line": {"width": 1.5}},
                connectgaps=False,
                hovertemplate="%{y:.1f} (insufficient data)",
            )
        )
    shapes, annotations = _band_shapes_and_labels(thresholds)
    for when, label in alert_markers:
        stamp = pd.Timestamp(when).strftime("%Y-%m-%d")
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": stamp,
                "x1": stamp,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#a4161a", "width": 1.5, "dash": "dash"},
                "name": "alert",
            }
        )
        annotations.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": stamp,
                "y": 1,
                "yanchor": "bottom",
                "showarrow": False,
                "text": label,
                "font": {"size": 11, "color": "#a4161a"},
            }
        )
    layout = _base_layout(
        height=380,
        shapes=shapes,
        annotations=annotations,
        hovermode="x unified",
        yaxis={
            "range": [-2, 102],
            "title": {"text": "Score (0-100)"},
            "fixedrange": True,
            "automargin": True,
        },
        xaxis={"type": "date", "showgrid": False, "automargin": True},
        legend={"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"},
        # Room above the plot for the alert markers' "!" and the chart's toolbar.
        margin={"l": 56, "r": BAND_LABEL_MARGIN, "t": 36, "b": 40},
    )
    return go.Figure(data=traces, layout=layout)


FACTORS_SHOWN = 6


def contributions_figure(
    contributions: pd.DataFrame, *, factor_labels: Mapping[str, str]
) -> go.Figure:
    """Stacked areas: the points each factor adds to the overall score, over time.

    ``contributions`` columns: period, level (of the overall score), then one column per
    factor code (points, NaN or 0 when the factor adds nothing). Factors that never
    contribute in a month with enough data are left out. The stack's height is the
    overall score.

    The ``FACTORS_SHOWN`` factors with the most points (over the months with enough
    data) get a colour each and a label at the right end of their band; the others are
    stacked as one grey "other factors" band (hover names them), so no two bands need
    colours that cannot be told apart.

    Months whose level is insufficient_data are not stacked: a 1 % coverage country
    would otherwise show a solid area of real-looking points. They are a grey band
    labelled "Insufficient data" instead, and each run of months with enough data is
    a stack of its own, so that no area is drawn across the gap.
    """
    x = _period_labels(contributions["period"])
    sufficient = (contributions["level"] != "insufficient_data").to_numpy(dtype=bool)
    codes = [column for column in contributions.columns if column not in ("period", "level")]
    runs = _runs(sufficient)
    points = {
        code: np.round(contributions[code].fillna(0.0).to_numpy(dtype=np.float64), 2)
        for code in codes
    }
    contributing = [code for code in codes if points[code][sufficient].any()]
    ranked = sorted(contributing, key=lambda code: -float(points[code][sufficient].sum()))
    shown = [code for code in contributing if code in ranked[:FACTORS_SHOWN]]
    grouped = [code for code in contributing if code not in shown]
    bands: list[tuple[str, str, str, np.ndarray, str]] = [
        (
            code,
            f"{code} {_short(factor_labels.get(code, code), 34)}",
            f"{code} {_short(factor_labels.get(code, code))}: " + "%{y:.1f} points",
            points[code],
            FACTOR_PALETTE[position],
        )
        for position, code in enumerate(shown)
    ]
    if grouped:
        names = ", ".join(grouped)
        bands.append(
            (
                "other",
                f"Other factors ({len(grouped)})",
                f"Other factors ({names}): " + "%{y:.1f} points",
                np.round(sum(points[code] for code in grouped), 2),
                OTHER_FACTORS_COLOUR,
            )
        )
    traces = []
    for key, name, hover, values, colour in bands:
        for run, (start, stop) in enumerate(runs):
            traces.append(
                go.Scatter(
                    name=name,
                    legendgroup=key,
                    showlegend=run == 0,
                    x=x[start:stop],
                    y=values[start:stop],
                    # A lone month has no area to fill: a marker shows it.
                    mode="lines" if stop - start > 1 else "lines+markers",
                    stackgroup=f"contributions-{run}",
                    line={"width": 0.8, "color": "#ffffff"},
                    fillcolor=colour,
                    marker={"color": colour, "size": 6},
                    hovertemplate=hover + "<extra></extra>",
                )
            )
    labels = _band_end_labels(bands, x, sufficient)
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = list(labels)
    periods = pd.DatetimeIndex(contributions["period"])
    for start, stop in _runs(~sufficient):
        # Half a month either side, so that a single month is a visible band.
        left = (periods[start] - pd.Timedelta(days=15)).strftime("%Y-%m-%d")
        right = (periods[stop - 1] + pd.Timedelta(days=15)).strftime("%Y-%m-%d")
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": left,
                "x1": right,
                "y0": 0,
                "y1": 1,
                "fillcolor": LEVEL_COLOURS["insufficient_data"],
                "opacity": 0.5,
                "line": {"width": 0},
                "layer": "below",
                "name": "insufficient-data",
            }
        )
        if stop - start < 3 or not traces:
            # Too narrow for a label (the caption explains), or all of the chart, which
            # the note in its middle says.
            continue
        middle = periods[start] + (periods[stop - 1] - periods[start]) / 2
        annotations.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": middle.strftime("%Y-%m-%d"),
                "y": 1,
                "yanchor": "top",
                "showarrow": False,
                "text": "Insufficient data",
                "font": {"size": 11, "color": "#5b6473"},
            }
        )
    if not traces:
        annotations.append(
            {
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "text": "Insufficient data in every month: no contributions to show",
                "font": {"size": 13, "color": "#5b6473"},
            }
        )
    yaxis: dict[str, Any] = {
        "title": {"text": "Points of the overall score"},
        "rangemode": "tozero",
    }
    xaxis: dict[str, Any] = {"type": "date", "showgrid": False}
    if not traces:
        # Nothing for Plotly to fit the axes to: span the months, and the 0-100 scale.
        yaxis["range"] = [0, 100]
        if len(periods):
            xaxis["range"] = [shapes[0]["x0"], shapes[-1]["x1"]]
    layout = _base_layout(
        height=380,
        hovermode="x unified",
        shapes=shapes,
        annotations=annotations,
        yaxis={**yaxis, "automargin": True, "fixedrange": True},
        xaxis={**xaxis, "automargin": True},
        legend={"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"},
        margin={"l": 56, "r": BAND_LABEL_MARGIN if labels else 16, "t": 32, "b": 40},
        # Narrow screens: no room in the margin for the band labels (the legend names
        # the bands), and room for the legend, one band a line, without a scroll bar.
        meta={
            "narrow": {
                "margin.r": 8,
                "annotations": [a for a in annotations if a.get("name") != "band-label"],
                "height": 380 + 22 * len(bands),
            }
        },
    )
    return go.Figure(data=traces, layout=layout)


def _band_end_labels(
    bands: Sequence[tuple[str, str, str, np.ndarray, str]],
    x: np.ndarray,
    sufficient: np.ndarray,
) -> list[dict[str, Any]]:
    """A label in the right margin beside each band of the stack's last month with
    enough data, where it is tall enough to point at; the legend names them all."""
    if not sufficient.any() or not bands:
        return []
    last = int(np.flatnonzero(sufficient)[-1])
    total = sum(float(values[last]) for *_rest, values, _colour in bands)
    labels = []
    bottom = 0.0
    for key, _name, _hover, values, colour in bands:
        height = float(values[last])
        if total > 0 and height >= 0.06 * total:
            labels.append(
                {
                    "xref": "x",
                    "yref": "y",
                    "x": str(x[last]),
                    "y": bottom + height / 2,
                    "xanchor": "left",
                    "xshift": 6,
                    "showarrow": False,
                    "name": "band-label",
                    "text": "Other" if key == "other" else key,
                    "font": {"size": 11, "color": "#1d2430"},
                    "bgcolor": "rgba(255,255,255,0.9)",
                    "bordercolor": colour,
                    "borderwidth": 2,
                    "borderpad": 2,
                }
            )
        bottom += height
    return labels


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of the consecutive true values of ``flags``."""
    runs = []
    start: int | None = None
    for index, flag in enumerate(flags):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


SWITCH_COLOUR = "#6b4c9a"


def waterfall_figure(
    *,
    start: float,
    end: float,
    changes: Sequence[tuple[str, float]],
    start_label: str,
    end_label: str,
    factor_labels: Mapping[str, str],
    min_change: float = 0.05,
    switch_in: tuple[str, str, float] | None = None,
    switch_out: tuple[str, str, float] | None = None,
    score_label: str = "Overall score",
) -> go.Figure:
    """What moved a score between two dates, factor by factor.

    ``changes`` are (factor code, change in points) within one crime type, as
    ``scoring.explain_change`` gives them, biggest first; changes smaller than
    ``min_change`` are folded into one "other factors" step so that the bars still add
    up from ``start`` to ``end``. ``switch_in`` and ``switch_out`` are (from crime, to
    crime, points): the overall score following another crime type before the factor
    steps, or after them, each drawn as a step of its own in its own colour, labelled
    "Switch to …", so a change of crime type is never mistaken for a factor's move.
    """
    shown = [(code, delta) for code, delta in changes if abs(delta) >= min_change]
    rest = sum(delta for _code, delta in changes if abs(delta) < min_change)
    steps = [
        ("factor", code, f"{code} {_short(factor_labels.get(code, code), 60)}", delta)
        for code, delta in shown
    ]
    if abs(rest) >= 0.005:
        steps.append(("factor", "Other", "Other factors (each under 0.05 points)", rest))
    if switch_in is not None:
        steps.insert(0, _switch_step(*switch_in))
    if switch_out is not None:
        steps.append(_switch_step(*switch_out))
    x = [start_label, *(label for _kind, label, _hover, _delta in steps), end_label]
    y = [round(start, 2), *(round(delta, 2) for *_rest, delta in steps), round(end, 2)]
    hover = [
        f"{score_label} on {start_label}",
        *(text for _kind, _label, text, _delta in steps),
        f"{score_label} on {end_label}",
    ]
    texts = [f"{start:.1f}", *(f"{delta:+.1f}" for *_rest, delta in steps), f"{end:.1f}"]
    trace = go.Waterfall(
        name="What moved it",
        orientation="v",
        measure=["absolute", *(["relative"] * len(steps)), "total"],
        x=x,
        y=y,
        text=texts,
        textposition="outside",
        customdata=hover,
        hovertemplate="%{customdata}<br>%{text}<extra></extra>",
        increasing={"marker": {"color": RISE_COLOUR}},
        decreasing={"marker": {"color": FALL_COLOUR}},
        totals={"marker": {"color": TOTAL_COLOUR}},
        connector={"line": {"color": "#aab2bf", "width": 1}},
    )
    shapes = []
    running = start
    for position, (kind, _label, _hover, delta) in enumerate(steps, start=1):
        if kind == "switch":
            # A switch is not a factor: outlined in its own colour over its bar.
            low, high = sorted((running, running + delta))
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "y",
                    "x0": position - 0.4,
                    "x1": position + 0.4,
                    "y0": low,
                    "y1": high,
                    "line": {"color": SWITCH_COLOUR, "width": 2, "dash": "dot"},
                    "fillcolor": "rgba(0,0,0,0)",
                    "name": "crime-type-switch",
                }
            )
        running += delta
    cumulative = np.cumsum([start, *(delta for *_rest, delta in steps)])
    top = max([start, end, *cumulative], default=0.0)
    layout = _base_layout(
        height=360,
        showlegend=False,
        shapes=shapes,
        yaxis={
            "title": {"text": score_label},
            "range": [0, max(10.0, top * 1.18)],
            "automargin": True,
            "fixedrange": True,
        },
        xaxis={"type": "category", "automargin": True, "tickangle": 0, "fixedrange": True},
        margin={"l": 56, "r": 16, "t": 24, "b": 40},
        # A phone has no room for the step names side by side: they stand upright.
        meta={"narrow": {"xaxis.tickangle": -90, "height": 420}},
    )
    return go.Figure(data=[trace], layout=layout)


def _switch_step(from_crime: str, to_crime: str, delta: float) -> tuple[str, str, str, float]:
    to_words = CRIME_LABELS.get(to_crime, to_crime).lower()
    from_words = CRIME_LABELS.get(from_crime, from_crime).lower()
    return (
        "switch",
        f"Switch to {to_words}",
        f"Crime-type switch: the overall score follows {to_words} instead of {from_words}",
        delta,
    )


# --- Comparison ------------------------------------------------------------------------


def compare_trend_figure(history: pd.DataFrame, *, thresholds: Thresholds) -> go.Figure:
    """One overall-score line per country over the level bands.

    ``history`` columns: period, iso3, name, overall, level. Periods with insufficient
    data are gaps in a country's line. Each line has its own dark colour and dash and a
    white outline (a wider white line beneath it), so it stays visible on every band.
    """
    traces = []
    for position, (name, rows) in enumerate(history.groupby("name", sort=True)):
        rows = rows.sort_values("period")
        x = _period_labels(rows["period"])
        y = _masked(rows["overall"], rows["level"] != "insufficient_data")
        traces.extend(
            _haloed_line(
                name=str(name),
                x=x,
                y=y,
                colour=LINE_PALETTE[position % len(LINE_PALETTE)],
                dash=LINE_DASHES[position % len(LINE_DASHES)],
                width=2.4,
                hovertemplate=f"{name}: " + "%{y:.1f}<extra></extra>",
            )
        )
    shapes, annotations = _band_shapes_and_labels(thresholds)
    layout = _base_layout(
        height=420,
        shapes=shapes,
        annotations=annotations,
        hovermode="x unified",
        yaxis={
            "range": [-2, 102],
            "title": {"text": "Overall score (0-100)"},
            "automargin": True,
            "fixedrange": True,
        },
        xaxis={"type": "date", "showgrid": False, "automargin": True},
        legend={"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"},
        margin={"l": 56, "r": BAND_LABEL_MARGIN, "t": 32, "b": 40},
    )
    return go.Figure(data=traces, layout=layout)


def _haloed_line(
    *,
    name: str,
    x: Any,
    y: Any,
    colour: str,
    dash: str,
    width: float,
    hovertemplate: str,
) -> list[go.Scatter]:
    """A line and, beneath it, the same line wider in white (no legend, no hover)."""
    return [
        go.Scatter(
            name=f"{name} outline",
            x=x,
            y=y,
            mode="lines",
            line={"color": HALO, "width": width + 3},
            connectgaps=False,
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
        ),
        go.Scatter(
            name=name,
            x=x,
            y=y,
            mode="lines",
            line={"color": colour, "width": width, "dash": dash},
            connectgaps=False,
            hovertemplate=hovertemplate,
            legendgroup=name,
        ),
    ]


THIN_CELL_COLOUR = "#e4e7ec"


def factor_profile_figure(
    profile: pd.DataFrame,
    *,
    factor_labels: Mapping[str, str],
    coverage: pd.DataFrame | None = None,
    min_coverage: float = 0.0,
) -> go.Figure:
    """A heatmap of factor scores (0-1): one row per factor, one column per country (a
    phone has room for eight columns, not fourteen).

    ``profile``: index = country names (left to right), columns = factor codes (top to
    bottom), NaN where a factor has no data (blank, "no data" on hover). ``coverage``:
    the same shape, the share of each factor's indicator weight with data (0-1); cells
    under ``min_coverage`` are thin data: drawn grey and marked "thin" instead of in
    the risk colours, the score only on hover, so one indicator of twelve does not look
    like a reading of risk.
    """
    codes = list(profile.columns)
    countries = [str(name) for name in profile.index]
    values = profile.T.to_numpy(dtype=np.float64)  # factors x countries
    shares = (
        np.ones_like(values)
        if coverage is None
        else coverage.reindex(index=profile.index, columns=codes).T.to_numpy(dtype=np.float64)
    )
    thin = ~np.isnan(values) & ~(np.nan_to_num(shares, nan=0.0) >= min_coverage - 1e-12)
    rounded = np.round(values, 2)
    hover = [
        [
            f"{country}<br>{code} {_short(factor_labels.get(code, code), 50)}<br>"
            + (
                "no data"
                if np.isnan(v)
                else f"factor score {v:.2f}, {_format_share(share)} of its indicators' weight"
                + (" (thin data: not a reading of risk)" if is_thin else "")
            )
            for country, v, share, is_thin in zip(countries, row, share_row, thin_row, strict=True)
        ]
        for code, row, share_row, thin_row in zip(codes, rounded, shares, thin, strict=True)
    ]
    y_text = [f"{code} {_short(factor_labels.get(code, code), 26)}" for code in codes]
    common = {
        "x": countries,
        "y": codes,
        "customdata": hover,
        "hovertemplate": "%{customdata}<extra></extra>",
        "xgap": 2,
        "ygap": 2,
    }
    scored = go.Heatmap(
        z=_nested(np.where(thin, np.nan, rounded)),
        zmin=0,
        zmax=1,
        colorscale=[
            [0.0, LEVEL_COLOURS["low"]],
            [0.33, LEVEL_COLOURS["moderate"]],
            [0.66, LEVEL_COLOURS["high"]],
            [1.0, LEVEL_COLOURS["very_high"]],
        ],
        text=[
            ["" if np.isnan(v) or t else f"{v:.2f}" for v, t in zip(row, trow, strict=True)]
            for row, trow in zip(rounded, thin, strict=True)
        ],
        texttemplate="%{text}",
        colorbar={"title": {"text": "Factor score"}, "thickness": 12, "len": 0.6},
        name="Factor score",
        **common,
    )
    thin_cells = go.Heatmap(
        z=_nested(np.where(thin, 1.0, np.nan)),
        zmin=0,
        zmax=1,
        colorscale=[[0.0, THIN_CELL_COLOUR], [1.0, THIN_CELL_COLOUR]],
        showscale=False,
        text=[["thin" if t else "" for t in trow] for trow in thin],
        texttemplate="%{text}",
        textfont={"color": "#5b6473", "size": 11},
        name="Thin data",
        **common,
    )
    layout = _base_layout(
        height=max(260, 90 + 30 * len(codes)),
        xaxis={"side": "top", "type": "category", "automargin": True, "fixedrange": True},
        yaxis={
            "autorange": "reversed",
            "type": "category",
            "tickvals": codes,
            "ticktext": y_text,
            "automargin": True,
            "fixedrange": True,
        },
        margin={"l": 8, "r": 8, "t": 40, "b": 16},
        plot_bgcolor="#f4f6f9",
        # Narrow screens show the factor codes only (charts.js applies this).
        meta={"narrow": {"yaxis.ticktext": codes}},
    )
    return go.Figure(data=[scored, thin_cells], layout=layout)


def _nested(values: np.ndarray) -> list[list[float | None]]:
    """A 2-D array as nested lists, None for NaN (a blank cell)."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


# --- Sparklines ------------------------------------------------------------------------


def sparkline_points(values: Sequence[float], *, width: int = 96, height: int = 24) -> str:
    """SVG ``points`` for a tiny line of values in [0, 1], oldest first (no axes, no JS).

    One value gives a short flat line; no values give an empty string.
    """
    if not values:
        return ""
    pad = 2.0
    usable_h = height - 2 * pad
    if len(values) == 1:
        y = pad + (1 - float(values[0])) * usable_h
        return f"{pad:.1f},{y:.1f} {width - pad:.1f},{y:.1f}"
    step = (width - 2 * pad) / (len(values) - 1)
    return " ".join(
        f"{pad + k * step:.1f},{pad + (1 - float(v)) * usable_h:.1f}" for k, v in enumerate(values)
    )


# --- Formatting ------------------------------------------------------------------------


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _format_score(value: Any) -> str:
    return "no score" if value is None or value != value else f"{float(value):.1f}"


def _format_change(value: Any) -> str:
    return "unknown" if value is None or value != value else f"{float(value):+.1f} points"


def _format_share(value: Any) -> str:
    return "unknown" if value is None or value != value else f"{float(value):.0%}"

"""The backtest chart (pure: a result in, a Plotly figure out)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from indicators.backtest import BacktestResult

# Okabe-Ito colours: told apart with every kind of colour blindness.
CAUGHT = "#0072B2"
MISSED = "#E69F00"
AUC_LINE = "#1d2430"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"


def backtest_figure(result: BacktestResult, *, k: int = 30) -> go.Figure:
    """Per base year: the countries followed by an onset that the top ``k`` held and
    those it missed (bars), and the year's AUC (a line on the right axis)."""
    years = [y.base_year for y in result.years]
    caught = [y.hits.get(k, 0) for y in result.years]
    missed = [y.onsets - y.hits.get(k, 0) for y in result.years]
    auc = [y.auc for y in result.years]
    figure = go.Figure()
    figure.add_bar(
        x=years,
        y=caught,
        name=f"Onset within 2 years, ranked in the top {k}",
        marker_color=CAUGHT,
        hovertemplate="%{x}: %{y} caught<extra></extra>",
    )
    figure.add_bar(
        x=years,
        y=missed,
        name=f"Onset within 2 years, ranked below {k}",
        marker_color=MISSED,
        marker_pattern_shape="/",
        hovertemplate="%{x}: %{y} missed<extra></extra>",
    )
    figure.add_scatter(
        x=years,
        y=auc,
        name="AUC of the year (right axis)",
        yaxis="y2",
        mode="lines+markers",
        line={"color": AUC_LINE, "width": 2},
        connectgaps=False,
        hovertemplate="%{x}: AUC %{y:.2f}<extra></extra>",
    )
    layout: dict[str, Any] = {
        "barmode": "stack",
        "font": {"family": FONT, "size": 13, "color": "#1d2430"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "template": "none",
        "margin": {"l": 56, "r": 56, "t": 16, "b": 40},
        "height": 360,
        "xaxis": {"title": {"text": "Base year (December ranking)"}, "dtick": 2},
        "yaxis": {"title": {"text": "Countries with an onset"}, "rangemode": "tozero"},
        "yaxis2": {
            "title": {"text": "AUC"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "showgrid": False,
        },
        "legend": {"orientation": "h", "y": -0.22},
    }
    figure.update_layout(**layout)
    return figure

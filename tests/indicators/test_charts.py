"""The pure chart builders on tiny frames: no database, no browser."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from indicators import charts

THRESHOLDS = {"moderate_from": 25.0, "high_from": 50.0, "very_high_from": 75.0}
ROOT = Path(__file__).resolve().parents[2]
NAN = float("nan")


def history_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]),
            "overall": [10.0, 30.0, 55.0, 80.0],
            "genocide": [10.0, 30.0, 55.0, 80.0],
            "crimes_against_humanity": [5.0, 20.0, 40.0, 60.0],
            "war_crimes": [float("nan"), 10.0, 20.0, 30.0],
            "level": ["insufficient_data", "moderate", "high", "very_high"],
        }
    )


def test_level_colours_match_the_stylesheet():
    css = (ROOT / "static" / "css" / "earlywarning.css").read_text()
    variables = dict(re.findall(r"--level-([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    assert variables["low"].lower() == charts.LEVEL_COLOURS["low"]
    assert variables["moderate"].lower() == charts.LEVEL_COLOURS["moderate"]
    assert variables["high"].lower() == charts.LEVEL_COLOURS["high"]
    assert variables["very-high"].lower() == charts.LEVEL_COLOURS["very_high"]
    assert variables["insufficient"].lower() == charts.LEVEL_COLOURS["insufficient_data"]
    map_greys = dict(re.findall(r"--map-([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    assert map_greys["insufficient"].lower() == charts.MAP_INSUFFICIENT_COLOUR
    assert map_greys["no-scores"].lower() == charts.MAP_NO_SCORES_COLOUR


def test_level_bands_follow_the_thresholds():
    bands = charts.level_bands({"moderate_from": 20, "high_from": 40, "very_high_from": 70})
    assert bands == [
        ("low", 0.0, 20.0),
        ("moderate", 20.0, 40.0),
        ("high", 40.0, 70.0),
        ("very_high", 70.0, 100.0),
    ]


def lines(fig) -> list:
    """The figure's lines without their white outlines."""
    return [trace for trace in fig.data if trace.showlegend is not False]


def test_the_trend_chart_draws_four_scores_over_shaded_level_bands():
    fig = charts.trend_figure(history_frame(), thresholds=THRESHOLDS)
    names = [trace.name for trace in lines(fig)]
    assert names == [
        "Overall (any atrocity crime)",
        "Genocide",
        "Crimes against humanity",
        "War crimes",
        "Overall, insufficient data",
    ]
    overall = lines(fig)[0]
    # The insufficient month is not drawn on the bands, only on the grey dotted line.
    assert_array_equal(overall.y, [NAN, 30.0, 55.0, 80.0])
    assert_array_equal(lines(fig)[4].y, [10.0, NAN, NAN, NAN])
    assert lines(fig)[4].line.dash == "dot"
    assert_array_equal(lines(fig)[3].y, [NAN, 10.0, 20.0, 30.0])
    # Each score line has a white outline beneath it, so no band hides it.
    outline = fig.data[0]
    assert (outline.hoverinfo, outline.line.width) == ("skip", overall.line.width + 3)
    assert_array_equal(outline.y, overall.y)
    bands = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert [(s.y0, s.y1) for s in bands] == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert [s.fillcolor for s in bands] == [
        charts.LEVEL_COLOURS[level] for level in ("low", "moderate", "high", "very_high")
    ]
    assert [a.text for a in fig.layout.annotations] == ["Low", "Moderate", "High", "Very high"]
    assert tuple(fig.layout.yaxis.range) == (-2, 102)  # headroom for lines at 0 or 100
    # Band labels sit in the right margin, where alert lines at the latest month can't
    # cover them.
    assert all((a.x, a.xanchor) == (1, "left") for a in fig.layout.annotations)
    assert fig.layout.margin.r >= charts.BAND_LABEL_MARGIN


def test_the_trend_chart_has_no_grey_line_when_all_data_is_sufficient():
    frame = history_frame().iloc[1:]
    fig = charts.trend_figure(frame, thresholds=THRESHOLDS)
    assert len(lines(fig)) == 4


def test_alert_markers_become_vertical_lines_with_labels():
    fig = charts.trend_figure(
        history_frame(),
        thresholds=THRESHOLDS,
        alert_markers=[(date(2024, 3, 31), "Surge")],
    )
    lines = [shape for shape in fig.layout.shapes if shape.type == "line"]
    assert len(lines) == 1
    assert lines[0].x0 == "2024-03-31"
    assert fig.layout.annotations[-1].text == "Surge"


def test_the_world_map_colours_by_level_band_and_greys_out_thin_data():
    scores = pd.DataFrame(
        {
            "iso3": ["SDN", "NOR", "MMR"],
            "name": ["Sudan", "Norway", "Myanmar"],
            "score": [82.5, 12.0, 60.0],
            "level": ["very_high", "low", "insufficient_data"],
            "change_12m": [10.0, float("nan"), 1.0],
            "coverage": [0.8, 0.5, 0.1],
        }
    )
    fig = charts.world_map_figure(scores, crime="overall", thresholds=THRESHOLDS)
    scored, thin = fig.data
    assert scored.type == "choropleth"
    assert scored.locationmode == "ISO-3"
    assert list(scored.locations) == ["SDN", "NOR"]
    assert list(scored.z) == [82.5, 12.0]
    assert (scored.zmin, scored.zmax) == (0, 100)
    # A stepped scale: flat colour from one threshold to the next.
    assert [tuple(step) for step in scored.colorscale[:4]] == [
        (0.0, charts.LEVEL_COLOURS["low"]),
        (0.25, charts.LEVEL_COLOURS["low"]),
        (0.25, charts.LEVEL_COLOURS["moderate"]),
        (0.5, charts.LEVEL_COLOURS["moderate"]),
    ]
    assert list(scored.colorbar.ticktext) == ["Low", "Moderate", "High", "Very high"]
    assert list(scored.customdata[0]) == ["Sudan", "82.5", "Very high", "+10.0 points", "80%"]
    assert scored.customdata[1][3] == "unknown"
    assert list(thin.locations) == ["MMR"]
    assert thin.customdata[0][2] == "Insufficient data"
    assert thin.showscale is False
    assert "12-month change" in scored.hovertemplate
    # "No scores" (bare land), "insufficient data" and Low are three different colours.
    land = fig.layout.geo.landcolor
    assert {tuple(step)[1] for step in thin.colorscale} == {charts.MAP_INSUFFICIENT_COLOUR}
    assert len({land, charts.MAP_INSUFFICIENT_COLOUR, charts.LEVEL_COLOURS["low"]}) == 3
    assert land not in ("#ffffff", "white")


def test_the_contributions_chart_stacks_the_factors_that_contribute():
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-31", "2024-02-29"]),
            "level": ["moderate", "high"],
            "RF1": [10.0, 12.0],
            "RF2": [float("nan"), 3.0],
            "RF9": [0.0, 0.0],
        }
    )
    fig = charts.contributions_figure(frame, factor_labels={"RF1": "Armed conflict"})
    assert [trace.name for trace in fig.data] == ["RF1 Armed conflict", "RF2 RF2"]
    assert all(trace.stackgroup == "contributions-0" for trace in fig.data)
    assert list(fig.data[1].y) == [0.0, 3.0]
    assert "Armed conflict" in fig.data[0].hovertemplate
    assert fig.layout.shapes == ()
    # Each band is labelled at its right end, in a box of its colour.
    labels = [a for a in fig.layout.annotations if a.name == "band-label"]
    assert [(a.text, a.bordercolor) for a in labels] == [
        ("RF1", charts.FACTOR_PALETTE[0]),
        ("RF2", charts.FACTOR_PALETTE[1]),
    ]


def test_the_contributions_chart_colours_the_biggest_factors_and_groups_the_rest():
    periods = pd.to_datetime(["2024-01-31", "2024-02-29"])
    points = {f"RF{n}": [float(n), float(n)] for n in range(1, 11)}
    frame = pd.DataFrame({"period": periods, "level": ["high", "high"], **points})
    fig = charts.contributions_figure(frame, factor_labels={})
    names = [trace.name for trace in fig.data]
    assert len(names) == charts.FACTORS_SHOWN + 1
    assert names[-1] == "Other factors (4)"
    assert {name.split()[0] for name in names[:-1]} == {f"RF{n}" for n in range(5, 11)}
    other = fig.data[-1]
    assert list(other.y) == [10.0, 10.0]  # RF1 to RF4
    assert other.fillcolor == charts.OTHER_FACTORS_COLOUR
    assert "RF1, RF2, RF3, RF4" in other.hovertemplate
    # Colour-blind-safe colours, one per factor shown, none of them yellow.
    colours = [trace.fillcolor for trace in fig.data[:-1]]
    assert len(set(colours)) == charts.FACTORS_SHOWN
    assert "#f0e442" not in colours


def test_the_contributions_chart_does_not_stack_months_with_insufficient_data():
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(
                ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
            ),
            "level": ["high", "insufficient_data", "insufficient_data", "insufficient_data", "low"],
            "RF1": [10.0, 90.0, 90.0, 90.0, 5.0],
            # Points only in thin months: not a contribution worth a legend entry.
            "RF2": [0.0, 10.0, 10.0, 10.0, 0.0],
        }
    )
    fig = charts.contributions_figure(frame, factor_labels={})
    # Each run of months with enough data is a stack of its own, so no area spans the gap.
    assert [(t.name, t.stackgroup, list(t.y)) for t in fig.data] == [
        ("RF1 RF1", "contributions-0", [10.0]),
        ("RF1 RF1", "contributions-1", [5.0]),
    ]
    assert [t.showlegend for t in fig.data] == [True, False]
    assert fig.data[0].mode == "lines+markers"  # a lone month is a point, not an invisible area
    (band,) = fig.layout.shapes
    assert (band.x0, band.x1) == ("2024-02-14", "2024-05-15")
    assert band.fillcolor == charts.LEVEL_COLOURS["insufficient_data"]
    assert [a.text for a in fig.layout.annotations if a.name != "band-label"] == [
        "Insufficient data"
    ]


def test_the_contributions_chart_says_so_when_every_month_has_insufficient_data():
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-31", "2024-02-29"]),
            "level": ["insufficient_data", "insufficient_data"],
            "RF1": [100.0, 100.0],
        }
    )
    fig = charts.contributions_figure(frame, factor_labels={})
    assert fig.data == ()
    assert "Insufficient data in every month" in fig.layout.annotations[-1].text
    assert tuple(fig.layout.yaxis.range) == (0, 100)
    # The axis spans the grey band of those months, not Plotly's default dates.
    assert tuple(fig.layout.xaxis.range) == ("2024-01-16", "2024-03-15")


def test_the_waterfall_goes_from_start_to_end_through_the_factor_changes():
    fig = charts.waterfall_figure(
        start=40.0,
        end=52.0,
        changes=[("RF1", 9.0), ("RF8", 3.02), ("RF2", 0.01), ("RF3", -0.01)],
        start_label="Jan 2024",
        end_label="Jan 2025",
        factor_labels={"RF1": "Armed conflict", "RF8": "Triggering factors"},
    )
    (trace,) = fig.data
    assert trace.type == "waterfall"
    assert list(trace.x) == ["Jan 2024", "RF1", "RF8", "Jan 2025"]
    assert list(trace.measure) == ["absolute", "relative", "relative", "total"]
    assert list(trace.y) == [40.0, 9.0, 3.02, 52.0]
    assert list(trace.text) == ["40.0", "+9.0", "+3.0", "52.0"]
    assert trace.increasing.marker.color == charts.RISE_COLOUR


def test_the_waterfall_folds_small_changes_into_other_factors():
    fig = charts.waterfall_figure(
        start=10.0,
        end=10.12,
        changes=[("RF1", 0.04), ("RF2", 0.04), ("RF3", 0.04)],
        start_label="a",
        end_label="b",
        factor_labels={},
    )
    assert list(fig.data[0].x) == ["a", "Other", "b"]
    assert fig.data[0].y[1] == pytest.approx(0.12)


def test_a_crime_type_switch_is_a_step_of_its_own_in_its_own_outline():
    fig = charts.waterfall_figure(
        start=40.0,
        end=60.0,
        changes=[("RF13", 31.5), ("RF1", -1.5)],
        start_label="Jan 2024",
        end_label="Jun 2024",
        factor_labels={"RF13": "Armed conflict"},
        switch_in=("genocide", "war_crimes", -10.0),
    )
    (trace,) = fig.data
    assert list(trace.x) == ["Jan 2024", "Switch to war crimes", "RF13", "RF1", "Jun 2024"]
    assert list(trace.y) == [40.0, -10.0, 31.5, -1.5, 60.0]
    assert "follows war crimes instead of genocide" in trace.customdata[1]
    (outline,) = [s for s in fig.layout.shapes if s.name == "crime-type-switch"]
    assert (outline.x0, outline.x1, outline.y0, outline.y1) == (0.6, 1.4, 30.0, 40.0)


def test_the_compare_chart_has_one_line_per_country_with_gaps_for_thin_data():
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-31", "2024-02-29"] * 2),
            "iso3": ["SDN", "SDN", "NOR", "NOR"],
            "name": ["Sudan", "Sudan", "Norway", "Norway"],
            "overall": [50.0, 60.0, 5.0, 6.0],
            "level": ["high", "high", "insufficient_data", "low"],
        }
    )
    fig = charts.compare_trend_figure(frame, thresholds=THRESHOLDS)
    assert [trace.name for trace in lines(fig)] == ["Norway", "Sudan"]
    assert_array_equal(lines(fig)[0].y, [NAN, 6.0])
    # Dark colours, each its own dash, and white outlines: no line vanishes on a band.
    assert len({(t.line.color, t.line.dash) for t in lines(fig)}) == 2
    assert all(t.line.color not in charts.LEVEL_COLOURS.values() for t in lines(fig))
    assert [t.line.color for t in fig.data if t.showlegend is False] == [charts.HALO] * 2
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 4


def test_the_factor_profile_is_a_heatmap_with_blank_cells_for_no_data():
    profile = pd.DataFrame(
        {"RF1": [0.9, 0.1], "RF2": [float("nan"), 0.2]}, index=["Sudan", "Norway"]
    )
    fig = charts.factor_profile_figure(profile, factor_labels={"RF1": "Armed conflict"})
    trace = fig.data[0]
    assert trace.type == "heatmap"
    # Factors down, countries across: eight countries fit a phone, fourteen factors do not.
    assert list(trace.x) == ["Sudan", "Norway"]
    assert list(trace.y) == ["RF1", "RF2"]
    assert list(fig.layout.yaxis.ticktext) == ["RF1 Armed conflict", "RF2 RF2"]
    assert trace.z[1][0] is None
    assert "no data" in trace.customdata[1][0]
    assert (trace.zmin, trace.zmax) == (0, 1)


def test_thin_factor_scores_are_grey_and_marked_thin_not_coloured_as_risk():
    profile = pd.DataFrame({"RF1": [0.9, 0.1], "RF2": [0.95, 0.2]}, index=["Sudan", "Norway"])
    coverage = pd.DataFrame({"RF1": [0.5, 0.5], "RF2": [1 / 12, 0.5]}, index=profile.index)
    fig = charts.factor_profile_figure(
        profile, factor_labels={}, coverage=coverage, min_coverage=0.15
    )
    scored, thin = fig.data
    assert scored.z[1][0] is None  # Sudan's RF2 is not drawn in the risk colours
    assert scored.z[0][0] == 0.9
    assert thin.z[1][0] == 1.0
    assert thin.text[1][0] == "thin"
    assert "thin data" in scored.customdata[1][0]
    assert "8%" in scored.customdata[1][0]


def test_figure_json_is_strict_json_for_the_template():
    fig = charts.trend_figure(history_frame(), thresholds=THRESHOLDS)
    data = charts.figure_json(fig)
    json.dumps(data, allow_nan=False)  # json_script would otherwise write a bare NaN
    assert data["data"][0]["x"][:2] == ["2024-01-31", "2024-02-29"]
    assert data["layout"]["shapes"][0]["type"] == "rect"
    assert "layout" not in data["layout"]["template"]  # no theme: smaller pages


def test_sparkline_points_scale_values_into_the_box():
    assert charts.sparkline_points([]) == ""
    assert charts.sparkline_points([0.5], width=20, height=12) == "2.0,6.0 18.0,6.0"
    points = charts.sparkline_points([0.0, 1.0], width=20, height=12).split()
    assert points == ["2.0,10.0", "18.0,2.0"]
    assert all(not math.isnan(float(xy.split(",")[1])) for xy in points)


def test_the_plotly_bundle_holds_every_trace_type_the_charts_draw():
    first_line = (ROOT / "static/vendor/plotly/plotly-dashboard.min.js").open().readline()
    bundled = set(re.search(r"traces: ([a-z, ]+);", first_line).group(1).split(", "))
    profile = pd.DataFrame({"RF1": [0.5]}, index=["Sudan"])
    contributions = pd.DataFrame(
        {"period": pd.to_datetime(["2024-01-31"]), "level": ["high"], "RF1": [10.0]}
    )
    map_scores = pd.DataFrame(
        {
            "iso3": ["SDN"],
            "name": ["Sudan"],
            "score": [60.0],
            "level": ["high"],
            "change_12m": [1.0],
            "coverage": [0.5],
        }
    )
    figures = [
        charts.world_map_figure(map_scores, crime="overall", thresholds=THRESHOLDS),
        charts.trend_figure(history_frame(), thresholds=THRESHOLDS),
        charts.contributions_figure(contributions, factor_labels={}),
        charts.waterfall_figure(
            start=1.0,
            end=2.0,
            changes=[("RF1", 1.0)],
            start_label="a",
            end_label="b",
            factor_labels={},
        ),
        charts.compare_trend_figure(
            history_frame().assign(iso3="SDN", name="Sudan"), thresholds=THRESHOLDS
        ),
        charts.factor_profile_figure(profile, factor_labels={}),
    ]
    drawn = {trace.type for fig in figures for trace in fig.data}
    assert drawn <= bundled, f"rebuild the bundle with {sorted(drawn - bundled)}"
    assert "plotly.js v" in first_line

"""The dashboard pages: roles, empty states, content, CSV, the assessment form, query counts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta

import pandas as pd
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from countries.models import Country
from indicators.models import Indicator, Observation, RiskScore
from indicators.selectors import published_methodology
from indicators.services import record_observations, refresh_scores

pytestmark = pytest.mark.usefixtures("countries", "framework")

ROLES = ["analyst", "focal_point", "administrator"]


def month_start(months_back: int) -> date:
    """The first day of the month ``months_back`` months before the last complete one
    (scores never show the month under way)."""
    today = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    year, month = divmod(today.year * 12 + today.month - 1 - months_back, 12)
    return date(year, month + 1, 1)


def observe(iso3s: list[str], *, value: float, months_back: int = 14, every: int = 1) -> None:
    """Every indicator (or every ``every``-th) observed at the start and in the last month.

    The later value is higher, so scores rise and the "what moved it" chart has moves.
    """
    codes = list(Indicator.objects.values_list("code", flat=True))[::every]
    rows = []
    for iso3 in iso3s:
        for code in codes:
            for when, severity in ((month_start(months_back), value), (month_start(0), 1.0)):
                rows.append(
                    {
                        "country": iso3,
                        "indicator": code,
                        "observed_on": when,
                        "value": severity,
                        "source": "Test assessment",
                        "source_url": "https://example.org/report",
                        "confidence": "high",
                    }
                )
    record_observations(rows=rows, recompute=False)


@pytest.fixture
def scored() -> None:
    """Sudan rising to very high, Norway low then high, Myanmar with too little data."""
    observe(["SDN"], value=2 / 3)
    observe(["NOR"], value=0.0)
    record_observations(
        rows=[
            {
                "country": "MMR",
                "indicator": "1.1",
                "observed_on": month_start(3),
                "value": 1.0,
                "source": "Test assessment",
            }
        ],
        recompute=False,
    )
    refresh_scores()


@pytest.fixture(autouse=True)
def _clear_login_throttle(db):
    cache.clear()
    yield
    cache.clear()


PAGES = [
    ("overview", ()),
    ("country", ("SDN",)),
    ("compare", ()),
    ("factor", ("RF1",)),
    ("methodology", ()),
    ("country-scores-csv", ("SDN",)),
    ("country-observations-csv", ("SDN",)),
]


# --- Access ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "args"), [*PAGES, ("observation-new", ())])
def test_anonymous_visitors_are_sent_to_log_in(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize(("name", "args"), [*PAGES, ("observation-new", ())])
def test_a_user_without_a_role_is_refused(client, no_role_user, name, args):
    client.force_login(no_role_user)
    assert client.get(reverse(name, args=args)).status_code == 403


@pytest.mark.parametrize("role", ["focal_point", "administrator"])
def test_only_analysts_may_record_assessments(client, request, role):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("observation-new")).status_code == 403
    response = client.post(reverse("observation-new"), {"country": "SDN"})
    assert response.status_code == 403
    assert not Observation.objects.exists()


def test_unknown_country_and_factor_are_404(client, analyst):
    client.force_login(analyst)
    assert client.get(reverse("country", args=["XXX"])).status_code == 404
    assert client.get(reverse("country-scores-csv", args=["XXX"])).status_code == 404
    assert client.get(reverse("factor", args=["RF99"])).status_code == 404


# --- Pages with and without data -------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "args"), PAGES)
def test_every_page_renders_for_every_role_without_data(client, request, role, name, args):
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    if not name.endswith("csv") and name not in ("compare", "methodology"):
        assert b"No scores yet" in response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "args"), PAGES)
def test_every_page_renders_for_every_role_with_data(client, request, scored, role, name, args):
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    assert b"No scores yet" not in response.content


def test_the_overview_maps_and_ranks_the_scored_countries(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("overview"))
    figure = response.context["map_figure"]
    scored_trace, insufficient_trace = figure["data"]
    assert scored_trace["type"] == "choropleth"
    assert scored_trace["locationmode"] == "ISO-3"
    assert sorted(scored_trace["locations"]) == ["NOR", "SDN"]
    assert insufficient_trace["locations"] == ["MMR"]
    names = [row["name"] for row in response.context["rows"]]
    # Both reached 100; Myanmar's thin data ranks last whatever its number.
    assert names == ["Norway", "Sudan", "Myanmar"]
    content = response.content.decode()
    assert 'id="map-figure"' in content
    assert "vendor/plotly/plotly-dashboard.min.js" in content
    assert "cdn.plot.ly" not in content
    assert "Insufficient data" in content
    # Movers: Norway rose most over 12 months (from 0 to 100); Myanmar is left out.
    assert response.context["movers_12m"][0]["iso3"] == "NOR"
    assert all(row["iso3"] != "MMR" for row in response.context["movers_3m"])


def test_the_overview_switches_crime_type_and_month(client, analyst, scored):
    client.force_login(analyst)
    earlier = month_start(6)
    response = client.get(
        reverse("overview"), {"crime": "war_crimes", "date": earlier.strftime("%Y-%m")}
    )
    assert response.context["crime"] == "war_crimes"
    assert response.context["period"].strftime("%Y-%m") == earlier.strftime("%Y-%m")
    assert "War crimes" in response.content.decode()
    bad = client.get(reverse("overview"), {"crime": "nonsense", "date": "junk"})
    assert bad.status_code == 200
    assert bad.context["crime"] == "overall"


def test_a_crime_specific_overview_uses_that_crimes_coverage_and_changes(client, analyst, scored):
    client.force_login(analyst)
    latest = RiskScore.objects.filter(country__iso3="SDN").latest("period")
    scores = RiskScore.objects.filter(country__iso3="SDN", methodology=latest.methodology)
    # Genocide rose 40 points over 12 months on thin data of its own, while the
    # overall score had full coverage and a different change.
    scores.filter(pk=latest.pk).update(
        genocide=60.0, coverage=0.9, coverage_genocide=0.1, change_12m=3.0, change_3m=1.0
    )
    back = {
        months: (pd.Timestamp(latest.period) - pd.offsets.MonthEnd(months)).date()
        for months in (3, 12)
    }
    scores.filter(period=back[3]).update(genocide=50.0)
    scores.filter(period=back[12]).update(genocide=20.0)

    response = client.get(reverse("overview"), {"crime": "genocide"})
    row = next(row for row in response.context["rows"] if row["iso3"] == "SDN")
    assert row["coverage"] == pytest.approx(0.1)
    assert row["crime_level"] == "insufficient_data"
    assert row["change_12m"] == pytest.approx(40.0)
    assert row["change_3m"] == pytest.approx(10.0)
    # The map's hover says the same: genocide's change and coverage, not the overall ones.
    traces = response.context["map_figure"]["data"]
    hover = {
        location: data
        for trace in traces
        for location, data in zip(trace["locations"], trace["customdata"], strict=True)
    }
    assert hover["SDN"][2:] == ["Insufficient data", "+40.0 points", "10%"]
    assert all(mover["iso3"] != "SDN" for mover in response.context["movers_12m"])

    overall = client.get(reverse("overview"))
    row = next(row for row in overall.context["rows"] if row["iso3"] == "SDN")
    assert (row["coverage"], row["change_12m"]) == (pytest.approx(0.9), pytest.approx(3.0))


def test_the_country_page_shows_level_charts_and_indicators(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("country", args=["sdn"]))
    context = response.context
    assert context["latest"]["level"] == "very_high"
    trend = context["trend_figure"]
    named = [trace["name"] for trace in trend["data"] if trace.get("showlegend") is not False]
    assert named[:4] == [
        "Overall (any atrocity crime)",
        "Genocide",
        "Crimes against humanity",
        "War crimes",
    ]
    assert len(trend["layout"]["shapes"]) == 4  # the level bands
    waterfall = context["waterfall_figure"]["data"][0]
    assert waterfall["type"] == "waterfall"
    assert waterfall["measure"][0] == "absolute"
    assert waterfall["measure"][-1] == "total"
    assert context["moves"], "the score rose, so some factor moved"
    content = response.content.decode()
    assert content.count("<details") == 14
    assert 'href="https://example.org/report"' in content
    assert "episode" in content.lower()


def test_the_trend_charts_alert_markers_carry_each_alerts_date(client, analyst, scored):
    from alerts.models import Alert

    sudan = Country.objects.get(iso3="SDN")
    latest = RiskScore.objects.filter(country=sudan).latest("period").period
    # 201 resolved alerts, one a month back from the latest: the page marks the newest 200.
    periods = [(pd.Timestamp(latest) - pd.offsets.MonthEnd(k)).date() for k in range(201)]
    Alert.objects.bulk_create(
        Alert(
            country=sudan,
            rule="surge",
            crime_type="overall",
            severity="warning",
            status="resolved",
            summary=f"Test surge {k}",
            period=period,
            opened_at=timezone.now(),
        )
        for k, period in enumerate(periods)
    )
    client.force_login(analyst)
    response = client.get(reverse("country", args=["SDN"]))
    markers = json.loads(
        re.search(
            r'<script id="trend-markers" type="application/json">(.*?)</script>',
            response.content.decode(),
            re.S,
        ).group(1)
    )
    dates = [marker["date"] for marker in markers]
    assert dates[-1] == latest.isoformat()
    assert markers[-1]["label"] == "Warning: Test surge 0"
    assert len(dates) == 200
    assert periods[-1].isoformat() not in dates  # the oldest is the one left out
    assert dates == sorted(dates)  # oldest first, as the chart draws them


def test_the_country_page_says_insufficient_data_not_low(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("country", args=["MMR"]))
    assert response.context["latest"]["level"] == "insufficient_data"
    content = response.content.decode()
    assert "Insufficient data" in content
    assert "not low risk" in content
    assert 'class="level level-big level-low"' not in content


def test_the_waterfall_defaults_to_the_last_12_months(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("country", args=["SDN"]))
    last = RiskScore.objects.filter(country__iso3="SDN").latest("period").period
    assert response.context["move_to"] == last
    assert response.context["move_from"] == (pd.Timestamp(last) - pd.offsets.MonthEnd(12)).date()
    labels = response.context["waterfall_figure"]["data"][0]["x"]
    assert (labels[0], labels[-1]) == (
        response.context["move_from"].strftime("%b %Y"),
        last.strftime("%b %Y"),
    )


def test_the_waterfall_uses_the_chosen_months(client, analyst, scored):
    client.force_login(analyst)
    start, end = month_start(14), month_start(1)
    response = client.get(
        reverse("country", args=["SDN"]),
        {"from": start.strftime("%Y-%m"), "to": end.strftime("%Y-%m")},
    )
    assert response.context["move_from"].strftime("%Y-%m") == start.strftime("%Y-%m")
    assert response.context["move_to"].strftime("%Y-%m") == end.strftime("%Y-%m")
    # Nothing changed between these months (the rise came in the last one).
    assert response.context["moves"] == []


def test_what_moved_it_shows_a_crime_type_switch_as_a_step_and_a_rise_as_a_rise(client, analyst):
    # Genocide leads a year ago (RF10 high); now war crimes does, after RF13 rose from
    # about 0.20 to 0.83 while RF10 fell.
    rows = [
        ("YEM", "1.1", month_start(13), 1 / 3),
        ("YEM", "10.1", month_start(13), 1.0),
        ("YEM", "13.1", month_start(13), 0.2),
        ("YEM", "10.1", month_start(0), 0.0),
        ("YEM", "13.1", month_start(0), 0.83),
    ]
    record_observations(
        rows=[
            {"country": c, "indicator": i, "observed_on": d, "value": v, "source": "Test"}
            for c, i, d, v in rows
        ],
        recompute=False,
    )
    refresh_scores()
    client.force_login(analyst)
    response = client.get(reverse("country", args=["YEM"]))
    context = response.context
    assert (context["move_crime_from"], context["move_crime_to"]) == ("genocide", "war_crimes")
    assert context["move_crime"] == "war_crimes"  # the later month's by default
    kinds = [move["kind"] for move in context["moves"]]
    assert kinds[0] == "switch"
    factors = {move["code"]: move for move in context["moves"] if move["kind"] == "factor"}
    assert factors["RF13"]["change"] > 0  # a rise, shown as a rise
    assert (factors["RF13"]["before"], factors["RF13"]["after"]) == (
        pytest.approx(0.2),
        pytest.approx(0.83),
    )
    assert "RF10" not in factors  # not part of the war crimes score
    waterfall = context["waterfall_figure"]["data"][0]
    assert waterfall["x"][1] == "Switch to war crimes"
    assert sum(waterfall["y"][1:-1]) == pytest.approx(
        waterfall["y"][-1] - waterfall["y"][0], abs=0.02
    )
    assert "Crime-type switch" in response.content.decode()
    # Explained within genocide instead: its factors, then the switch at the end.
    genocide = client.get(reverse("country", args=["YEM"]), {"crime": "genocide"}).context
    assert [move["kind"] for move in genocide["moves"]][-1] == "switch"
    assert any(m["code"] == "RF10" and m["change"] < 0 for m in genocide["moves"])


def test_compare_draws_each_country(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("compare"), {"c": ["SDN", "NOR", "MMR"]})
    names = [
        trace["name"]
        for trace in response.context["trend_figure"]["data"]
        if trace.get("showlegend") is not False
    ]
    assert sorted(names) == ["Myanmar", "Norway", "Sudan"]
    heatmap = response.context["profile_figure"]["data"][0]
    assert heatmap["type"] == "heatmap"
    assert len(heatmap["x"]) == 3
    assert len(heatmap["y"]) == 14


def test_compare_refuses_more_than_eight_countries(client, analyst, scored):
    client.force_login(analyst)
    codes = ["SDN", "NOR", "MMR", "SYR", "FRA", "DEU", "ITA", "ESP", "PRT"]
    response = client.get(reverse("compare"), {"c": codes})
    assert response.status_code == 200
    assert "compare at most 8" in response.content.decode()
    assert "trend_figure" not in response.context


def test_the_factor_page_ranks_countries_and_reports_coverage(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("factor", args=["rf1"]))
    rows = response.context["rows"]
    assert [row["iso3"] for row in rows[:2]] == ["SDN", "NOR"] or rows[0]["factor_score"] == 1.0
    coverage = response.context["coverage"]
    assert coverage.code == "RF1"
    assert coverage.countries == 3
    assert coverage.indicators[0].sources == ["Test assessment"]


def test_a_factor_score_from_one_indicator_of_many_never_ranks_first(client, analyst, scored):
    # Yemen: one RF1 indicator, at the top of the scale. Sudan and Norway: all of them.
    record_observations(
        rows=[
            {
                "country": "YEM",
                "indicator": "1.1",
                "observed_on": month_start(0),
                "value": 1.0,
                "source": "Test assessment",
            }
        ],
        recompute=False,
    )
    refresh_scores()
    client.force_login(analyst)
    response = client.get(reverse("factor", args=["RF1"]))
    rows = response.context["rows"]
    yemen = next(row for row in rows if row["iso3"] == "YEM")
    assert yemen["factor_score"] == 1.0
    assert yemen["thin"]
    assert yemen["indicators_with_data"] == 1
    assert rows[-1]["iso3"] in {"YEM", "MMR"}  # thin data last, whatever its score
    assert next(row for row in rows if not row["thin"])["factor_score"] == 1.0
    assert rows.index(yemen) > max(i for i, row in enumerate(rows) if not row["thin"])
    content = response.content.decode()
    assert "thin data" in content
    assert f"1/{yemen['indicators']}" in content


def test_the_compare_heatmap_marks_thin_factor_data(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("compare"), {"c": ["SDN", "MMR"]})
    scored_cells, thin_cells = response.context["profile_figure"]["data"]
    myanmar = scored_cells["x"].index("Myanmar")
    rf1 = scored_cells["y"].index("RF1")
    # Myanmar's RF1 rests on one indicator of several: grey "thin", not a risk colour.
    assert thin_cells["text"][rf1][myanmar] == "thin"
    assert scored_cells["z"][rf1][myanmar] is None


def test_the_methodology_page_shows_weights_sources_and_coverage(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("methodology"))
    content = response.content.decode()
    assert "methodology v1" in content
    assert "No public data set is imported in this installation yet" in content
    assert "Verification" in content
    assert response.context["coverage"].observations > 0


def test_the_methodology_page_lists_the_recorded_sources_and_their_terms(client, analyst, scored):
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "8.7",
                "observed_on": month_start(2),
                "value": 1.0,
                "source": "Field report <b>",
            }
        ],
        recompute=False,
    )
    client.force_login(analyst)
    response = client.get(reverse("methodology"))
    sources = {source.source: source for source in response.context["sources"]}
    assert set(sources) == {"Test assessment", "Field report <b>"}
    tested = sources["Test assessment"]
    assert tested.observations == Observation.objects.filter(source="Test assessment").count()
    assert tested.countries == 3
    assert (tested.first, tested.last) == (month_start(14), month_start(0))
    assert sources["Field report <b>"].countries == 1
    content = response.content.decode()
    assert "Field report &lt;b&gt;" in content
    assert "Internal to this installation" in content
    assert "paraphrases written for this project" in content
    assert "Each keeps its own licence" in content


def test_the_methodology_page_without_observations_lists_no_sources(client, analyst):
    client.force_login(analyst)
    response = client.get(reverse("methodology"))
    assert response.context["sources"] == []
    assert "no analyst has recorded an assessment in this installation" in (
        response.content.decode()
    )


def test_the_methodology_page_without_scores_uses_current_weights(client, analyst):
    client.force_login(analyst)
    content = client.get(reverse("methodology")).content.decode()
    assert "no methodology version is published" in content
    assert "No observations are recorded yet" in content


# --- CSV -------------------------------------------------------------------------------


def test_the_scores_csv_has_a_row_per_month(client, analyst, scored):
    client.force_login(analyst)
    response = client.get(reverse("country-scores-csv", args=["SDN"]))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="SDN-scores.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    stored = RiskScore.objects.filter(country__iso3="SDN")
    assert len(rows) == stored.count() == 15
    last = rows[-1]
    assert last["country"] == "SDN"
    assert last["level"] == "very_high"
    assert float(last["overall"]) == pytest.approx(stored.last().overall)
    assert "contribution_RF1" in last


def test_the_observations_csv_lists_sources_and_defuses_formulas(client, analyst, scored):
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "2.1",
                "observed_on": month_start(2),
                "value": 1,
                "source": "=HYPERLINK(1)",
                "note": "+a note",
            }
        ],
        recompute=False,
    )
    client.force_login(analyst)
    response = client.get(reverse("country-observations-csv", args=["SDN"]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == Observation.objects.filter(country__iso3="SDN").count()
    assert rows[0]["source_url"] == "https://example.org/report"
    formula = next(row for row in rows if row["indicator"] == "2.1" and "HYPER" in row["source"])
    assert formula["source"] == "'=HYPERLINK(1)"
    assert formula["note"] == "'+a note"


# --- The assessment form ---------------------------------------------------------------


def valid_post(**changes):
    data = {
        "country": "SDN",
        "indicator": "8.7",
        "value": "3",
        "observed_on": (timezone.localdate() - timedelta(days=3)).isoformat(),
        "confidence": "high",
        "source": "UN panel of experts",
        "source_url": "https://example.org/panel",
        "note": "Radio broadcasts calling for attacks.",
    }
    data.update(changes)
    return data


def test_an_analyst_records_an_assessment_and_the_country_is_scored(
    client, analyst, django_capture_on_commit_callbacks
):
    client.force_login(analyst)
    assert client.get(reverse("observation-new"), {"country": "SDN"}).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("observation-new"), valid_post())
    assert response.status_code == 302
    assert response.url == reverse("country", args=["SDN"])
    observation = Observation.objects.get()
    assert observation.value == 1.0
    assert observation.recorded_by == analyst
    assert observation.indicator.code == "8.7"
    assert RiskScore.objects.filter(country__iso3="SDN").exists()
    page = client.get(response.url)
    assert "recorded" in page.content.decode()


def test_an_invalid_value_shows_a_field_error_and_writes_nothing(client, analyst):
    client.force_login(analyst)
    response = client.post(reverse("observation-new"), valid_post(value="5"))
    assert response.status_code == 200
    assert "value" in response.context["form"].errors
    assert not Observation.objects.exists()


def test_a_future_date_shows_the_services_error_on_the_date_field(client, analyst):
    client.force_login(analyst)
    future = (timezone.localdate() + timedelta(days=10)).isoformat()
    response = client.post(reverse("observation-new"), valid_post(observed_on=future))
    assert response.status_code == 200
    assert "in the future" in response.context["form"].errors["observed_on"][0]
    assert "nothing was saved" in response.content.decode()
    assert not Observation.objects.exists()


def test_missing_source_and_bad_link_are_field_errors(client, analyst):
    client.force_login(analyst)
    response = client.post(
        reverse("observation-new"), valid_post(source="", source_url="not a url", country="")
    )
    errors = response.context["form"].errors
    assert {"source", "source_url", "country"} <= set(errors)
    assert not Observation.objects.exists()


# --- Login throttle --------------------------------------------------------------------


def test_login_is_refused_after_five_failures_for_that_user_and_address(client, analyst):
    for _attempt in range(5):
        response = client.post(reverse("login"), {"username": "ana", "password": "wrong"})
        assert response.status_code == 200
    refused = client.post(reverse("login"), {"username": "ANA", "password": "a-long-test-password"})
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not affected, and a success clears its own count.
    other = client.post(
        reverse("login"),
        {"username": "ana", "password": "a-long-test-password"},
        REMOTE_ADDR="10.1.2.3",
    )
    assert other.status_code == 302


def test_a_successful_login_resets_the_count(client, analyst):
    for _attempt in range(4):
        client.post(reverse("login"), {"username": "ana", "password": "wrong"})
    assert (
        client.post(
            reverse("login"), {"username": "ana", "password": "a-long-test-password"}
        ).status_code
        == 302
    )
    client.logout()
    for _attempt in range(4):
        client.post(reverse("login"), {"username": "ana", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "ana", "password": "a-long-test-password"}
    )
    assert response.status_code == 302


# --- Query counts ----------------------------------------------------------------------


def count_queries(client, url, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries)


ALL_PAGES = [
    ("overview", ()),
    ("country", ("SDN",)),
    ("factor", ("RF1",)),
    ("methodology", ()),
    ("country-scores-csv", ("SDN",)),
    ("country-observations-csv", ("SDN",)),
]


def test_query_counts_do_not_grow_with_the_number_of_countries(
    client, analyst, django_assert_max_num_queries
):
    client.force_login(analyst)
    few = ["SDN", "NOR", "SYR"]
    observe(few, value=0.5, every=4)
    refresh_scores()
    compare_few = {"c": few}
    before = {name: count_queries(client, reverse(name, args=args)) for name, args in ALL_PAGES}
    before["compare"] = count_queries(client, reverse("compare"), **compare_few)
    before["genocide"] = count_queries(client, reverse("overview"), crime="genocide")

    more = list(
        Country.objects.exclude(iso3__in=few).order_by("iso3").values_list("iso3", flat=True)[:9]
    )
    observe(more, value=0.5, every=4)
    refresh_scores()
    after = {name: count_queries(client, reverse(name, args=args)) for name, args in ALL_PAGES}
    after["compare"] = count_queries(client, reverse("compare"), c=[*few, *more[:5]])
    after["genocide"] = count_queries(client, reverse("overview"), crime="genocide")
    assert after == before
    for name, args in ALL_PAGES:
        # The methodology page is the most: coverage per indicator and per data set, the
        # versions and the audit log.
        with django_assert_max_num_queries(17):
            client.get(reverse(name, args=args))


def test_query_counts_do_not_grow_with_the_number_of_periods(client, analyst):
    client.force_login(analyst)
    observe(["SDN", "NOR"], value=0.5, months_back=1, every=4)
    refresh_scores()
    short = pages_and_compare(client)
    Observation.objects.all().delete()
    observe(["SDN", "NOR"], value=0.5, months_back=24, every=4)
    refresh_scores()
    assert RiskScore.objects.filter(country__iso3="SDN").count() >= 25
    long = pages_and_compare(client)
    assert long == short


def pages_and_compare(client) -> dict[str, int]:
    """Queries of every page, the comparison of SDN and NOR, and a crime-specific map."""
    counts = {name: count_queries(client, reverse(name, args=args)) for name, args in ALL_PAGES}
    counts["compare"] = count_queries(client, reverse("compare"), c=["SDN", "NOR"])
    counts["genocide"] = count_queries(client, reverse("overview"), crime="genocide")
    return counts


def test_every_page_with_scores_names_the_version_they_were_computed_under(client, analyst, scored):
    client.force_login(analyst)
    version = published_methodology()
    named = f"methodology v{version.number}"
    for url in (
        reverse("overview"),
        reverse("country", args=["SDN"]),
        reverse("compare") + "?c=SDN&c=NOR",
        reverse("factor", args=["RF1"]),
        reverse("methodology"),
    ):
        assert named in client.get(url).content.decode(), url


def test_an_analysts_assessment_is_shown_on_the_0_3_scale_it_was_entered_on(client, analyst):
    record_observations(
        rows=[
            {
                "country": "SDN",
                "indicator": "8.7",
                "observed_on": month_start(1),
                "value": 2,
                "source": "Field report",
            }
        ],
        scale="analyst",
        recompute=False,
    )
    refresh_scores()
    client.force_login(analyst)
    content = client.get(reverse("country", args=["SDN"])).content.decode()
    assert "2 (moderate)" in content
    assert '0.67 <span class="muted small">moderate' not in content

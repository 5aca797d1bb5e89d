"""Dashboard pages: thin views over selectors and the pure chart builders.

Every page reads the scores of the published methodology (that of the latest
successful full run). When nothing has been scored yet, each page says so and explains
how scores come about; it never shows made-up numbers.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import pandas as pd
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, TemplateView

from countries import selectors as country_selectors
from countries.models import Country
from indicators import charts, login_throttle, scoring, selectors, services
from indicators import methodology as methodology_service
from indicators.forms import AssessmentForm, ThrottledAuthenticationForm
from indicators.models import MethodologyVersion, RiskFactor
from indicators.roles import Role, RoleRequiredMixin, has_role
from indicators.sources import mapping

MAX_COMPARED = 8
MOVERS_SHOWN = 5


def parse_month(raw: str | None) -> date | None:
    """The month end of a ``YYYY-MM`` (or ``YYYY-MM-DD``) string, or None if malformed."""
    if not raw:
        return None
    try:
        stamp = pd.Timestamp(raw.strip()[:7] + "-01")
    except ValueError:
        return None
    if pd.isna(stamp):
        return None
    month_end: date = (stamp + pd.offsets.MonthEnd(0)).date()
    return month_end


def _clean(value: Any) -> Any:
    """NaN (pandas' missing number) as None, for templates."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _clean(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _thresholds(methodology: MethodologyVersion | None) -> dict[str, float]:
    if methodology is not None:
        return dict(methodology.thresholds)
    return dict(methodology_service.DEFAULT_THRESHOLDS)


class ThrottledLoginView(LoginView):
    """The sign-in page, refusing a user name and address after repeated failures."""

    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Form) -> HttpResponse:
        if form.has_error(NON_FIELD_ERRORS, code="throttled"):
            return self.render_to_response(self.get_context_data(form=form), status=429)
        login_throttle.record_failure(**form.identity())  # type: ignore[attr-defined]
        return super().form_invalid(form)

    def form_valid(self, form: Form) -> HttpResponse:
        login_throttle.clear_failures(**form.identity())  # type: ignore[attr-defined]
        return super().form_valid(form)


class OverviewView(RoleRequiredMixin, TemplateView):
    """World map, ranking and biggest movers at one month end, for one crime type."""

    template_name = "indicators/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        crime = self.request.GET.get("crime") or "overall"
        if crime not in charts.CRIMES:
            messages.warning(self.request, "Unknown crime type; showing the overall score.")
            crime = "overall"
        methodology = selectors.published_methodology()
        context.update(
            country=None,  # no one country: the open-alerts partial lists them all
            crime=crime,
            crime_label=charts.CRIME_LABELS[crime],
            crime_choices=list(charts.CRIME_LABELS.items()),
            level_choices=list(charts.LEVEL_LABELS.items()),
            methodology=methodology,
            latest_observation=selectors.latest_observation_date(),
        )
        bounds = selectors.score_period_range(methodology=methodology) if methodology else None
        if bounds is None:
            return context
        first, last = bounds
        period = parse_month(self.request.GET.get("date"))
        if self.request.GET.get("date") and period is None:
            messages.warning(
                self.request, "That date is not a month (YYYY-MM); showing the latest."
            )
        if period is None or period > last:
            period = last
        if period < first:
            messages.info(
                self.request, f"Scores start in {first:%B %Y}; showing that month instead."
            )
            period = first
        assert methodology is not None
        scores = selectors.scores_at(methodology=methodology, period=period, crime=crime)
        figure = charts.world_map_figure(
            scores.assign(level=scores["crime_level"]),
            crime=crime,
            thresholds=methodology.thresholds,
        )
        rows = _records(scores)
        context.update(
            period=period,
            first_period=first,
            last_period=last,
            map_figure=charts.figure_json(figure),
            rows=rows,
            regions=sorted({row["region"] for row in rows}),
            drivers=[
                (key, label)
                for key, label in charts.CRIME_LABELS.items()
                if key != "overall" and any(row["overall_crime"] == key for row in rows)
            ],
            movers_3m=_movers(scores, "change_3m"),
            movers_12m=_movers(scores, "change_12m"),
            insufficient=sum(1 for row in rows if row["level"] == "insufficient_data"),
            situations=selectors.situations_of(methodology=methodology, on=period),
        )
        return context


def _movers(scores: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    """The biggest changes of the shown score either way, among countries with enough data."""
    # A change under a twentieth of a point is no move (annual data moves once a year).
    known = scores[
        (scores["crime_level"] != "insufficient_data")
        & scores[column].notna()
        & (scores[column].abs() >= 0.05)
    ]
    ranked = known.reindex(known[column].abs().sort_values(ascending=False).index)
    return _records(ranked.head(MOVERS_SHOWN))


class CountryView(RoleRequiredMixin, TemplateView):
    """One country's level, trends, factor contributions, what moved it and its data."""

    template_name = "indicators/country.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        country = get_object_or_404(Country, iso3=str(kwargs["iso3"]).upper())
        administrator = has_role(self.request.user, Role.ADMINISTRATOR)
        asked = self.request.GET.get("version")
        methodology = selectors.version_for_viewing(asked, administrator=administrator)
        if asked and methodology is None:
            raise Http404("No such methodology version to show.")
        published = selectors.published_methodology() if asked else methodology
        framework = selectors.framework_rows(methodology=methodology)
        statuses = selectors.country_indicator_status(
            country=country,
            framework=framework,
            today=timezone.localdate(),
            variable_labels=mapping.variable_labels(mapping.published_mapping()),
        )
        history = (
            selectors.country_score_history(methodology=methodology, country=country)
            if methodology
            else pd.DataFrame()
        )
        latest = _records(history.tail(1))[0] if len(history) else None
        factor_labels = {factor.code: factor.title for factor in framework}
        context.update(
            country=country,
            methodology=methodology,
            published_methodology=published,
            viewing_other_version=methodology is not None and methodology != published,
            versions=[
                v
                for v in selectors.methodology_versions(administrator=administrator)
                if v.status != "discarded"
            ],
            latest=latest,
            factors=[
                {
                    "factor": factor,
                    "score": (latest or {}).get("factor_scores", {}).get(factor.code),
                    "contribution": (latest or {}).get("contributions", {}).get(factor.code),
                    "indicators": [
                        {
                            "status": status,
                            "sparkline": charts.sparkline_points(status.history),
                        }
                        for status in statuses[factor.code]
                    ],
                    "with_data": sum(1 for status in statuses[factor.code] if status.observations),
                }
                for factor in framework
            ],
            observation_count=sum(s.observations for f in statuses.values() for s in f),
            episodes=country_selectors.mass_killing_episodes(country=country),
            situations=selectors.situations_of(
                methodology=methodology, countries=[country.iso3]
            ).get(country.iso3, []),
        )
        if latest is None:
            return context
        assert methodology is not None
        # Alerts are marked on this chart in the browser, from the alerts app's
        # ``alert_markers`` template tag: this app does not import alerts.
        trend = charts.trend_figure(history, thresholds=methodology.thresholds)
        contributions = pd.DataFrame.from_records(
            list(history["contributions"]), columns=[factor.code for factor in framework]
        )
        contributions.insert(0, "period", history["period"].to_numpy())
        contributions.insert(1, "level", history["level"].to_numpy())
        context.update(
            trend_figure=charts.figure_json(trend),
            contributions_figure=charts.figure_json(
                charts.contributions_figure(contributions, factor_labels=factor_labels)
            ),
            first_period=history["period"].iloc[0].date(),
            last_period=history["period"].iloc[-1].date(),
            **self._waterfall(history, framework, methodology),
        )
        return context

    def _waterfall(
        self, history: pd.DataFrame, framework: list[Any], methodology: MethodologyVersion
    ) -> dict[str, Any]:
        """ "What moved it" between two chosen month ends (default: the last 12), factor by
        factor within one crime type (``?crime=``; default: that of the later month),
        with a switch of the overall score's crime type as a step of its own."""
        periods = history["period"].dt.date
        first, last = periods.iloc[0], periods.iloc[-1]
        end = parse_month(self.request.GET.get("to")) or last
        start = (
            parse_month(self.request.GET.get("from"))
            or (pd.Timestamp(end) - pd.offsets.MonthEnd(12)).date()
        )
        end = min(max(end, first), last)
        start = min(max(start, first), last)
        if start > end:
            messages.warning(self.request, "The first date was after the second; swapped them.")
            start, end = end, start
        context: dict[str, Any] = {
            "move_from": start,
            "move_to": end,
            "move_crimes": [(c, charts.CRIME_LABELS[c]) for c in scoring.CRIME_TYPES],
        }
        if start == end:
            return context
        before = _score_state(history[periods == start].iloc[0])
        after = _score_state(history[periods == end].iloc[0])
        weights = {c: float(w) for c, w in methodology.factor_weights.items()}
        groups = {factor.code: factor.group for factor in framework}
        labels = {factor.code: factor.title for factor in framework}
        wanted = self.request.GET.get("crime") or ""
        crime = wanted if wanted in scoring.CRIME_TYPES else after.overall_crime
        try:
            explained = scoring.explain_change(
                before, after, crime=crime, factor_weights=weights, factor_groups=groups
            )
        except ValueError:
            if wanted:
                messages.warning(
                    self.request,
                    f"No {charts.CRIME_LABELS.get(crime, crime).lower()} score in one of the two "
                    "months: explained within the crime type of the later month instead.",
                )
            crime = after.overall_crime
            explained = scoring.explain_change(
                before, after, crime=crime, factor_weights=weights, factor_groups=groups
            )
        switches = [step for step in explained.steps if step.kind == "switch"]
        switch_in = next((s for s in switches if s.to_crime == explained.crime), None)
        switch_out = next((s for s in switches if s.from_crime == explained.crime), None)
        factor_steps = [(step.code, step.change) for step in explained.factor_steps]
        figure = charts.waterfall_figure(
            start=explained.start,
            end=explained.end,
            changes=factor_steps,
            start_label=f"{start:%b %Y}",
            end_label=f"{end:%b %Y}",
            factor_labels=labels,
            switch_in=(
                None
                if switch_in is None
                else (switch_in.from_crime, switch_in.to_crime, switch_in.change)
            ),
            switch_out=(
                None
                if switch_out is None
                else (switch_out.from_crime, switch_out.to_crime, switch_out.change)
            ),
        )
        context.update(
            waterfall_figure=charts.figure_json(figure),
            move_crime=explained.crime,
            move_crime_label=charts.CRIME_LABELS[explained.crime],
            move_explained=explained,
            move_crime_from=before.overall_crime,
            move_crime_to=after.overall_crime,
            moves=[
                {
                    "kind": step.kind,
                    "code": step.code,
                    "title": labels.get(step.code, step.code),
                    "change": step.change,
                    "before": step.before,
                    "after": step.after,
                    "from": charts.CRIME_LABELS.get(step.from_crime, ""),
                    "to": charts.CRIME_LABELS.get(step.to_crime, ""),
                }
                for step in explained.steps
                if step.kind == "switch" or abs(step.change) >= 0.05
            ],
            move_switched=bool(switches),
            move_insufficient=(
                "insufficient_data"
                in (
                    history[periods == start].iloc[0]["level"],
                    history[periods == end].iloc[0]["level"],
                )
            ),
        )
        return context


def _score_state(row: pd.Series) -> scoring.ScoreState:
    """A stored score as ``scoring.explain_change`` reads it."""
    return scoring.ScoreState(
        overall=float(row["overall"]),
        overall_crime=str(row["overall_crime"] or "genocide"),
        crime_scores={crime: _clean(row[crime]) for crime in scoring.CRIME_TYPES},
        factor_scores=dict(row["factor_scores"] or {}),
    )


class CountryScoresCsvView(RoleRequiredMixin, View):
    """The country's published scores for every month end, as CSV."""

    def get(self, request: HttpRequest, iso3: str) -> HttpResponse:
        country = get_object_or_404(Country, iso3=iso3.upper())
        methodology = selectors.published_methodology()
        history = (
            selectors.country_score_history(methodology=methodology, country=country)
            if methodology
            else pd.DataFrame(columns=["period", "contributions"])
        )
        codes = [factor.code for factor in selectors.framework_rows()]
        response = _csv_response(f"{country.iso3}-scores.csv")
        writer = csv.writer(response)
        columns = [
            "period",
            "overall",
            "genocide",
            "crimes_against_humanity",
            "war_crimes",
            "overall_crime",
            "level",
            "coverage",
            "change_3m",
            "change_12m",
            "change_3m_z",
        ]
        writer.writerow(
            [
                "country",
                "methodology_version",
                *columns,
                *(f"contribution_{code}" for code in codes),
                *(f"factor_score_{code}" for code in codes),
            ]
        )
        for row in _records(history):
            writer.writerow(
                [
                    country.iso3,
                    methodology.number if methodology else "",
                    row["period"].date().isoformat(),
                    *(_csv_number(row[column]) for column in columns[1:]),
                    *(_csv_number(row["contributions"].get(code)) for code in codes),
                    *(_csv_number(row["factor_scores"].get(code)) for code in codes),
                ]
            )
        return response


class CountryObservationsCsvView(RoleRequiredMixin, View):
    """The country's observations with their sources, as CSV."""

    def get(self, request: HttpRequest, iso3: str) -> HttpResponse:
        country = get_object_or_404(Country, iso3=iso3.upper())
        return _rows_csv_response(
            f"{country.iso3}-observations.csv",
            selectors.OBSERVATION_EXPORT_COLUMNS,
            selectors.country_observation_rows(country=country),
        )


class CountryEpisodesCsvView(RoleRequiredMixin, View):
    """The country's recorded mass-killing episodes with their sources, as CSV."""

    def get(self, request: HttpRequest, iso3: str) -> HttpResponse:
        country = get_object_or_404(Country, iso3=iso3.upper())
        return _rows_csv_response(
            f"{country.iso3}-mass-killing-episodes.csv",
            country_selectors.EPISODE_EXPORT_COLUMNS,
            country_selectors.mass_killing_episode_rows(country=country),
        )


def _csv_response(filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv_number(value: Any) -> Any:
    value = _clean(value)
    return "" if value is None else value


def _rows_csv_response(
    filename: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> HttpResponse:
    """A CSV download: a header of ``columns``, then ``rows`` made formula-safe."""
    response = _csv_response(filename)
    writer = csv.writer(response)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return response


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class CompareView(RoleRequiredMixin, TemplateView):
    """Up to eight countries' overall trends on one chart, and their factor profiles."""

    template_name = "indicators/compare.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        codes = list(
            dict.fromkeys(
                code.strip().upper() for code in self.request.GET.getlist("c") if code.strip()
            )
        )
        choices = selectors.country_choices()
        names = dict(choices)
        context.update(
            choices=choices,
            chosen=codes,
            max_compared=MAX_COMPARED,
            too_many=False,
        )
        if len(codes) > MAX_COMPARED:
            context["too_many"] = True
            return context
        unknown = [code for code in codes if code not in names]
        if unknown:
            messages.warning(self.request, f"Unknown country code(s): {', '.join(unknown)}.")
        countries = list(Country.objects.filter(iso3__in=[c for c in codes if c in names]))
        methodology = selectors.published_methodology()
        context.update(countries=countries, methodology=methodology)
        if not countries or methodology is None:
            return context
        history = selectors.compare_history(methodology=methodology, countries=countries)
        if history.empty:
            return context
        framework = selectors.framework_rows(methodology=methodology)
        codes_in_order = [factor.code for factor in framework]
        latest = history.groupby("iso3", sort=False).tail(1).set_index("name")
        profile = pd.DataFrame.from_records(
            list(latest["factor_scores"]), index=latest.index, columns=codes_in_order
        )
        coverage = pd.DataFrame(0.0, index=profile.index, columns=codes_in_order)
        for period, rows in latest.groupby("period"):
            shares = selectors.factor_coverage(
                methodology=methodology,
                period=period.date(),
                countries=list(rows["iso3"]),
                framework=framework,
            )
            for name, iso3 in zip(rows.index, rows["iso3"], strict=True):
                for code in codes_in_order:
                    found = shares.get((iso3, code))
                    coverage.loc[name, code] = found.share if found else 0.0
        context.update(
            trend_figure=charts.figure_json(
                charts.compare_trend_figure(history, thresholds=methodology.thresholds)
            ),
            profile_figure=charts.figure_json(
                charts.factor_profile_figure(
                    profile.astype(float),
                    factor_labels={factor.code: factor.title for factor in framework},
                    coverage=coverage,
                    min_coverage=float(methodology.thresholds.get("min_coverage", 0.0)),
                )
            ),
            latest_rows=_records(latest.reset_index()),
            unscored=[c for c in countries if c.iso3 not in set(history["iso3"])],
        )
        return context


class FactorView(RoleRequiredMixin, TemplateView):
    """Countries ranked on one risk factor, with its indicators and their coverage."""

    template_name = "indicators/factor.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        factor = get_object_or_404(RiskFactor, code=str(kwargs["code"]).upper())
        methodology = selectors.published_methodology()
        framework = selectors.framework_rows(methodology=methodology)
        coverage = selectors.coverage_report(factor_codes=[factor.code], framework=framework)
        context.update(factor=factor, methodology=methodology, coverage=coverage.factors[0])
        bounds = selectors.score_period_range(methodology=methodology) if methodology else None
        if bounds is None:
            return context
        assert methodology is not None
        ranking = selectors.factor_ranking(
            methodology=methodology,
            period=bounds[1],
            factor_code=factor.code,
            framework=framework,
        )
        context.update(
            period=bounds[1],
            rows=_records(ranking),
            thin_count=int(ranking["thin"].sum()),
            min_coverage=float(methodology.thresholds.get("min_coverage", 0.0)),
            weight=methodology.factor_weights.get(factor.code, 0.0),
        )
        return context


class MethodologyView(RoleRequiredMixin, TemplateView):
    """The framework, weights, thresholds, how scores are computed, sources and coverage."""

    template_name = "indicators/methodology.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        methodology = selectors.published_methodology()
        framework = selectors.framework_rows(methodology=methodology)
        context.update(
            methodology=methodology,
            framework=framework,
            indicator_count=sum(len(factor.indicators) for factor in framework),
            thresholds=_thresholds(methodology),
            coverage=selectors.coverage_report(framework=framework),
            sources=selectors.observation_sources(analysts_only=True),
            public_data=selectors.public_data_sources(mapping=mapping.published_mapping()),
            indicator_labels={i.code: i.label for f in framework for i in f.indicators},
            versions=list(selectors.methodology_versions())[:10],
            events=selectors.methodology_events(limit=10),
        )
        return context


class ObservationCreateView(RoleRequiredMixin, FormView):
    """An analyst records one sourced assessment; the country's scores follow."""

    required_roles = (Role.ANALYST,)
    template_name = "indicators/observation_form.html"
    form_class = AssessmentForm

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        for name in ("country", "indicator"):
            if self.request.GET.get(name):
                initial[name] = self.request.GET[name].strip()
        initial["observed_on"] = timezone.localdate()
        return initial

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["today"] = timezone.localdate()
        kwargs["countries"] = [
            (iso3, f"{name} ({iso3})") for iso3, name in selectors.country_choices()
        ]
        kwargs["indicators"] = [
            (
                f"{factor.code} {factor.title}",
                [
                    (indicator.code, f"{indicator.code} {indicator.label}")
                    for indicator in factor.indicators
                ],
            )
            for factor in selectors.framework_rows()
            if factor.indicators
        ]
        return kwargs

    def form_valid(self, form: AssessmentForm) -> HttpResponse:  # type: ignore[override]
        try:
            result = services.record_observations(
                rows=[form.as_row()], scale="analyst", recorded_by=self.request.user
            )
        except services.ObservationBatchError as error:
            for problem in error.errors:
                field = problem.field if problem.field in form.fields else None
                form.add_error(field, problem.message)
            return self.form_invalid(form)
        iso3 = form.cleaned_data["country"]
        if result.created or result.updated:
            messages.success(
                self.request,
                f"Assessment of indicator {form.cleaned_data['indicator']} recorded. "
                "The country's scores are recomputed from it.",
            )
        else:
            messages.info(self.request, "This assessment was already recorded; nothing changed.")
        return HttpResponseRedirect(reverse("country", args=[iso3]))

"""Methodology pages: versions and their audit log, the draft editor, backtest, calibration.

Everyone with a role reads published and superseded versions, their audit log and
their backtests; only administrators see drafts, edit them (through the one service
call, ``methodology.edit_draft``), preview, publish, roll back and calibrate.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import TemplateView

from indicators import backtest_charts, charts, history, methodology, selectors
from indicators.models import MethodologyJob, MethodologyVersion
from indicators.roles import Role, RoleRequiredMixin, has_role


def _is_administrator(request: HttpRequest) -> bool:
    return has_role(request.user, Role.ADMINISTRATOR)


def _version_or_404(request: HttpRequest, number: int) -> MethodologyVersion:
    version = (
        selectors.methodology_versions(administrator=_is_administrator(request))
        .filter(number=number)
        .first()
    )
    if version is None:
        raise Http404("No such methodology version.")
    return version


class VersionListView(RoleRequiredMixin, TemplateView):
    """Every version analysts may see, newest first, and the audit log of changes."""

    template_name = "indicators/methodology_versions.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        administrator = _is_administrator(self.request)
        versions = list(selectors.methodology_versions(administrator=administrator))
        context.update(
            versions=versions,
            published=selectors.published_methodology(),
            events=selectors.methodology_events(administrator=administrator, limit=200),
            is_administrator=administrator,
        )
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        """Administrators start a draft from the published version."""
        if not _is_administrator(request):
            raise Http404
        draft = methodology.create_draft(by=request.user)
        messages.success(request, f"Draft v{draft.number} started from the published version.")
        return HttpResponseRedirect(reverse("methodology-version", args=[draft.number]))


class DraftForm(forms.Form):
    """A draft's title, factor weights, thresholds and, per indicator, weight and limit."""

    title = forms.CharField(max_length=120, required=False)
    rationale = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why these weights. Required to publish; kept in the audit log.",
    )
    moderate_from = forms.FloatField(label="Moderate from")
    high_from = forms.FloatField(label="High from")
    very_high_from = forms.FloatField(label="Very high from")
    min_coverage = forms.FloatField(label="Coverage floor (0-1)")

    def __init__(self, *args: Any, version: MethodologyVersion, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "title": version.title,
                "rationale": version.rationale,
                **version.thresholds,
                **{f"factor_{c}": w for c, w in version.factor_weights.items()},
                **{f"indicator_{c}": w for c, w in version.indicator_weights.items()},
                **{f"staleness_{c}": d for c, d in version.staleness_days.items()},
            },
        )
        super().__init__(*args, **kwargs)
        for code in version.factor_weights:
            self.fields[f"factor_{code}"] = forms.FloatField(label=code, min_value=0)
        for code in version.indicator_weights:
            self.fields[f"indicator_{code}"] = forms.FloatField(label=code, min_value=0)
            self.fields[f"staleness_{code}"] = forms.IntegerField(label=code, min_value=1)

    def changes(self) -> dict[str, Any]:
        """The cleaned data in ``methodology.edit_draft``'s terms."""
        data = self.cleaned_data

        def section(prefix: str) -> dict[str, Any]:
            return {k.removeprefix(prefix): v for k, v in data.items() if k.startswith(prefix)}

        return {
            "title": data["title"],
            "rationale": data["rationale"],
            "factor_weights": section("factor_"),
            "indicator_weights": section("indicator_"),
            "staleness_days": section("staleness_"),
            "thresholds": {
                name: data[name]
                for name in ("moderate_from", "high_from", "very_high_from", "min_coverage")
            },
        }


class VersionDetailView(RoleRequiredMixin, TemplateView):
    """One version: its weights beside the version it came from, its history, its jobs.

    For administrators a draft is editable here, and can be previewed, published (with a
    rationale) or discarded; a superseded version can be rolled back to.
    """

    template_name = "indicators/methodology_version.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        version = _version_or_404(self.request, int(kwargs["number"]))
        administrator = _is_administrator(self.request)
        framework = selectors.framework_rows(methodology=version)
        base = version.based_on
        base_rows = {f.code: f for f in selectors.framework_rows(methodology=base)} if base else {}
        jobs = list(version.jobs.order_by("-requested_at")[:10]) if administrator else []
        preview = next(
            (j for j in jobs if j.kind == MethodologyJob.Kind.PREVIEW and j.result), None
        )
        context.update(
            version=version,
            base=base,
            framework=[
                {
                    "factor": factor,
                    "base_weight": base_rows[factor.code].weight
                    if factor.code in base_rows
                    else None,
                    "indicators": [
                        {
                            "indicator": indicator,
                            "base": next(
                                (
                                    i
                                    for i in base_rows[factor.code].indicators
                                    if i.code == indicator.code
                                ),
                                None,
                            )
                            if factor.code in base_rows
                            else None,
                        }
                        for indicator in factor.indicators
                    ],
                }
                for factor in framework
            ],
            changes=methodology.changes_between(base, version) if base else {},
            events=selectors.methodology_events(version=version, administrator=administrator),
            jobs=jobs,
            preview=preview.result if preview else None,
            open_jobs=[j for j in jobs if j.status in ("pending", "running")],
            is_administrator=administrator,
            editable=administrator and version.is_draft,
            country_names=selectors.country_names(),
            preview_backtest=_backtest_rows(preview.result) if preview else [],
        )
        if administrator and version.is_draft:
            form = kwargs.get("form") or DraftForm(version=version)
            context.update(form=form, editor=_editor_rows(form, framework))
        return context

    def post(self, request: HttpRequest, number: int) -> HttpResponse:
        if not _is_administrator(request):
            raise Http404
        version = _version_or_404(request, number)
        action = request.POST.get("action", "")
        here = reverse("methodology-version", args=[version.number])
        try:
            if action in ("save", "preview") and version.is_draft:
                form = DraftForm(request.POST, version=version)
                if not form.is_valid():
                    messages.error(request, "Nothing was saved: correct the fields marked.")
                    return self.render_to_response(
                        self.get_context_data(number=number, form=form), status=400
                    )
                changed = methodology.edit_draft(version, by=request.user, **form.changes())
                messages.success(
                    request, "Draft saved." if changed else "Nothing changed in the draft."
                )
                if action == "preview":
                    methodology.request_preview(version, by=request.user)
                    messages.info(
                        request, "Preview requested: a worker compares it with the published one."
                    )
            elif action == "publish":
                methodology.request_publication(
                    version, by=request.user, rationale=request.POST.get("rationale", "")
                )
                messages.success(
                    request,
                    f"v{version.number} is being published: every score is recomputed under it, "
                    "then it replaces the published version.",
                )
            elif action == "discard":
                methodology.discard_draft(
                    version, by=request.user, reason=request.POST.get("reason", "")
                )
                messages.success(request, f"Draft v{version.number} discarded.")
            elif action == "draft":
                draft = methodology.create_draft(by=request.user, based_on=version)
                messages.success(request, f"Draft v{draft.number} started from v{version.number}.")
                here = reverse("methodology-version", args=[draft.number])
            elif action == "rollback":
                job = methodology.roll_back(
                    version, by=request.user, rationale=request.POST.get("rationale", "")
                )
                messages.success(
                    request,
                    f"Rolling back to v{version.number}: its copy v{job.version.number} is being "
                    "published.",
                )
                here = reverse("methodology-version", args=[job.version.number])
            else:
                messages.error(request, "That cannot be done to this version.")
        except methodology.MethodologyError as exc:
            for field_name, problems in exc.errors.items():
                messages.error(request, f"{field_name.replace('_', ' ')}: {' '.join(problems)}")
        return HttpResponseRedirect(here)


def _editor_rows(form: DraftForm, framework: list[Any]) -> dict[str, Any]:
    """The draft form's bound fields laid out by factor, for the editor."""
    return {
        "thresholds": [
            form[name] for name in ("moderate_from", "high_from", "very_high_from", "min_coverage")
        ],
        "factors": [
            {
                "factor": factor,
                "weight": form[f"factor_{factor.code}"],
                "indicators": [
                    {
                        "indicator": indicator,
                        "weight": form[f"indicator_{indicator.code}"],
                        "staleness": form[f"staleness_{indicator.code}"],
                    }
                    for indicator in factor.indicators
                    if f"indicator_{indicator.code}" in form.fields
                ],
            }
            for factor in framework
            if f"factor_{factor.code}" in form.fields
        ],
    }


def _backtest_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A preview's two backtests as table rows: AUC and recall in the top 10/20/30."""
    rows = []
    for label, figures in (result.get("backtest") or {}).items():
        rows.append(
            {
                "label": "This draft" if label == "draft" else f"Published v{result['published']}",
                "auc": figures["auc"],
                "auc_range": figures["auc_range"],
                "recall": [
                    (k, figures["recall_at"][k], *figures["recall_range"][k])
                    for k in ("10", "20", "30")
                ],
                "years": (figures["first_year"], figures["last_year"]),
                "onsets": figures["onsets"],
            }
        )
    return rows


class BacktestView(RoleRequiredMixin, TemplateView):
    """How a version's December rankings would have warned of the onsets that followed."""

    template_name = "indicators/backtest.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        administrator = _is_administrator(self.request)
        number = self.request.GET.get("version")
        version = selectors.version_for_viewing(number, administrator=administrator)
        context.update(
            version=version,
            versions=list(selectors.methodology_versions(administrator=administrator)),
            first_year=self.request.GET.get("from") or history.DEFAULT_FIRST_BASE_YEAR,
            last_year=self.request.GET.get("to") or "",
        )
        if version is None:
            context["error"] = (
                "No such version." if number else "Nothing is published yet: no scores to test."
            )
            return context
        try:
            result = history.run_backtest(
                version,
                first_year=_year(self.request.GET.get("from")),
                last_year=_year(self.request.GET.get("to")),
            )
        except (history.HistoryError, ValueError) as exc:
            context["error"] = str(exc)
            return context
        context.update(
            result=result,
            last_year=result.last_year,
            figure=charts.figure_json(backtest_charts.backtest_figure(result)),
            country_names=selectors.country_names(),
        )
        return context


def _year(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise history.HistoryError(f"{raw!r} is not a year.") from exc


class CalibrationView(RoleRequiredMixin, TemplateView):
    """Administrators: factor weights suggested by history, and how they would have done."""

    template_name = "indicators/calibration.html"
    required_roles = (Role.ADMINISTRATOR,)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        jobs = MethodologyJob.objects.filter(kind=MethodologyJob.Kind.CALIBRATE).order_by(
            "-requested_at"
        )
        latest_done = jobs.filter(status=MethodologyJob.Status.DONE).first()
        context.update(
            latest=latest_done,
            open=jobs.filter(status__in=["pending", "running"]).first(),
            failed=jobs.filter(status=MethodologyJob.Status.FAILED).first(),
            framework=selectors.framework_rows(),
        )
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get("action") == "draft":
            job = (
                MethodologyJob.objects.filter(
                    kind=MethodologyJob.Kind.CALIBRATE, status=MethodologyJob.Status.DONE
                )
                .order_by("-requested_at")
                .first()
            )
            if job is None:
                messages.error(request, "There is no finished calibration to start from.")
                return HttpResponseRedirect(reverse("methodology-calibration"))
            draft = methodology.create_draft(
                by=request.user,
                title="Calibrated factor weights",
                factor_weights=job.result["suggested_weights"],
                note=f"Factor weights suggested by the calibration of {job.finished_at:%d %B %Y}.",
            )
            messages.success(
                request,
                f"Draft v{draft.number} holds the suggested factor weights: preview it, write "
                "the rationale, and publish it if it holds up.",
            )
            return HttpResponseRedirect(reverse("methodology-version", args=[draft.number]))
        methodology.request_calibration(by=request.user)
        messages.info(request, "Calibration requested: a worker fits it (about half a minute).")
        return HttpResponseRedirect(reverse("methodology-calibration"))

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminDateWidget
from django.db.models import Model, QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from indicators import services
from indicators.forms import ObservationDateField
from indicators.models import (
    Indicator,
    MethodologyVersion,
    Observation,
    ObservationUpload,
    RiskFactor,
    RiskScore,
    ScoringRun,
    ScoringSettings,
)

# Editing any of these changes the methodology, so every score must be recomputed.
METHODOLOGY_FIELDS = {
    "weight",
    "staleness_days",
    "moderate_from",
    "high_from",
    "very_high_from",
    "min_coverage",
}


class RecomputeOnMethodologyChange(admin.ModelAdmin):
    """Queues one full recompute per request when a weight or threshold was edited.

    Every path that changes the methodology counts: the object's own form, its inline
    rows (added, edited or deleted) and deleting objects, one at a time or in bulk. The
    recompute runs under a new methodology version once the request's transaction commits.
    """

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or METHODOLOGY_FIELDS & set(form.changed_data):
            self._schedule_recompute(request)

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        if any(_formset_changed_methodology(formset) for formset in formsets):
            self._schedule_recompute(request)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        super().delete_model(request, obj)
        self._schedule_recompute(request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        self._schedule_recompute(request)

    def _schedule_recompute(self, request: HttpRequest) -> None:
        if getattr(request, "_recompute_queued", False):
            return
        request._recompute_queued = True  # type: ignore[attr-defined]
        services.schedule_full_recompute()
        self.message_user(
            request,
            "The weights changed: every score is being recomputed under a new methodology version.",
        )


def _formset_changed_methodology(formset: BaseModelFormSet[Any, Any]) -> bool:
    """After ``formset.save()``: did it add or delete a row, or edit a methodology field?"""
    if formset.new_objects or formset.deleted_objects:
        return True
    return any(METHODOLOGY_FIELDS & set(fields) for _obj, fields in formset.changed_objects)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the scoring pipeline: visible for audit, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IndicatorInline(admin.TabularInline):
    model = Indicator
    fields = ("code", "label", "weight", "staleness_days", "verification")
    extra = 0
    show_change_link = True


@admin.register(RiskFactor)
class RiskFactorAdmin(RecomputeOnMethodologyChange):
    list_display = ("code", "title", "group", "weight")
    list_editable = ("weight",)
    list_filter = ("group",)
    search_fields = ("code", "title")
    readonly_fields = ("note",)
    inlines = [IndicatorInline]


@admin.register(Indicator)
class IndicatorAdmin(RecomputeOnMethodologyChange):
    list_display = ("code", "short_label", "factor", "weight", "staleness_days", "verification")
    list_editable = ("weight", "staleness_days")
    list_filter = ("factor", "verification")
    list_select_related = ("factor",)
    search_fields = ("code", "label")
    list_per_page = 200

    @admin.display(description="label")
    def short_label(self, obj: Indicator) -> str:
        return obj.label if len(obj.label) <= 90 else obj.label[:87] + "..."


@admin.register(ScoringSettings)
class ScoringSettingsAdmin(RecomputeOnMethodologyChange):
    list_display = ("__str__",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ScoringSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ObservationAdminForm(ModelForm):  # type: ignore[type-arg]
    """Checks a row as ``record_observations`` does, so the admin accepts nothing it refuses."""

    observed_on = ObservationDateField(label="Observed on", widget=AdminDateWidget)

    class Meta:
        model = Observation
        fields = [
            "country",
            "indicator",
            "observed_on",
            "value",
            "confidence",
            "source",
            "source_url",
            "note",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:  # a field is missing or malformed: its own error says so
            return cleaned
        try:
            services.record_observations(rows=[_observation_row(cleaned)], dry_run=True)
        except services.ObservationBatchError as exc:
            for error in exc.errors:
                field_name = error.field if error.field in self.fields else None
                self.add_error(field_name, error.message)
        return cleaned


def _observation_row(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "country": cleaned["country"].iso3,
        "indicator": cleaned["indicator"].code,
        "observed_on": cleaned["observed_on"],
        "value": cleaned["value"],
        "confidence": cleaned.get("confidence") or "",
        "source": cleaned["source"],
        "source_url": cleaned.get("source_url") or "",
        "note": cleaned.get("note") or "",
    }


# An observation's identity; editing one of these moves the observation to a new key.
OBSERVATION_KEY_FIELDS = {"country", "indicator", "observed_on", "source"}


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    """Adds, edits and deletes go through the services, like every other source.

    So the admin gets the same validation (no future dates) and the same follow-up on
    commit: the country's scores are recomputed and the red-flag rule sees the row.
    """

    form = ObservationAdminForm
    list_display = (
        "country",
        "indicator",
        "observed_on",
        "value",
        "confidence",
        "source",
        "recorded_by",
    )
    list_filter = ("confidence", "indicator__factor", "country__region")
    list_select_related = ("country", "indicator", "recorded_by")
    search_fields = ("country__iso3", "country__name", "indicator__code", "source")
    date_hierarchy = "observed_on"
    raw_id_fields = ("country", "indicator")
    readonly_fields = ("recorded_by", "created_at", "updated_at")

    def save_model(
        self, request: HttpRequest, obj: Observation, form: ModelForm, change: bool
    ) -> None:
        if change and OBSERVATION_KEY_FIELDS & set(form.changed_data):
            services.delete_observations(ids=[obj.pk])
        row = _observation_row(form.cleaned_data)
        services.record_observations(rows=[row], recorded_by=request.user)
        # The admin goes on to log and link the saved row: point ``obj`` at it.
        saved = Observation.objects.get(
            country=obj.country,
            indicator=obj.indicator,
            observed_on=obj.observed_on,
            source=obj.source,
        )
        obj.pk, obj.recorded_by_id = saved.pk, saved.recorded_by_id
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Observation) -> None:
        services.delete_observations(ids=[obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Observation]) -> None:
        services.delete_observations(ids=list(queryset.values_list("pk", flat=True)))


@admin.register(MethodologyVersion)
class MethodologyVersionAdmin(ReadOnlyAdmin):
    list_display = ("number", "created_at", "created_by", "fingerprint")


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "status",
        "methodology",
        "started_at",
        "finished_at",
        "observations_read",
        "scores_written",
        "countries",
    )
    list_filter = ("status", "methodology")
    list_select_related = ("methodology",)


@admin.register(RiskScore)
class RiskScoreAdmin(ReadOnlyAdmin):
    list_display = ("country", "period", "overall", "level", "coverage", "change_3m", "methodology")
    list_filter = ("level", "methodology", "country__region")
    list_select_related = ("country", "methodology")
    search_fields = ("country__iso3", "country__name")
    date_hierarchy = "period"


@admin.register(ObservationUpload)
class ObservationUploadAdmin(ReadOnlyAdmin):
    """Every upload and its outcome, for audit (the file itself is not shown)."""

    list_display = (
        "pk",
        "file_name",
        "uploaded_by",
        "status",
        "dry_run",
        "rows",
        "created_at",
        "started_at",
        "finished_at",
        "attempts",
    )
    list_filter = ("status", "dry_run")
    list_select_related = ("uploaded_by",)
    exclude = ("content",)
    search_fields = ("file_name", "uploaded_by__username")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ObservationUpload]:
        return super().get_queryset(request).defer("content")

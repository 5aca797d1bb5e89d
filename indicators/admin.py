from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminDateWidget
from django.db import transaction
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from indicators import methodology, services
from indicators.forms import ObservationDateField
from indicators.models import (
    Indicator,
    MethodologyEvent,
    MethodologyJob,
    MethodologyVersion,
    Observation,
    ObservationUpload,
    ProfileAssignment,
    RiskFactor,
    RiskScore,
    ScoringRun,
    SituationProfile,
)


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
    fields = ("code", "label", "verification")
    extra = 0
    show_change_link = True


WEIGHTS_ELSEWHERE = (
    "Weights and staleness limits belong to methodology versions: draft a new version on "
    "the methodology page (or under Methodology versions here) and publish it with a reason."
)


@admin.register(RiskFactor)
class RiskFactorAdmin(admin.ModelAdmin):
    """The factors' texts; their weights belong to methodology versions."""

    list_display = ("code", "title", "group")
    list_filter = ("group",)
    search_fields = ("code", "title")
    readonly_fields = ("note",)
    inlines = [IndicatorInline]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self.message_user(request, WEIGHTS_ELSEWHERE)
        return super().changelist_view(request, extra_context)


@admin.register(Indicator)
class IndicatorAdmin(admin.ModelAdmin):
    """The indicators' texts; their weights belong to methodology versions."""

    list_display = ("code", "short_label", "factor", "verification")
    list_filter = ("factor", "verification")
    list_select_related = ("factor",)
    search_fields = ("code", "label")
    list_per_page = 200

    @admin.display(description="label")
    def short_label(self, obj: Indicator) -> str:
        return obj.label if len(obj.label) <= 90 else obj.label[:87] + "..."

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self.message_user(request, WEIGHTS_ELSEWHERE)
        return super().changelist_view(request, extra_context)


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


class DraftForm(ModelForm):  # type: ignore[type-arg]
    """A draft's weights, limits and thresholds as JSON, checked by the service on save."""

    class Meta:
        model = MethodologyVersion
        fields = [
            "title",
            "rationale",
            "factor_weights",
            "indicator_weights",
            "staleness_days",
            "thresholds",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors or self.instance.pk is None:
            return cleaned
        # Check with the service's rules, without writing (a savepoint rolled back).
        try:
            with transaction.atomic():
                methodology.edit_draft(self.instance, by=None, **_draft_fields(cleaned))
                transaction.set_rollback(True)
        except methodology.MethodologyError as exc:
            for field_name, messages in exc.errors.items():
                self.add_error(field_name if field_name in self.fields else None, messages)
        return cleaned


def _draft_fields(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    return {name: cleaned.get(name) for name in DraftForm.Meta.fields}


@admin.register(MethodologyVersion)
class MethodologyVersionAdmin(admin.ModelAdmin):
    """Versions: drafts are edited here or on the methodology pages, through one service.

    Published and superseded versions are read-only; new drafts are started on the
    methodology page (from the published version, an earlier one, or a calibration).
    """

    form = DraftForm
    list_display = ("number", "title", "status", "created_by", "created_at", "published_at")
    list_filter = ("status",)
    ordering = ("-number",)
    actions = ["request_preview", "publish_with_rationale"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # drafts start from a version, on the methodology page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record stays; a draft is discarded, not deleted

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.status == MethodologyVersion.Status.DRAFT)

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        assert isinstance(obj, MethodologyVersion)
        methodology.edit_draft(
            MethodologyVersion.objects.get(pk=obj.pk),
            by=request.user,
            note="Edited in the administration.",
            **_draft_fields(form.cleaned_data),
        )

    @admin.action(description="Preview the selected drafts against the published version")
    def request_preview(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for version in queryset.filter(status=MethodologyVersion.Status.DRAFT):
            methodology.request_preview(version, by=request.user)
            self.message_user(request, f"Preview of v{version.number} requested.")

    @admin.action(description="Publish the selected draft (its rationale is required)")
    def publish_with_rationale(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for version in queryset.filter(status=MethodologyVersion.Status.DRAFT):
            try:
                methodology.request_publication(
                    version, by=request.user, rationale=version.rationale
                )
            except methodology.MethodologyError as exc:
                self.message_user(request, f"v{version.number}: {exc}", level="error")
            else:
                self.message_user(
                    request,
                    f"v{version.number} is being published: every score is recomputed under "
                    "it, then it replaces the published version.",
                )


@admin.register(MethodologyEvent)
class MethodologyEventAdmin(ReadOnlyAdmin):
    """The methodology's audit log."""

    list_display = ("at", "version", "kind", "actor", "note")
    list_filter = ("kind",)
    list_select_related = ("version", "actor")


@admin.register(MethodologyJob)
class MethodologyJobAdmin(ReadOnlyAdmin):
    list_display = ("requested_at", "kind", "version", "status", "requested_by", "finished_at")
    list_filter = ("kind", "status")
    list_select_related = ("version", "requested_by")


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


@admin.register(SituationProfile)
class SituationProfileAdmin(admin.ModelAdmin):
    """Named weight overlays; their scores are shown beside the standard ones."""

    list_display = ("name", "factor_multipliers", "indicator_multipliers", "created_by")
    readonly_fields = ("created_by",)

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        assert isinstance(obj, SituationProfile)
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        countries = set(obj.assignments.values_list("country__iso3", flat=True))
        if countries:
            services.request_recompute(countries=countries, reason="situation profile edited")


@admin.register(ProfileAssignment)
class ProfileAssignmentAdmin(admin.ModelAdmin):
    """A profile applied to a country for a span, with a justification; saving one
    recomputes that country (its situation scores with it)."""

    list_display = ("country", "profile", "starts_on", "ends_on", "assigned_by")
    list_filter = ("profile",)
    list_select_related = ("country", "profile", "assigned_by")
    raw_id_fields = ("country",)
    readonly_fields = ("assigned_by",)

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        assert isinstance(obj, ProfileAssignment)
        if not change:
            obj.assigned_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        services.request_recompute(
            countries=[obj.country.iso3], reason="situation profile assigned"
        )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        assert isinstance(obj, ProfileAssignment)
        super().delete_model(request, obj)  # its scores go with it


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

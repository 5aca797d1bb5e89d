from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from countries.models import Country, MassKillingEpisode


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ("iso3", "name", "region", "sub_region", "un_status")
    list_filter = ("region", "sub_region", "un_status")
    search_fields = ("iso3", "iso2", "name")


@admin.register(MassKillingEpisode)
class MassKillingEpisodeAdmin(admin.ModelAdmin):
    """Administrators record past episodes, each with its source; analysts read them on
    the country page."""

    list_display = ("country", "start_year", "end_year", "perpetrator", "source", "recorded_by")
    list_filter = ("country__region",)
    search_fields = ("country__name", "country__iso3", "perpetrator", "description", "source")
    autocomplete_fields = ("country",)
    readonly_fields = ("recorded_by", "created_at")
    list_select_related = ("country", "recorded_by")
    fields = (
        "country",
        ("start_year", "end_year"),
        "perpetrator",
        "description",
        ("source", "source_url"),
        "note",
        ("recorded_by", "created_at"),
    )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Who recorded it is the first person to save it, kept through later edits.
        if obj.recorded_by_id is None:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)

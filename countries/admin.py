from __future__ import annotations

from django.contrib import admin

from countries.models import Country


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ("iso3", "name", "region", "sub_region", "un_status")
    list_filter = ("region", "sub_region", "un_status")
    search_fields = ("iso3", "iso2", "name")

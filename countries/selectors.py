"""Read-side queries for countries."""

from __future__ import annotations

from countries.models import Country


def country_by_iso3(*, iso3: str) -> Country:
    """The country with this ISO 3166 alpha-3 code (case-insensitive input).

    Raises ``Country.DoesNotExist`` if there is none.
    """
    return Country.objects.get(iso3=iso3.strip().upper())


def countries_by_code() -> dict[str, Country]:
    """Every country keyed by its ISO 3166 alpha-3 code, fetched in one query."""
    return {country.iso3: country for country in Country.objects.all()}

"""Read-side queries for countries."""

from __future__ import annotations

from django.db.models import F, QuerySet

from countries.models import Country, MassKillingEpisode


def country_by_iso3(*, iso3: str) -> Country:
    """The country with this ISO 3166 alpha-3 code (case-insensitive input).

    Raises ``Country.DoesNotExist`` if there is none.
    """
    return Country.objects.get(iso3=iso3.strip().upper())


def countries_by_code() -> dict[str, Country]:
    """Every country keyed by its ISO 3166 alpha-3 code, fetched in one query."""
    return {country.iso3: country for country in Country.objects.all()}


def _episodes_of(country: Country) -> QuerySet[MassKillingEpisode]:
    """Newest first, ongoing ones first of all."""
    return MassKillingEpisode.objects.filter(country=country).order_by(
        F("end_year").desc(nulls_first=True), "-start_year", "pk"
    )


def mass_killing_episodes(*, country: Country) -> list[MassKillingEpisode]:
    """The country's recorded episodes, newest first (ongoing ones first of all), one query."""
    return list(_episodes_of(country))


EPISODE_EXPORT_COLUMNS = [
    "country",
    "start_year",
    "end_year",
    "perpetrator",
    "description",
    "source",
    "source_url",
    "note",
    "recorded_by",
    "created_at",
]


def mass_killing_episode_rows(*, country: Country) -> list[tuple[object, ...]]:
    """The country's episodes as rows of ``EPISODE_EXPORT_COLUMNS``, in one query."""
    return list(
        _episodes_of(country).values_list(
            "country__iso3",
            "start_year",
            "end_year",
            "perpetrator",
            "description",
            "source",
            "source_url",
            "note",
            "recorded_by__username",
            "created_at",
        )
    )

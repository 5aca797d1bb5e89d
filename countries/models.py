from __future__ import annotations

from django.conf import settings
from django.db import models


class Country(models.Model):
    """A UN member or observer state, keyed by its ISO 3166 codes, with its UN M49 region."""

    class Status(models.TextChoices):
        MEMBER = "member", "UN member state"
        OBSERVER = "observer", "UN observer state"

    iso3 = models.CharField("ISO 3166 alpha-3", max_length=3, unique=True)
    iso2 = models.CharField("ISO 3166 alpha-2", max_length=2, unique=True)
    numeric = models.CharField("ISO 3166 numeric", max_length=3, unique=True)
    name = models.CharField(max_length=100)
    official_name = models.CharField(max_length=200, blank=True)
    region = models.CharField("UN M49 region", max_length=40)
    sub_region = models.CharField("UN M49 sub-region", max_length=60)
    un_status = models.CharField(max_length=10, choices=Status.choices, default=Status.MEMBER)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "countries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(iso3__regex=r"^[A-Z]{3}$"), name="country_iso3_format"
            ),
            models.CheckConstraint(
                condition=models.Q(iso2__regex=r"^[A-Z]{2}$"), name="country_iso2_format"
            ),
            models.CheckConstraint(
                condition=models.Q(numeric__regex=r"^[0-9]{3}$"), name="country_numeric_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.iso3})"


class MassKillingEpisode(models.Model):
    """A past (or ongoing) episode of mass killing in a country.

    The best predictor of atrocity is past atrocity, so the country page lists these.
    Episodes come from a public episode list (``event_code`` set, refreshed by
    ``import_public_data``: a newer file updates them rather than adding duplicates) or
    are recorded by an administrator. An empty list means "none recorded here", never
    "none happened".
    """

    country = models.ForeignKey(
        Country, on_delete=models.CASCADE, related_name="mass_killing_episodes"
    )
    start_year = models.PositiveSmallIntegerField()
    end_year = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty while the episode is ongoing."
    )
    event_code = models.CharField(
        max_length=30,
        unique=True,
        null=True,
        blank=True,
        help_text="The episode list's identifier (e.g. rwa1994s1); empty for hand-made records.",
    )
    state_led = models.BooleanField(
        null=True, blank=True, help_text="Led by the state (yes) or by non-state groups (no)."
    )
    ethnic_groups_targeted = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Ethnic groups targeted: 0 none (other grounds), 1 one group, 2 several.",
    )
    perpetrator = models.CharField(max_length=200, blank=True)
    description = models.TextField(help_text="What happened, and to whom.")
    source = models.CharField(max_length=200, help_text="Where this record comes from.")
    source_url = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["country", "-start_year", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_year__isnull=True)
                | models.Q(end_year__gte=models.F("start_year")),
                name="mass_killing_episode_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["country", "start_year"])]

    def __str__(self) -> str:
        return f"{self.country_id}: {self.start_year}-{self.end_year or 'ongoing'}"

    @property
    def ongoing(self) -> bool:
        return self.end_year is None

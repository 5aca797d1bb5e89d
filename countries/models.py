from __future__ import annotations

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

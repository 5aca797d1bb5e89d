"""Write-side business logic for countries."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pycountry
from django.db import transaction

from countries.models import Country

M49_CSV_PATH = Path(__file__).resolve().parent / "data" / "un_m49.csv"
"""The checked-in UN M49 table: ``iso3,region,sub_region,un_status``, one row per state."""

_CSV_FIELDS = ("iso3", "region", "sub_region", "un_status")
_SYNCED_FIELDS = ("iso2", "numeric", "name", "official_name", "region", "sub_region", "un_status")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """How many Country rows a load created, changed, and left as they were."""

    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def load_countries(*, csv_path: Path | None = None) -> LoadResult:
    """Upsert one Country per row of the UN M49 table, keyed on ISO 3166 alpha-3.

    ``csv_path`` defaults to :data:`M49_CSV_PATH`. Region, sub-region and UN status come
    from the CSV; alpha-2, numeric code, name (pycountry's ``common_name`` when it has
    one, else ``name``) and official name come from ``pycountry``.

    The whole file is validated before anything is written: an iso3 unknown to pycountry,
    a duplicated iso3, an empty region or sub-region, or an unknown ``un_status`` raises
    ``ValueError`` naming the offending line, and the database is left untouched. The
    writes run in one transaction.

    Idempotent: a second run reports every row as unchanged. Countries in the database
    that the CSV does not list are left alone (never deleted).
    """
    path = M49_CSV_PATH if csv_path is None else csv_path
    wanted = _read_table(path)

    with transaction.atomic():
        existing = Country.objects.in_bulk(list(wanted), field_name="iso3")
        to_create: list[Country] = []
        to_update: list[Country] = []
        for iso3, values in wanted.items():
            country = existing.get(iso3)
            if country is None:
                to_create.append(Country(iso3=iso3, **values))
                continue
            changed = False
            for field, value in values.items():
                if getattr(country, field) != value:
                    setattr(country, field, value)
                    changed = True
            if changed:
                to_update.append(country)
        if to_update:
            Country.objects.bulk_update(to_update, _SYNCED_FIELDS)
        if to_create:
            Country.objects.bulk_create(to_create)

    return LoadResult(
        created=len(to_create),
        updated=len(to_update),
        unchanged=len(wanted) - len(to_create) - len(to_update),
    )


def _read_table(path: Path) -> dict[str, dict[str, str]]:
    """Parse and validate the CSV into ``{iso3: field values}``, or raise ``ValueError``."""
    statuses = set(Country.Status.values)
    rows: dict[str, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != _CSV_FIELDS:
            raise ValueError(
                f"{path.name}: header must be {','.join(_CSV_FIELDS)}, "
                f"not {','.join(reader.fieldnames or ())!r}"
            )
        for row in reader:
            where = f"{path.name} line {reader.line_num} ({row!r})"
            if None in row or any(value is None for value in row.values()):
                raise ValueError(f"{where}: expected exactly {len(_CSV_FIELDS)} columns")
            iso3 = row["iso3"].strip()
            record = pycountry.countries.get(alpha_3=iso3) if len(iso3) == 3 else None
            if record is None:
                raise ValueError(f"{where}: unknown ISO 3166 alpha-3 code {iso3!r}")
            iso3 = record.alpha_3
            if iso3 in rows:
                raise ValueError(f"{where}: duplicate iso3 {iso3!r}")
            un_status = row["un_status"].strip()
            if un_status not in statuses:
                raise ValueError(
                    f"{where}: unknown un_status {un_status!r} "
                    f"(expected one of {', '.join(sorted(statuses))})"
                )
            region = row["region"].strip()
            sub_region = row["sub_region"].strip()
            if not region or not sub_region:
                raise ValueError(f"{where}: region and sub_region must not be empty")
            rows[iso3] = {
                "iso2": record.alpha_2,
                "numeric": record.numeric,
                "name": getattr(record, "common_name", None) or record.name,
                "official_name": getattr(record, "official_name", None) or "",
                "region": region,
                "sub_region": sub_region,
                "un_status": un_status,
            }
    return rows

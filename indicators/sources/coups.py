"""Coup attempts (Powell & Thyne 1950-2024; Center for Systemic Peace 1945-1949).

From 1950 only country-years with an attempt are listed, so every other panel
country-year of the file's years is 0. ``years_since_coup_attempt`` counts years since
the latest attempt in the data (0 = this year), capped at 10 ("ten or more, or none").
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import (
    Panel,
    SourceTable,
    map_countries,
    one_row_per_country_year,
    read_csv,
    require_years,
    years_since,
)
from indicators.sources.codes import CountryCodes

YEARS_SINCE_CAP = 10


def read(path: Path, *, codes: CountryCodes, panel: Panel) -> SourceTable:
    frame = read_csv(
        path, columns=("ccode", "year", "cou.any"), numeric=("cou.any",), integer=("ccode", "year")
    )
    require_years(path, frame)
    mapped, unmapped = map_countries(path, frame, codes, system="cow", column="ccode")
    attempts = mapped.groupby(["iso3", "year"], as_index=False)["cou.any"].max()
    attempts["year"] = attempts["year"].astype(int)
    values = panel.fill(attempts, first=int(frame["year"].min()), last=int(frame["year"].max()))
    values = values.sort_values(["iso3", "year"]).reset_index(drop=True)
    values["years_since_coup_attempt"] = years_since(
        values.rename(columns={"cou.any": "event"}), cap=YEARS_SINCE_CAP
    )
    table = SourceTable(values=values, rows_read=len(frame), unmapped=unmapped)
    return one_row_per_country_year(table)

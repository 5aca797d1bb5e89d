"""UN World Population Prospects 2024: infant mortality, ISO3-coded country-years.

The 2024 values are the medium-variant projection; years before a country's
independence (the UN back-casts today's borders) fall outside the panel.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, map_countries, read_csv, require_years
from indicators.sources.codes import CountryCodes


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    frame = read_csv(
        path, columns=("iso3c", "year", "un_imr"), numeric=("un_imr",), integer=("year",)
    )
    require_years(path, frame)
    mapped, unmapped = map_countries(path, frame, codes, system="iso3", column="iso3c")
    values = mapped[["iso3", "year", "un_imr"]].astype({"year": int})
    return SourceTable(
        values=values.reset_index(drop=True), rows_read=len(frame), unmapped=unmapped
    )

"""World Bank World Development Indicators: ISO3-coded country-years.

Regional and income aggregates ("World", "Arab World", ...) are reported as unmapped.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, map_countries, read_csv, require_years
from indicators.sources.codes import CountryCodes

VARIABLES = ("wdi.gdppcgrow.new", "wdi.gdppc.new", "wdi.popsize.new")


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    frame = read_csv(
        path, columns=("iso3c", "year", *VARIABLES), numeric=VARIABLES, integer=("year",)
    )
    require_years(path, frame)
    mapped, unmapped = map_countries(path, frame, codes, system="iso3", column="iso3c")
    values = mapped[["iso3", "year", *VARIABLES]].astype({"year": int})
    return SourceTable(
        values=values.reset_index(drop=True), rows_read=len(frame), unmapped=unmapped
    )

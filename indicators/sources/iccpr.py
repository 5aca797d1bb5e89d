"""ICCPR First Optional Protocol status (the Early Warning Project's compilation).

Its rows are also EWP's country-year panel of independent states, 1946-2022, which
``panel`` turns into the ``Panel`` every other importer restricts and zero-fills with.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import (
    Panel,
    SourceTable,
    one_row_per_country_year,
    read_coded_country_years,
)
from indicators.sources.codes import CountryCodes


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    table = read_coded_country_years(
        path, codes=codes, system="cow", code_column="ccode", variables=("ios.iccpr1",)
    )
    return one_row_per_country_year(table)


def panel(table: SourceTable, *, last_year: int) -> Panel:
    """Each country's panel years; the countries of the file's last year carry on to
    ``last_year`` (states that existed then still exist)."""
    values = table.values
    final = int(values["year"].max())
    years: dict[str, set[int]] = {}
    for iso3, year in values[["iso3", "year"]].itertuples(index=False):
        years.setdefault(iso3, set()).add(int(year))
    for iso3 in values.loc[values["year"] == final, "iso3"]:
        years[iso3].update(range(final + 1, last_year + 1))
    return Panel(years)

"""UNHCR refugee population statistics by country of origin, as a share of population.

``displaced_share`` = (refugees + asylum-seekers + UNHCR-assisted IDPs + other people in
need of international protection) of the country's origin at the end of the year,
divided by its population (World Bank SP.POP.TOTL). From 1980 only: before that UNHCR
gave about half of all refugees an unknown origin, so a low share meant little.
Stateless people are left out (their origin is "stateless"), and so are returns.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, map_countries, read_csv, require_years
from indicators.sources.codes import CountryCodes

FIRST_YEAR = 1980
COUNTS = ("refugees", "asylum_seekers", "idps", "oip")


def read(path: Path, *, codes: CountryCodes, population: SourceTable) -> SourceTable:
    frame = read_csv(path, columns=("iso3", "year", *COUNTS), numeric=COUNTS, integer=("year",))
    require_years(path, frame)
    mapped, unmapped = map_countries(
        path, frame.rename(columns={"iso3": "code"}), codes, system="iso3", column="code"
    )
    table = SourceTable(values=mapped.iloc[0:0], rows_read=len(frame), unmapped=unmapped)
    early = mapped["year"] < FIRST_YEAR
    if early.any():
        table.skipped[f"years before {FIRST_YEAR} (origins then largely unknown)"] += int(
            early.sum()
        )
    mapped = mapped[~early].astype({"year": int})
    people = population.values[["iso3", "year", "wdi.popsize.new"]]
    joined = mapped.merge(people, on=["iso3", "year"], how="left")
    no_population = joined["wdi.popsize.new"].isna() | (joined["wdi.popsize.new"] <= 0)
    if no_population.any():
        table.skipped["no World Bank population for the year"] += int(no_population.sum())
    joined = joined[~no_population]
    displaced = joined[list(COUNTS)].fillna(0.0).sum(axis=1)
    joined["displaced_share"] = displaced / joined["wdi.popsize.new"]
    table.values = joined[["iso3", "year", "displaced_share"]].reset_index(drop=True)
    return table

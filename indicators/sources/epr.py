"""Ethnic Power Relations, country level (GROWup): GW-coded country-years to 2020.

``discrimpop`` and ``exclpop`` are shares of the whole population; where ethnicity is
not politically relevant (``cntr_relevance`` P) EPR codes them 0, which is what they are.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, map_countries, read_csv, require_years
from indicators.sources.codes import CountryCodes

VARIABLES = ("discrimpop", "exclpop")


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    frame = read_csv(
        path,
        columns=("countries_gwid", "year", *VARIABLES),
        numeric=VARIABLES,
        integer=("countries_gwid", "year"),
    )
    require_years(path, frame)
    mapped, unmapped = map_countries(path, frame, codes, system="gw", column="countries_gwid")
    values = mapped[["iso3", "year", *VARIABLES]].astype({"year": int})
    return SourceTable(
        values=values.reset_index(drop=True), rows_read=len(frame), unmapped=unmapped
    )

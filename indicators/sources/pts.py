"""Political Terror Scale 2022: levels 1-5 from three annual reports, 1976-2021.

Joined on the COW number, with what that number cannot say decided here: the Soviet
Union (no COW number) is Russia to 1991; Serbia from 2006 (no COW number) and Palestine
are found by their World Bank code; of the two Yugoslavias, both numbered 345, the
Socialist Federal Republic is taken to 1991 and the Federal Republic from 1992.
Entities that are not states (the European Union, Crimea, Somaliland, Gaza, ...) are
reported as unmapped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from indicators.sources.base import (
    SourceTable,
    map_countries,
    one_row_per_country_year,
    read_csv,
    require_years,
)
from indicators.sources.codes import CountryCodes, Unmapped

VARIABLES = ("PTS_A", "PTS_S", "PTS_H")
BY_NAME = {"Soviet Union": ("365", 1991)}  # name -> (COW number to use, last year)
BY_WORLD_BANK_CODE = {"SRB": "345", "WBG": "PSE"}
YUGOSLAVIA_SPLIT = {
    "Yugoslavia, Socialist Federal Republic of": (None, 1991),
    "Yugoslavia, Federal Republic of": (1992, None),
}


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    frame = read_csv(
        path,
        columns=("Country", "Year", "COW_Code_N", "WordBank_Code_A", *VARIABLES),
        numeric=VARIABLES,
        integer=("Year",),
        na_values=("NA",),
    )
    frame = frame.rename(columns={"Year": "year"})
    require_years(path, frame)
    skipped: dict[str, int] = {}
    keep = pd.Series(True, index=frame.index)
    for name, (first, last) in YUGOSLAVIA_SPLIT.items():
        rows = frame["Country"] == name
        outside = rows & ((frame["year"] < (first or 0)) | (frame["year"] > (last or 9999)))
        if outside.any():
            skipped[f"{name} outside its years (the other Yugoslavia is used)"] = int(outside.sum())
        keep &= ~outside
    frame = frame[keep].copy()
    unscored = frame[list(VARIABLES)].isna().all(axis=1)
    if unscored.any():
        skipped["no score from any report that year"] = int(unscored.sum())
    frame = frame[~unscored].copy()
    cow = frame["COW_Code_N"].replace("NA", "").str.strip()
    for name, (code, last) in BY_NAME.items():
        rows = (frame["Country"] == name) & (cow == "")
        cow[rows & (frame["year"] <= last)] = code
    # Entities with no COW number: a World Bank code of ours, or reported by name below.
    world_bank = frame["WordBank_Code_A"].str.strip()
    iso3_rows = (cow == "") & world_bank.isin(list(BY_WORLD_BANK_CODE))
    by_iso3 = frame[iso3_rows].assign(code=world_bank[iso3_rows].map(BY_WORLD_BANK_CODE))
    by_cow = frame[(cow != "") & ~iso3_rows].assign(code=cow)
    unnamed = frame[(cow == "") & ~iso3_rows]
    cow_mapped, cow_unmapped = map_countries(path, by_cow, codes, system="cow", column="code")
    serbia = by_iso3["code"] == "345"
    serbia_mapped, serbia_unmapped = map_countries(
        path, by_iso3[serbia], codes, system="cow", column="code"
    )
    iso_mapped, iso_unmapped = map_countries(
        path, by_iso3[~serbia], codes, system="iso3", column="code"
    )
    unmapped = [*cow_unmapped, *serbia_unmapped, *iso_unmapped]
    for name, rows in unnamed.groupby("Country").size().items():
        unmapped.append(
            Unmapped("cow", f"none ({name})", "not a state of ours (no COW code)", int(rows))
        )
    mapped = pd.concat([cow_mapped, serbia_mapped, iso_mapped])
    values = mapped[["iso3", "year", *VARIABLES]].astype({"year": int})
    table = SourceTable(
        values=values.reset_index(drop=True),
        rows_read=len(frame) + sum(skipped.values()),
        unmapped=unmapped,
    )
    table.skipped.update(skipped)
    return one_row_per_country_year(table)

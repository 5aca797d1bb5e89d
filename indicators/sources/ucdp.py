"""Uppsala Conflict Data Program: battle deaths, one-sided violence, non-state conflict.

All three are GW-coded event data: a country-year without a row had no such conflict,
so panel country-years in the file's years get 0. A cell may list several countries
("490, 516, 517"); UCDP does not split the deaths between them, so each listed country
is given the whole count (the transforms are thresholds on orders of magnitude, which a
double count moves little; splitting needs UCDP's event data).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from indicators.sources.base import (
    Panel,
    SourceFormatError,
    SourceTable,
    log_rise,
    map_countries,
    read_csv,
    require_years,
)
from indicators.sources.codes import CountryCodes

# Battle deaths in interstate, intrastate and internationalised intrastate conflicts
# (type 1, extrasystemic, is colonial war and does not occur after 1989).
STATE_BASED_TYPES = (2, 3, 4)


def _split_locations(path: Path, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per listed GW code (column ``gw``), keeping the file's line numbers."""
    parts = frame[column].fillna("").str.split(",")
    exploded = frame.assign(gw=parts).explode("gw")
    exploded["gw"] = exploded["gw"].str.strip()
    bad = ~exploded["gw"].str.fullmatch(r"\d+")
    if bad.any():
        row = exploded.index[bad][0]
        raise SourceFormatError(
            f"{path.name}, column {column}: row {row}: {frame.at[row, column]!r} is not a "
            "list of GW codes."
        )
    exploded["gw"] = exploded["gw"].astype(int)
    return exploded


def _event_table(
    path: Path,
    frame: pd.DataFrame,
    *,
    codes: CountryCodes,
    panel: Panel,
    location: str,
    sums: dict[str, pd.Series],
) -> SourceTable:
    """Country-year sums of each series in ``sums`` (aligned with ``frame``), zero-filled."""
    require_years(path, frame)
    located = _split_locations(path, frame.assign(**sums), location)
    mapped, unmapped = map_countries(path, located, codes, system="gw", column="gw")
    totals = mapped.groupby(["iso3", "year"], as_index=False)[list(sums)].sum()
    totals["year"] = totals["year"].astype(int)
    first, last = int(frame["year"].min()), int(frame["year"].max())
    values = panel.fill(totals, first=first, last=last)
    return SourceTable(values=values, rows_read=len(frame), unmapped=unmapped)


def read_battle_deaths(path: Path, *, codes: CountryCodes, panel: Panel) -> SourceTable:
    """``battle_deaths``: sum of ``bd_best`` over state-based conflict dyads located in the
    country (``gwno_loc``); ``battle_deaths_rise``: its change on the year before, in
    orders of magnitude (log10 of 1 + deaths)."""
    frame = read_csv(
        path,
        columns=("year", "bd_best", "type_of_conflict", "gwno_loc"),
        numeric=("bd_best",),
        integer=("year", "type_of_conflict"),
    )
    state_based = frame["type_of_conflict"].isin(STATE_BASED_TYPES)
    deaths = frame["bd_best"].where(state_based, 0.0).fillna(0.0)
    table = _event_table(
        path, frame, codes=codes, panel=panel, location="gwno_loc", sums={"battle_deaths": deaths}
    )
    table.values["battle_deaths_rise"] = log_rise(table.values, "battle_deaths")
    return table


def read_one_sided(path: Path, *, codes: CountryCodes, panel: Panel) -> SourceTable:
    """``civilian_deaths``: civilians deliberately killed by any actor in the country
    (``best_fatality_estimate`` by ``gwno_location``); ``civilian_deaths_rise``: its
    change on the year before in orders of magnitude."""
    frame = read_csv(
        path,
        columns=("year", "best_fatality_estimate", "gwno_location", "is_government_actor"),
        numeric=("best_fatality_estimate",),
        integer=("year", "is_government_actor"),
    )
    deaths = frame["best_fatality_estimate"].fillna(0.0)
    table = _event_table(
        path,
        frame,
        codes=codes,
        panel=panel,
        location="gwno_location",
        sums={"civilian_deaths": deaths},
    )
    table.values["civilian_deaths_rise"] = log_rise(table.values, "civilian_deaths")
    return table


def read_non_state(path: Path, *, codes: CountryCodes, panel: Panel) -> SourceTable:
    """``nonstate_deaths`` (all), ``communal_deaths`` (org 3: identity groups),
    ``supporter_deaths`` (org 2: supporter groups) and ``organised_groups_fighting``
    (number of org-1 conflicts: formally organised armed groups)."""
    frame = read_csv(
        path,
        columns=("year", "org", "best_fatality_estimate", "gwno_location"),
        numeric=("best_fatality_estimate",),
        integer=("year", "org"),
    )
    deaths = frame["best_fatality_estimate"].fillna(0.0)
    org = frame["org"]
    return _event_table(
        path,
        frame,
        codes=codes,
        panel=panel,
        location="gwno_location",
        sums={
            "nonstate_deaths": deaths,
            "communal_deaths": deaths.where(org == 3, 0.0),
            "supporter_deaths": deaths.where(org == 2, 0.0),
            "organised_groups_fighting": (org == 1).astype(float),
        },
    )

"""What every importer shares: reading a CSV strictly, the country-year panel, the result.

An importer (one module per provider) turns its file into a ``SourceTable``: one row
per country and year with the values of its variables, plus an account of every row it
left out and why. It never writes anything; ``indicators.public_data`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from indicators.sources.codes import CountryCodes, System, UnknownCodeError, Unmapped


class SourceFormatError(ValueError):
    """A data file cannot be read as what it should be; the message names file and row."""


@dataclass
class SourceTable:
    """Country-year values of a data set's variables, and what was left out.

    ``values``: columns iso3, year, then one column per variable (floats, NaN missing).
    ``skipped``: reason -> number of source rows (or country-years) left out for it.
    """

    values: pd.DataFrame
    rows_read: int
    unmapped: list[Unmapped] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def read_csv(
    path: Path,
    *,
    columns: Sequence[str],
    numeric: Collection[str] = (),
    integer: Collection[str] = (),
    na_values: Sequence[str] = (),
) -> pd.DataFrame:
    """The file's rows with ``columns`` (all required), indexed by file line number.

    ``numeric`` columns become floats (empty and ``na_values`` cells are NaN); any other
    text there is an error naming its row. ``integer`` columns must hold whole numbers
    where they are not empty. Raises ``SourceFormatError``.
    """
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            encoding="utf-8",
            skipinitialspace=False,
        )
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path.name} is not UTF-8 text: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceFormatError(f"{path.name} is not a readable CSV file: {exc}") from exc
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceFormatError(
            f"{path.name} lacks the column(s) {', '.join(missing)}: is it the right file?"
        )
    frame = frame[list(columns)].copy()
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # the header is line 1
    missing_text = {"", *na_values}
    for column in {*numeric, *integer}:
        text = frame[column].str.strip()
        empty = text.isin(missing_text)
        number = pd.to_numeric(text.where(~empty), errors="coerce")
        bad = ~empty & number.isna()
        if bad.any():
            _raise_bad(path, column, text[bad], "is not a number")
        if column in integer:
            fractional = number.notna() & (number != np.floor(number))
            if fractional.any():
                _raise_bad(path, column, text[fractional], "is not a whole number")
        frame[column] = number.astype(float)
    return frame


def _raise_bad(path: Path, column: str, cells: pd.Series, problem: str) -> None:
    shown = "; ".join(f"row {row}: {value!r} {problem}" for row, value in cells.head(3).items())
    more = f" (and {len(cells) - 3} more)" if len(cells) > 3 else ""
    raise SourceFormatError(f"{path.name}, column {column}: {shown}{more}.")


def require_years(path: Path, frame: pd.DataFrame, column: str = "year") -> None:
    """Every row has a plausible year (1800-2100)."""
    years = frame[column]
    bad = years.isna() | (years < 1800) | (years > 2100)
    if bad.any():
        _raise_bad(path, column, frame[column][bad].astype(str), "is not a year")


def map_countries(
    path: Path, frame: pd.DataFrame, codes: CountryCodes, *, system: System, column: str
) -> tuple[pd.DataFrame, list[Unmapped]]:
    """``codes.map_frame``, with an unknown code reported against this file."""
    try:
        return codes.map_frame(frame, system=system, code_column=column)
    except UnknownCodeError as exc:
        raise SourceFormatError(f"{path.name}, column {column}: {exc}.") from exc


def read_coded_country_years(
    path: Path,
    *,
    codes: CountryCodes,
    system: System,
    code_column: str,
    variables: Sequence[str],
) -> SourceTable:
    """A file of one row per coded country and year with numeric ``variables``: checked,
    mapped onto our countries (``system`` codes in ``code_column``), kept as published."""
    frame = read_csv(
        path,
        columns=(code_column, "year", *variables),
        numeric=variables,
        integer=(code_column, "year"),
    )
    require_years(path, frame)
    mapped, unmapped = map_countries(path, frame, codes, system=system, column=code_column)
    values = mapped[["iso3", "year", *variables]].astype({"year": int})
    return SourceTable(
        values=values.reset_index(drop=True), rows_read=len(frame), unmapped=unmapped
    )


class Panel:
    """The country-years of independent states, to restrict and to zero-fill with.

    Built from the Early Warning Project's country-year panel (see the mapping file's
    ``universe``). Countries the panel does not know (Palestine) are never restricted
    and never zero-filled: their data stands as it is.
    """

    def __init__(self, years_by_country: Mapping[str, Iterable[int]]) -> None:
        self._years = {
            iso3: frozenset(int(y) for y in years) for iso3, years in years_by_country.items()
        }
        pairs = [(iso3, y) for iso3, ys in self._years.items() for y in ys]
        self._frame = pd.DataFrame(pairs, columns=["iso3", "year"])

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(self._years)

    def years_of(self, iso3: str) -> frozenset[int]:
        return self._years.get(iso3, frozenset())

    def restrict(self, table: SourceTable) -> SourceTable:
        """Drop rows of panel countries in years they were not independent states."""
        values = table.values
        in_panel = values["iso3"].isin(list(self._years))
        known = values.merge(self._frame.assign(_in=True), on=["iso3", "year"], how="left")
        outside = in_panel.to_numpy() & known["_in"].isna().to_numpy()
        if outside.any():
            table.skipped["country-years before independence or after dissolution"] += int(
                outside.sum()
            )
        table.values = values[~outside].reset_index(drop=True)
        return table

    def fill(
        self, values: pd.DataFrame, *, first: int, last: int, fill: float = 0.0
    ) -> pd.DataFrame:
        """Every panel country-year from ``first`` to ``last``; those without a row get
        ``fill`` in every variable column (event data: no row means no event)."""
        grid = self._frame[(self._frame["year"] >= first) & (self._frame["year"] <= last)]
        merged = grid.merge(values, on=["iso3", "year"], how="outer")
        columns = [c for c in merged.columns if c not in ("iso3", "year")]
        from_grid = merged.set_index(["iso3", "year"]).index.isin(
            grid.set_index(["iso3", "year"]).index
        )
        merged.loc[from_grid, columns] = merged.loc[from_grid, columns].fillna(fill)
        return merged.sort_values(["iso3", "year"]).reset_index(drop=True)


def one_row_per_country_year(table: SourceTable, *, label: str = "") -> SourceTable:
    """Keep the first row of each country-year and count the others as skipped.

    Historical rules make duplicates rare (two codes for one country in one year); where
    one remains it is said, never silently merged.
    """
    values = table.values
    duplicated = values.duplicated(["iso3", "year"], keep="first")
    if duplicated.any():
        for iso3, year in values.loc[duplicated, ["iso3", "year"]].itertuples(index=False):
            table.skipped[f"a second row for {iso3} in {year}{label} (the first is kept)"] += 1
        table.values = values[~duplicated].reset_index(drop=True)
    return table


def years_since(events: pd.DataFrame, *, cap: int) -> pd.Series:
    """For rows (iso3, year, event 0/1) sorted by country and year: years since the
    latest event in the same country up to that year (0 = this year), capped at ``cap``
    and ``cap`` when there was none."""
    result = np.full(len(events), float(cap))
    last_seen: dict[str, int] = {}
    for position, (iso3, year, event) in enumerate(
        events[["iso3", "year", "event"]].itertuples(index=False)
    ):
        if event == 1:
            last_seen[iso3] = int(year)
        if iso3 in last_seen:
            result[position] = min(cap, int(year) - last_seen[iso3])
    return pd.Series(result, index=events.index)


def log_rise(values: pd.DataFrame, column: str) -> pd.Series:
    """log10(1 + x) this year minus last year, per country; NaN where last year is unknown."""
    ordered = values.sort_values(["iso3", "year"])
    logged = np.log10(1 + ordered[column].astype(float))
    previous = logged.groupby(ordered["iso3"]).shift(1)
    previous_year = ordered["year"].groupby(ordered["iso3"]).shift(1)
    rise = (logged - previous).where(previous_year == ordered["year"] - 1)
    return rise.reindex(values.index)

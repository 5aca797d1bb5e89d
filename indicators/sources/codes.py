"""The one place that maps the data sets' country codes onto our countries.

The public data sets name countries in three ways: Correlates of War codes (COW: V-Dem,
coups, ICCPR, PTS, the episode list), Gleditsch-Ward codes (GW: EPR and UCDP) and ISO
3166 alpha-3 codes (World Bank, UN, UNHCR). ``country_codes.csv`` in the data folder
pairs COW and GW codes with ISO3 codes; this module adds the decisions that table cannot
make, one explicit rule per historical state (``HISTORICAL_RULES``), and it says why
every code it cannot map is left out, so that no row is ever dropped silently.

Our countries are today's UN member and observer states. A historical state is either
scored as the country that continues it (the Soviet Union as Russia, Yugoslavia as
Serbia, West Germany as Germany, Czechoslovakia as the Czech Republic, North Yemen as
Yemen, North Vietnam as Vietnam) or not scored at all, with the reason given (East
Germany, South Yemen, South Vietnam, Zanzibar). Kosovo, Taiwan and Tibet are not in our
country table.

Pure: a table in, lookups out; reading the file is the caller's business.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pycountry

System = Literal["cow", "gw", "iso3"]
SYSTEM_LABELS: dict[str, str] = {"cow": "COW", "gw": "GW", "iso3": "ISO3"}


@dataclass(frozen=True)
class Rule:
    """``system`` code ``code`` means ``iso3`` (None: not scored) in years first..last."""

    system: System
    code: int
    iso3: str | None
    reason: str
    first: int | None = None
    last: int | None = None

    def covers(self, year: int) -> bool:
        return (self.first is None or year >= self.first) and (
            self.last is None or year <= self.last
        )


def _both(code: int, iso3: str | None, reason: str, **years: int) -> list[Rule]:
    """The same rule under COW and GW numbering (they agree for these states)."""
    return [Rule("cow", code, iso3, reason, **years), Rule("gw", code, iso3, reason, **years)]


HISTORICAL_RULES: tuple[Rule, ...] = (
    # Germany: COW 260 is West Germany (to 1990) and 255 Germany; GW keeps 260 throughout.
    Rule("cow", 260, "DEU", "West Germany (1949-1990), continued by Germany", last=1990),
    Rule("cow", 260, None, "West Germany after 1990: Germany is coded 255", first=1991),
    Rule("gw", 260, "DEU", "Germany (GW 260 before and after 1990)"),
    *_both(265, None, "East Germany (1949-1990) joined Germany in 1990; not scored separately"),
    # Czechoslovakia: EWP codes Czechia 315 before 1993, so its series continues there.
    *_both(315, "CZE", "Czechoslovakia, continued by the Czech Republic", last=1992),
    *_both(315, None, "Czechoslovakia after its dissolution (a back-cast series)", first=1993),
    *_both(316, "CZE", "Czech Republic", first=1993),
    *_both(
        316,
        None,
        "Czech Republic before 1993 (a back-cast series; Czechoslovakia's is used)",
        last=1992,
    ),
    *_both(317, "SVK", "Slovakia", first=1993),
    *_both(317, None, "Slovakia before 1993 (then part of Czechoslovakia)", last=1992),
    # Yugoslavia, Serbia and Montenegro, Serbia.
    # COW keeps 345 for Serbia; GW numbers Serbia 340 from 2006 (both appear in 2006).
    Rule("cow", 345, "SRB", "Yugoslavia, then Serbia and Montenegro, then Serbia"),
    Rule("gw", 345, "SRB", "Yugoslavia, then Serbia and Montenegro", last=2005),
    Rule("gw", 345, None, "Serbia and Montenegro in 2006: Serbia is GW 340", first=2006),
    Rule("gw", 340, "SRB", "Serbia (GW 340 from 2006)"),
    *_both(347, None, "Kosovo is not a UN member or observer state (not in our table)"),
    *_both(365, "RUS", "Soviet Union up to 1991, continued by Russia"),
    *_both(511, None, "Zanzibar (1963-1964) merged into Tanzania, whose series is 510"),
    # Yemen: COW 678 is North Yemen to 1989 and 679 unified Yemen; GW keeps 678.
    Rule("cow", 678, "YEM", "North Yemen, continued by Yemen", last=1989),
    Rule("cow", 678, None, "North Yemen after 1989: Yemen is coded 679", first=1990),
    Rule("gw", 678, "YEM", "North Yemen, then Yemen (GW 678 throughout)"),
    *_both(680, None, "South Yemen (1967-1990) merged into Yemen; not scored separately"),
    *_both(816, "VNM", "North Vietnam, continued by Vietnam"),
    *_both(817, None, "South Vietnam (1954-1975); Vietnam's series is North Vietnam's"),
    *_both(713, None, "Taiwan is not a UN member or observer state (not in our table)"),
    Rule("gw", 711, None, "Tibet (1946-1950) has no ISO code and is not in our table"),
)


# ISO3-style codes the data sets use for things that are not countries of ours.
ISO3_NOT_COUNTRIES = {
    "XKX": "Kosovo is not a UN member or observer state (not in our table)",
    "UNK": "origin unknown",
    "XXA": "stateless",
    "TIB": "Tibetans (UNHCR code)",
}


@dataclass(frozen=True)
class Unmapped:
    """A code that mapped to none of our countries, and why."""

    system: System
    code: str
    reason: str
    rows: int

    def __str__(self) -> str:
        return f"{SYSTEM_LABELS[self.system]} {self.code}: {self.reason} ({self.rows} rows)"


class UnknownCodeError(ValueError):
    """A code that no table knows: the file is not what it claims to be, or is corrupt."""


class CountryCodes:
    """COW, GW and ISO3 codes, year by year, to the ISO3 codes of our countries."""

    def __init__(self, table: pd.DataFrame, *, ours: Collection[str]) -> None:
        """``table``: the rows of ``country_codes.csv`` (ccode, gwcode, iso3 and name);
        ``ours``: the ISO3 codes of the countries in our database."""
        self.ours = frozenset(ours)
        self._rules: dict[tuple[str, int], list[Rule]] = {}
        for rule in HISTORICAL_RULES:
            self._rules.setdefault((rule.system, rule.code), []).append(rule)
        self._plain: dict[tuple[str, int], tuple[str | None, str]] = {}
        for row in table.itertuples(index=False):
            iso3 = row.iso3 if isinstance(row.iso3, str) and row.iso3 else None
            for system, raw in (("cow", row.ccode), ("gw", row.gwcode)):
                if pd.isna(raw):
                    continue
                key = (system, int(raw))
                if key in self._rules or key in self._plain:
                    continue
                if iso3 is None:
                    self._plain[key] = (None, f"{row.name} has no ISO code")
                elif iso3 not in self.ours:
                    self._plain[key] = (None, f"{row.name} ({iso3}) is not in our country table")
                else:
                    self._plain[key] = (iso3, "")

    def lookup(self, system: System, code: object, year: int) -> tuple[str | None, str]:
        """(our ISO3 code, "") or (None, why it maps to none of our countries)."""
        if system == "iso3":
            text = str(code).strip().upper() if isinstance(code, str) else ""
            if text in self.ours:
                return text, ""
            if not text:
                return None, "no code given (an aggregate or a region)"
            if len(text) != 3 or not text.isalpha():
                raise UnknownCodeError(f"{text or '(empty)'!r} is not an ISO3 code")
            known = pycountry.countries.get(alpha_3=text)
            if known is not None:
                return None, f"{known.name} is not in our country table"
            return None, ISO3_NOT_COUNTRIES.get(text, "not a country (an aggregate or a region)")
        number = _as_int(code)
        if number is None:
            return None, "no code given"
        for rule in self._rules.get((system, number), ()):
            if not rule.covers(year):
                continue
            if rule.iso3 is None:
                return None, rule.reason
            if rule.iso3 not in self.ours:
                return None, f"{rule.reason}: {rule.iso3} is not in our country table"
            return rule.iso3, ""
        found = self._plain.get((system, number))
        if found is None:
            raise UnknownCodeError(f"unknown {SYSTEM_LABELS[system]} code {number}")
        return found

    def map_frame(
        self, frame: pd.DataFrame, *, system: System, code_column: str, year_column: str = "year"
    ) -> tuple[pd.DataFrame, list[Unmapped]]:
        """The rows of ``frame`` that map to one of our countries, with an ``iso3`` column,
        and every code that did not map (with its reason and row count).

        Raises ``UnknownCodeError`` naming the first row with a code no table knows.
        """
        keys = frame[[code_column, year_column]].drop_duplicates()
        mapped: dict[tuple[object, int], str | None] = {}
        reasons: dict[tuple[str, str], int] = {}
        for code, year in keys.itertuples(index=False):
            try:
                iso3, _reason = self.lookup(system, code, int(year))
            except UnknownCodeError as exc:
                rows = frame.index[(frame[code_column] == code) & (frame[year_column] == year)]
                raise UnknownCodeError(f"row {rows[0]}: {exc}") from exc
            mapped[(code, int(year))] = iso3
        iso3_column = [
            mapped[(code, int(year))]
            for code, year in zip(frame[code_column], frame[year_column], strict=True)
        ]
        result = frame.assign(iso3=iso3_column)
        missing = result[result["iso3"].isna()]
        for code, year in zip(missing[code_column], missing[year_column], strict=True):
            _iso3, reason = self.lookup(system, code, int(year))
            label = _code_label(code)
            reasons[(label, reason)] = reasons.get((label, reason), 0) + 1
        unmapped = [
            Unmapped(system=system, code=label, reason=reason, rows=rows)
            for (label, reason), rows in sorted(reasons.items())
        ]
        return result[result["iso3"].notna()].copy(), unmapped


def _as_int(code: object) -> int | None:
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return None
    try:
        return int(float(str(code).strip()))
    except ValueError:
        return None


def _code_label(code: object) -> str:
    number = _as_int(code)
    if number is not None:
        return str(number)
    return "(empty)" if code is None or (isinstance(code, float) and pd.isna(code)) else str(code)


def merge_unmapped(groups: Iterable[Iterable[Unmapped]]) -> list[Unmapped]:
    """One entry per (system, code, reason), rows added up."""
    totals: dict[tuple[System, str, str], int] = {}
    for group in groups:
        for item in group:
            key = (item.system, item.code, item.reason)
            totals[key] = totals.get(key, 0) + item.rows
    return [Unmapped(s, c, r, n) for (s, c, r), n in sorted(totals.items())]

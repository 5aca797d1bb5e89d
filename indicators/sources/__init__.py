"""Importers of public data sets, one small module per provider, and their mapping file.

``READERS`` names each importer the mapping file's ``reader`` keys refer to. Every
reader takes a ``ReadContext`` and returns a ``SourceTable``; none writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from indicators.sources import (
    coups,
    episodes,
    epr,
    iccpr,
    pts,
    ucdp,
    un_wpp,
    unhcr,
    vdem,
    worldbank,
)
from indicators.sources.base import Panel, SourceTable
from indicators.sources.codes import CountryCodes


@dataclass(frozen=True)
class ReadContext:
    path: Path
    codes: CountryCodes
    panel: Panel
    last_year: int
    """The last complete calendar year: no annual value is dated later."""
    needed: Mapping[str, SourceTable]
    """Tables of the data sets this one ``needs``, by data set key."""


Reader = Callable[[ReadContext], SourceTable]

READERS: dict[str, Reader] = {
    "vdem": lambda c: vdem.read(c.path, codes=c.codes),
    "ucdp_brd": lambda c: ucdp.read_battle_deaths(c.path, codes=c.codes, panel=c.panel),
    "ucdp_onesided": lambda c: ucdp.read_one_sided(c.path, codes=c.codes, panel=c.panel),
    "ucdp_nonstate": lambda c: ucdp.read_non_state(c.path, codes=c.codes, panel=c.panel),
    "wdi": lambda c: worldbank.read(c.path, codes=c.codes),
    "un_wpp": lambda c: un_wpp.read(c.path, codes=c.codes),
    "epr": lambda c: epr.read(c.path, codes=c.codes),
    "coups": lambda c: coups.read(c.path, codes=c.codes, panel=c.panel),
    "iccpr": lambda c: iccpr.read(c.path, codes=c.codes),
    "pts": lambda c: pts.read(c.path, codes=c.codes),
    "unhcr": lambda c: unhcr.read(c.path, codes=c.codes, population=c.needed["wdi"]),
    "episodes": lambda c: episodes.read(
        c.path, codes=c.codes, panel=c.panel, last_year=c.last_year
    ),
}

COUNTRY_CODES_FILE = "country_codes.csv"

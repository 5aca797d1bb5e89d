"""Small, hand-checked inputs for the importers: a code table, a panel, CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from indicators.sources.base import Panel
from indicators.sources.codes import CountryCodes

# A few rows of the data folder's country_codes.csv (the columns the mapper reads).
CODE_ROWS = [
    (2, 2, "USA", "United States of America"),
    (255, 260, "DEU", "Germany"),
    (260, 260, "", "German Federal Republic"),
    (265, 265, "", "German Democratic Republic"),
    (345, 345, "SRB", "Yugoslavia"),
    (365, 365, "RUS", "Russia"),
    (385, 385, "NOR", "Norway"),
    (490, 490, "COD", "Democratic Republic of the Congo"),
    (516, 516, "BDI", "Burundi"),
    (517, 517, "RWA", "Rwanda"),
    (625, 625, "SDN", "Sudan"),
    (652, 652, "SYR", "Syria"),
    (713, 713, "TWN", "Taiwan"),
    (816, 816, "VNM", "Vietnam"),
    (817, 817, "", "Republic of Vietnam"),
]
OURS = [
    *("USA", "DEU", "SRB", "RUS", "NOR", "COD", "BDI", "RWA", "SDN", "SYR", "VNM", "PSE"),
    *("CZE", "YEM"),
]


@pytest.fixture
def codes() -> CountryCodes:
    table = pd.DataFrame(CODE_ROWS, columns=["ccode", "gwcode", "iso3", "name"])
    return CountryCodes(table, ours=OURS)


@pytest.fixture
def panel() -> Panel:
    """Every test country independent 1989-2014; Germany from 1991, Rwanda from 1990."""
    years = {iso3: range(1989, 2015) for iso3 in ("USA", "NOR", "COD", "BDI", "SDN", "SYR")}
    return Panel({**years, "DEU": range(1991, 2015), "RWA": range(1990, 2015)})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path

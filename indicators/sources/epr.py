"""Ethnic Power Relations, country level (GROWup): GW-coded country-years to 2020.

``discrimpop`` and ``exclpop`` are shares of the whole population; where ethnicity is
not politically relevant (``cntr_relevance`` P) EPR codes them 0, which is what they are.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, read_coded_country_years
from indicators.sources.codes import CountryCodes

VARIABLES = ("discrimpop", "exclpop")


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    return read_coded_country_years(
        path, codes=codes, system="gw", code_column="countries_gwid", variables=VARIABLES
    )

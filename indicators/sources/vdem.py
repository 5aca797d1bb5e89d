"""V-Dem Country-Year v15 (the Early Warning Project's subset): COW-coded country-years.

Every variable is used as published (see the mapping file for what each means); V-Dem
codes many territories before independence, and those years fall outside the panel.
"""

from __future__ import annotations

from pathlib import Path

from indicators.sources.base import SourceTable, read_coded_country_years
from indicators.sources.codes import CountryCodes

VARIABLES = (
    "pol_killing_approved",
    "social_inequality",
    "v2csreprss_ord",
    "v2mecenefm_ord",
    "freediscussion",
    "partyban",
    "v2pepwrsoc_ord",
    "religiousfreedom",
    "judicialreform",
    "ses_power_dist",
)


def read(path: Path, *, codes: CountryCodes) -> SourceTable:
    return read_coded_country_years(
        path, codes=codes, system="cow", code_column="COWcode", variables=VARIABLES
    )

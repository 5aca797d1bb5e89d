"""The one country-code mapper: plain codes, historical states, and what it cannot map."""

from __future__ import annotations

import pandas as pd
import pytest

from indicators.sources.codes import CountryCodes, UnknownCodeError


@pytest.mark.parametrize(
    ("system", "code", "year", "iso3"),
    [
        ("cow", 652, 2013, "SYR"),
        ("gw", 652, 2013, "SYR"),
        ("cow", 365, 1985, "RUS"),  # the Soviet Union, continued by Russia
        ("cow", 345, 1990, "SRB"),  # Yugoslavia
        ("gw", 345, 2005, "SRB"),
        ("gw", 340, 2007, "SRB"),
        ("cow", 260, 1980, "DEU"),  # West Germany
        ("gw", 260, 2000, "DEU"),  # GW keeps 260 for Germany
        ("cow", 255, 2000, "DEU"),
        ("cow", 315, 1990, "CZE"),  # Czechoslovakia, continued by the Czech Republic
        ("cow", 678, 1980, "YEM"),  # North Yemen
        ("gw", 678, 1995, "YEM"),  # GW keeps 678 for unified Yemen
        ("cow", 816, 1970, "VNM"),  # North Vietnam
        ("iso3", "SYR", 2013, "SYR"),
        ("iso3", "syr", 2013, "SYR"),
    ],
)
def test_it_maps_plain_codes_and_continued_historical_states(codes, system, code, year, iso3):
    assert codes.lookup(system, code, year)[0] == iso3


@pytest.mark.parametrize(
    ("system", "code", "year", "reason"),
    [
        ("cow", 265, 1980, "East Germany"),
        ("cow", 817, 1970, "South Vietnam"),
        ("cow", 680, 1980, "South Yemen"),
        ("cow", 511, 1964, "Zanzibar"),
        ("cow", 347, 2010, "Kosovo"),
        ("cow", 713, 2010, "Taiwan"),
        ("gw", 711, 1948, "Tibet"),
        ("cow", 316, 1990, "Czechoslovakia's is used"),  # a back-cast series
        ("cow", 260, 1995, "Germany is coded 255"),
        ("gw", 345, 2006, "Serbia is GW 340"),
        ("iso3", "WLD", 2000, "aggregate"),
        ("iso3", "HKG", 2000, "Hong Kong is not in our country table"),
        ("iso3", "", 2000, "no code given"),
    ],
)
def test_it_says_why_a_code_maps_to_none_of_our_countries(codes, system, code, year, reason):
    iso3, why = codes.lookup(system, code, year)
    assert iso3 is None
    assert reason in why


def test_an_unknown_code_is_an_error_not_a_silent_drop(codes):
    with pytest.raises(UnknownCodeError, match="unknown COW code 999"):
        codes.lookup("cow", 999, 2000)
    with pytest.raises(UnknownCodeError, match="not an ISO3 code"):
        codes.lookup("iso3", "S1R", 2000)


def test_map_frame_keeps_mapped_rows_and_reports_every_unmapped_code_with_its_rows(codes):
    frame = pd.DataFrame(
        {"code": [652, 265, 265, 713, 385], "year": [2013, 1980, 1981, 2013, 2013]},
        index=[2, 3, 4, 5, 6],
    )
    mapped, unmapped = codes.map_frame(frame, system="cow", code_column="code")
    assert mapped["iso3"].tolist() == ["SYR", "NOR"]
    assert [(u.code, u.rows) for u in unmapped] == [("265", 2), ("713", 1)]
    assert "East Germany" in str(unmapped[0])


def test_map_frame_names_the_file_row_of_an_unknown_code(codes):
    frame = pd.DataFrame({"code": [652, 999], "year": [2013, 2013]}, index=[2, 3])
    with pytest.raises(UnknownCodeError, match="row 3: unknown COW code 999"):
        codes.map_frame(frame, system="cow", code_column="code")


def test_a_code_whose_country_is_not_ours_is_reported_with_its_name():
    table = pd.DataFrame([(1, 1, "ABC", "Atlantis")], columns=["ccode", "gwcode", "iso3", "name"])
    mapped = CountryCodes(table, ours=["SYR"])
    assert mapped.lookup("cow", 1, 2000) == (None, "Atlantis (ABC) is not in our country table")

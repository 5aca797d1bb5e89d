from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pycountry
import pytest
from django.core.management import call_command

from countries import selectors, services
from countries.models import Country
from countries.services import LoadResult, load_countries


def _csv_rows() -> list[dict[str, str]]:
    with services.M49_CSV_PATH.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(["iso3,region,sub_region,un_status", *lines]) + "\n")
    return path


def test_csv_has_unique_known_codes_sorted() -> None:
    rows = _csv_rows()
    codes = [row["iso3"] for row in rows]
    assert len(codes) == 195
    assert len(set(codes)) == len(codes)
    assert codes == sorted(codes)
    unknown = [code for code in codes if pycountry.countries.get(alpha_3=code) is None]
    assert unknown == []
    assert {row["region"] for row in rows} == {"Africa", "Americas", "Asia", "Europe", "Oceania"}
    assert sorted(row["iso3"] for row in rows if row["un_status"] == "observer") == ["PSE", "VAT"]


@pytest.mark.django_db
def test_loads_193_members_and_2_observers() -> None:
    result = load_countries()

    assert result == LoadResult(created=195, updated=0, unchanged=0)
    assert Country.objects.count() == 195
    assert Country.objects.filter(un_status=Country.Status.MEMBER).count() == 193
    assert set(
        Country.objects.filter(un_status=Country.Status.OBSERVER).values_list("iso3", flat=True)
    ) == {"PSE", "VAT"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("iso3", "region", "sub_region"),
    [
        ("SYR", "Asia", "Western Asia"),
        ("NOR", "Europe", "Northern Europe"),
        ("SDN", "Africa", "Northern Africa"),
        ("BRA", "Americas", "Latin America and the Caribbean"),
        ("CYP", "Asia", "Western Asia"),
        ("TUR", "Asia", "Western Asia"),
        ("RUS", "Europe", "Eastern Europe"),
        ("MEX", "Americas", "Latin America and the Caribbean"),
        ("USA", "Americas", "Northern America"),
        ("NGA", "Africa", "Sub-Saharan Africa"),
        ("FJI", "Oceania", "Melanesia"),
        ("PSE", "Asia", "Western Asia"),
        ("VAT", "Europe", "Southern Europe"),
    ],
)
def test_known_regions(iso3: str, region: str, sub_region: str) -> None:
    load_countries()

    country = selectors.country_by_iso3(iso3=iso3)
    assert (country.region, country.sub_region) == (region, sub_region)


@pytest.mark.django_db
def test_codes_and_names_come_from_pycountry() -> None:
    load_countries()

    syria = selectors.country_by_iso3(iso3="SYR")
    assert (syria.iso2, syria.numeric) == ("SY", "760")
    assert syria.un_status == Country.Status.MEMBER
    assert selectors.country_by_iso3(iso3="BOL").name == "Bolivia"
    assert selectors.country_by_iso3(iso3="BOL").official_name == "Plurinational State of Bolivia"
    assert selectors.country_by_iso3(iso3="AFG").numeric == "004"
    assert selectors.country_by_iso3(iso3="PSE").un_status == Country.Status.OBSERVER


@pytest.mark.django_db
def test_second_run_changes_nothing() -> None:
    load_countries()
    before = list(Country.objects.order_by("iso3").values())

    result = load_countries()

    assert result == LoadResult(created=0, updated=0, unchanged=195)
    assert list(Country.objects.order_by("iso3").values()) == before


@pytest.mark.django_db
def test_renamed_country_is_put_back() -> None:
    load_countries()
    Country.objects.filter(iso3="NOR").update(name="Norge", sub_region="Western Europe")

    result = load_countries()

    assert result == LoadResult(created=0, updated=1, unchanged=194)
    norway = selectors.country_by_iso3(iso3="NOR")
    assert (norway.name, norway.sub_region) == ("Norway", "Northern Europe")


@pytest.mark.django_db
def test_unknown_iso3_raises_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _write_csv(
        tmp_path / "bad.csv",
        ["NOR,Europe,Northern Europe,member", "XXZ,Europe,Northern Europe,member"],
    )
    monkeypatch.setattr(services, "M49_CSV_PATH", bad)

    with pytest.raises(ValueError, match=r"line 3.*XXZ"):
        load_countries()

    assert not Country.objects.exists()


@pytest.mark.django_db
def test_unknown_status_raises_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_countries()
    bad = _write_csv(
        tmp_path / "bad.csv",
        ["NOR,Europe,Western Europe,member", "SYR,Asia,Western Asia,candidate"],
    )
    monkeypatch.setattr(services, "M49_CSV_PATH", bad)

    with pytest.raises(ValueError, match=r"line 3.*candidate"):
        load_countries()

    assert selectors.country_by_iso3(iso3="NOR").sub_region == "Northern Europe"


@pytest.mark.django_db
def test_duplicate_iso3_raises(tmp_path: Path) -> None:
    bad = _write_csv(
        tmp_path / "bad.csv",
        ["NOR,Europe,Northern Europe,member", "NOR,Europe,Northern Europe,member"],
    )

    with pytest.raises(ValueError, match="duplicate"):
        load_countries(csv_path=bad)

    assert not Country.objects.exists()


@pytest.mark.django_db
def test_selectors(django_assert_num_queries) -> None:
    load_countries()

    with django_assert_num_queries(1):
        by_code = selectors.countries_by_code()
    assert len(by_code) == 195
    assert by_code["NOR"].name == "Norway"
    assert selectors.country_by_iso3(iso3="nor") == by_code["NOR"]
    with pytest.raises(Country.DoesNotExist):
        selectors.country_by_iso3(iso3="XXZ")


@pytest.mark.django_db
def test_command_prints_summary() -> None:
    out = StringIO()

    call_command("load_countries", stdout=out)
    call_command("load_countries", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines == [
        "Countries: 195 created, 0 updated, 0 unchanged",
        "Countries: 0 created, 0 updated, 195 unchanged",
    ]

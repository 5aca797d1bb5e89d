"""The public-data import against the database: provenance, idempotence, all or nothing."""

from __future__ import annotations

import shutil
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from countries.models import MassKillingEpisode
from indicators import public_data
from indicators.models import DataSet, Indicator, Observation, RiskScore
from indicators.public_data import PublicDataError, import_public_data
from indicators.services import record_observations, refresh_scores
from tests.indicators.sources.test_readers import (
    BRD,
    COUPS,
    EPISODES,
    EPR,
    NON_STATE,
    ONE_SIDED,
    PTS,
    UNHCR,
    VDEM,
    WDI,
)

pytestmark = pytest.mark.usefixtures("countries", "framework")
TODAY = date(2026, 12, 1)
CODES = """
ccode,gwcode,iso3,name
2,2,USA,United States of America
265,265,,German Democratic Republic
345,345,SRB,Yugoslavia
365,365,RUS,Russia
385,385,NOR,Norway
490,490,COD,Democratic Republic of the Congo
516,516,BDI,Burundi
517,517,RWA,Rwanda
625,625,SDN,Sudan
652,652,SYR,Syria
816,816,VNM,Vietnam
817,817,,Republic of Vietnam
"""


# The panel: Norway, Syria and the United States throughout, Rwanda from 1962, Vietnam
# (North Vietnam's code) from 1954; Norway party to the protocol from 1972.
ICCPR = "year,country,ccode,ios.iccpr1\n" + "".join(
    f"{year},{name},{code},{int(code == 385 and year >= 1972)}\n"
    for code, name, first in [
        (385, "Norway", 1946),
        (652, "Syria", 1946),
        (2, "United States", 1946),
        (517, "Rwanda", 1962),
        (816, "Vietnam", 1954),
    ]
    for year in range(first, 2023)
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A data folder with every file the mapping names, each a few real rows."""
    files = {
        "country_codes.csv": CODES,
        "iccpr_optional_protocol1.csv": ICCPR,
        "vdem_subset_1934_2024.csv": VDEM,
        "ucdp_brd_v25_1.csv": BRD,
        "ucdp_onesided_v23_1.csv": ONE_SIDED,
        "ucdp_nonstate_v23_1.csv": NON_STATE,
        "wdi_1960_2024.csv": WDI,
        "un_wpp2024_infant_mortality.csv": "iso3c,year,un_imr,ccode\nSYR,2013,21.983,652\n",
        "epr_country_year.csv": EPR,
        "coups.csv": COUPS,
        "political_terror_scale_2022.csv": PTS,
        "unhcr_displacement_by_origin_1951_2025.csv": UNHCR,
        "mass_killing_episodes_1945_2014.csv": EPISODES,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text.lstrip("\n"), encoding="utf-8")
    return tmp_path


def run(folder: Path, *only: str, **kwargs) -> public_data.ImportResult:
    return import_public_data(data_dir=folder, only=only or None, today=TODAY, **kwargs)


def test_a_data_set_becomes_observations_that_keep_their_provenance(folder):
    result = run(folder, "vdem")
    syria = Observation.objects.get(
        country__iso3="SYR", indicator__code="6.2", variable="v2csreprss_ord"
    )
    assert syria.observed_on == date(2013, 12, 31)  # annual values: end of their year
    assert (syria.value, syria.raw_value) == (1.0, 0.0)  # 0 = severe repression
    assert syria.dataset.key == "vdem"
    assert syria.source == "V-Dem v15: v2csreprss_ord"
    assert syria.recorded_by is None
    norway = Observation.objects.get(
        country__iso3="NOR", indicator__code="1.6", variable="freediscussion"
    )
    assert norway.value == pytest.approx(0.0)  # 0.951 is above the 0.9 "no risk" point
    # judicialreform 1 ("no change") says nothing of 3.3, so no observation there.
    assert not Observation.objects.filter(country__iso3="NOR", indicator__code="3.3").exists()
    (vdem,) = result.datasets
    assert (vdem.status, vdem.rows_read, vdem.unmapped_rows) == ("imported", 3, 1)
    assert vdem.created == Observation.objects.count()
    assert "East Germany" in vdem.unmapped[0]
    stored = DataSet.objects.get(key="vdem")
    assert stored.share_alike
    assert stored.licence == "CC BY-SA 4.0"
    assert stored.report["observations"]["created"] == vdem.created


def test_importing_twice_changes_nothing(folder):
    run(folder)
    before = sorted(Observation.objects.values_list("id", "value", "updated_at"))
    again = run(folder)
    assert {d.status for d in again.datasets} == {"unchanged"}
    assert not again.changed
    forced = run(folder, force=True)
    assert {d.status for d in forced.datasets} == {"imported"}
    assert sum(d.created + d.updated + d.deleted for d in forced.datasets) == 0
    assert sorted(Observation.objects.values_list("id", "value", "updated_at")) == before


def test_a_changed_file_updates_changed_values_and_removes_vanished_ones(folder):
    run(folder, "vdem")
    path = folder / "vdem_subset_1934_2024.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("652,Syria,2013,1,1,0,0,", "652,Syria,2013,1,1,0,2,")  # CSO 0->2
    path.write_text("\n".join(line for line in lines if not line.startswith("385,")) + "\n")
    (result,) = run(folder, "vdem").datasets
    assert result.updated == 2  # 6.2 and 7.7 from v2csreprss_ord
    assert result.deleted > 0
    assert result.created == 0
    assert not Observation.objects.filter(country__iso3="NOR").exists()
    assert Observation.objects.get(
        country__iso3="SYR", indicator__code="7.7", variable="v2csreprss_ord"
    ).value == pytest.approx(0.5)


def test_a_missing_folder_or_file_names_it_and_where_to_get_it_and_writes_nothing(folder):
    with pytest.raises(PublicDataError, match=r"does not exist\. Set PUBLIC_DATA_DIR"):
        run(folder / "nowhere")
    (folder / "political_terror_scale_2022.csv").unlink()
    (folder / "coups.csv").unlink()
    with pytest.raises(PublicDataError) as caught:
        run(folder, "pts", "coups", "vdem")
    problems = "\n".join(caught.value.problems)
    assert "political_terror_scale_2022.csv is missing" in problems
    assert "politicalterrorscale.org" in problems
    assert "coups.csv is missing" in problems
    assert not Observation.objects.exists()
    assert not DataSet.objects.exists()


def test_one_malformed_file_writes_nothing_for_any_data_set(folder):
    wdi = folder / "wdi_1960_2024.csv"
    wdi.write_text(wdi.read_text().replace("884.329813332104", "eight hundred", 1))
    with pytest.raises(PublicDataError, match=r"wdi_1960_2024.csv, column wdi.gdppc.new: row 2"):
        run(folder, "vdem", "wdi")
    assert not Observation.objects.exists()
    assert not DataSet.objects.exists()


def test_a_mapping_naming_an_indicator_the_framework_lacks_is_refused(folder):
    Indicator.objects.filter(code="7.7").delete()
    with pytest.raises(PublicDataError, match=r"indicator\(s\) the framework lacks: 7.7"):
        run(folder, "vdem")


def test_episodes_fill_the_records_and_a_newer_file_updates_rather_than_duplicates(folder):
    run(folder, "episodes")
    assert MassKillingEpisode.objects.count() == 4
    syria = MassKillingEpisode.objects.get(event_code="syr2011s1")
    assert (syria.country.iso3, syria.start_year, syria.end_year) == ("SYR", 2011, None)
    assert syria.state_led
    assert syria.ethnic_groups_targeted == 2
    south = MassKillingEpisode.objects.get(event_code="vnm1954s1")
    assert south.country.iso3 == "VNM"
    assert "South Vietnam" in south.note
    # A newer edition: the Syrian episode has ended, one episode is gone.
    path = folder / "mass_killing_episodes_1945_2014.csv"
    text = path.read_text().replace(",2011,,1,State-Led", ",2011,2019,0,State-Led")
    path.write_text("\n".join(line for line in text.splitlines() if "rwa1990s1" not in line))
    (result,) = run(folder, "episodes").datasets
    assert MassKillingEpisode.objects.count() == 3
    assert MassKillingEpisode.objects.get(event_code="syr2011s1").end_year == 2019
    assert result.episodes_created == 0


def test_an_import_recomputes_the_scores_once_it_commits(
    folder, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_DATA_DIR = folder
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_public_data", stdout=StringIO(), stderr=StringIO())
    assert RiskScore.objects.filter(country__iso3="SYR").exists()


def test_the_command_prints_a_summary_per_data_set_and_turns_errors_into_command_errors(folder):
    out, err = StringIO(), StringIO()
    command = ["import_public_data", "--data-dir", str(folder), "--only", "vdem"]
    call_command(*command, verbosity=2, stdout=out, stderr=err)
    printed = out.getvalue()
    assert "V-Dem Country-Year: 3 rows read; observations" in printed
    assert "unmapped COW 265: East Germany" in printed
    assert "] 1/4 reading V-Dem Country-Year" in err.getvalue()  # the progress bar
    again = StringIO()
    call_command(*command, stdout=again)
    assert "unchanged since the last import" in again.getvalue()
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_public_data", "--data-dir", str(folder / "nowhere"))
    with pytest.raises(CommandError, match=r"Unknown data set\(s\): nope"):
        call_command("import_public_data", "--data-dir", str(folder), "--only", "nope")


def test_the_demo_imports_the_public_data_and_a_second_start_redoes_nothing(
    folder, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_DATA_DIR = folder
    shutil.copy(folder / "vdem_subset_1934_2024.csv", folder / "unused-extra.csv")
    first = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_demo", stdout=first, stderr=StringIO())
    assert Observation.objects.filter(dataset__isnull=False).exists()
    assert RiskScore.objects.exists()
    second = StringIO()
    call_command("setup_demo", stdout=second, stderr=StringIO())
    assert "Nothing changed" in second.getvalue()
    assert "Scores are up to date" in second.getvalue()


def test_the_country_page_shows_which_number_is_data_and_which_an_analysts(folder, client, analyst):
    run(folder, "vdem")
    record_observations(
        rows=[
            {
                "country": "SYR",
                "indicator": "6.2",
                "observed_on": "2013-12-31",
                "value": 1,
                "source": "Field mission report",
                "overrides_data": True,
            }
        ],
        scale="analyst",
        recorded_by=analyst,
        recompute=False,
    )
    refresh_scores(today=TODAY)
    client.force_login(analyst)
    page = client.get("/countries/SYR/").content.decode()
    assert '<span class="badge badge-data"' in page
    assert "<code>v2csreprss_ord</code> = 0" in page
    assert "CSO repression, 0 (severe) to 4 (none)" in page
    assert '<span class="badge badge-analyst"' in page
    assert "1 (low)" in page  # the analyst's value on the scale it was entered on
    assert "overrides data</span>" in page
    # V-Dem's share-alike licence is named wherever its numbers are shown.
    assert "V-Dem v15 (CC BY-SA 4.0; numbers derived from it are shared under the same" in page
    # The override replaces both V-Dem values of 6.2 that day: RF6 = 1/3, not their mean.
    latest = RiskScore.objects.filter(country__iso3="SYR").order_by("-period").first()
    assert latest.factor_scores["RF6"] == pytest.approx(1 / 3, abs=1e-4)

"""Each importer on a handful of rows cut from the real files, expectations worked by hand,
and on malformed input: a clear error naming the file and row."""

from __future__ import annotations

import math

import pytest

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
from indicators.sources.base import SourceFormatError
from tests.indicators.sources.conftest import write

VDEM = """
COWcode,country_name,year,pol_killing_approved,social_inequality,even_civilrights,v2csreprss_ord,v2pepwrsoc_ord,partyban,judicialreform,religiousfreedom,freediscussion,ses_power_dist,e_cow_exports,e_cow_imports,v2csgender_ord,v2mecenefm_ord,vdem_popsize,sftgcode,vdem_popsize_log2,repress_civilsoc,social_power_dist,minorityrule,partyban.new.0,partyban.new.1,partyban.new.2,v2csgender_binary,v2mecenefm_binary
652,Syria,2013,1,1,0,0,0,0,0,1,0.014,-2.008,13638658000.0,17853685000.0,4,0,,SYR,,1,1,1,1,0,0,0,1
385,Norway,2013,0,0,1,4,3,4,1,4,0.951,1.847,153253558000.0,90063322000.0,4,4,,NOR,,0,0,0,0,0,1,0,0
265,German Democratic Republic,1980,1,1,0,0,1,0,1,1,0.1,-1.0,,,1,0,,GDR,,1,1,1,1,0,0,1,1
"""


def test_vdem_keeps_the_published_values_and_reports_east_germany(tmp_path, codes):
    table = vdem.read(write(tmp_path, "vdem.csv", VDEM), codes=codes)
    rows = table.values.set_index("iso3")
    assert rows.loc["SYR", "pol_killing_approved"] == 1
    assert rows.loc["SYR", "v2csreprss_ord"] == 0
    assert rows.loc["NOR", "freediscussion"] == pytest.approx(0.951)
    assert list(rows.index) == ["SYR", "NOR"]
    assert table.rows_read == 3
    assert [(u.code, u.rows) for u in table.unmapped] == [("265", 1)]


BRD = """
conflict_id,dyad_id,location_inc,side_a,side_a_id,side_a_2nd,side_b,side_b_id,side_b_2nd,incompatibility,territory_name,year,bd_best,bd_low,bd_high,type_of_conflict,battle_location,gwno_a,gwno_a_2nd,gwno_b,gwno_b_2nd,gwno_loc,gwno_battle,region,version
13042,13821,Syria,Government of Syria,118,,PYD,4163,,1,Rojava Kurdistan,2012,46,39,51,3,Syria,652,,,,652,652,2,25.1
13042,13821,Syria,Government of Syria,118,,PYD,4163,,1,Rojava Kurdistan,2013,78,73,82,3,Syria,652,,,,652,652,2,25.1
13604,14620,Syria,Government of Syria,118,,IS,234,,1,Islamic State,2013,1422,1404,1642,3,Syria,652,,,,652,652,2,25.1
9999,9999,"Burundi, Rwanda",Government of Rwanda,1,,X,2,,2,,2013,30,30,30,4,Rwanda,517,,,,"516, 517",517,4,25.1
"""


def test_battle_deaths_sum_dyads_give_each_listed_country_the_count_and_zero_fill(
    tmp_path, codes, panel
):
    table = ucdp.read_battle_deaths(write(tmp_path, "brd.csv", BRD), codes=codes, panel=panel)
    rows = table.values.set_index(["iso3", "year"])
    assert rows.loc[("SYR", 2012), "battle_deaths"] == 46
    assert rows.loc[("SYR", 2013), "battle_deaths"] == 78 + 1422
    # A two-country cell: both get the whole count (UCDP does not split it).
    assert rows.loc[("RWA", 2013), "battle_deaths"] == 30
    assert rows.loc[("BDI", 2013), "battle_deaths"] == 30
    # No row: no conflict, so 0 for panel countries in the file's years (2012-2013).
    assert rows.loc[("NOR", 2013), "battle_deaths"] == 0
    assert ("NOR", 2011) not in rows.index
    # The rise in orders of magnitude: log10(1501) - log10(47).
    assert rows.loc[("SYR", 2013), "battle_deaths_rise"] == pytest.approx(
        math.log10(1501) - math.log10(47)
    )
    assert math.isnan(rows.loc[("SYR", 2012), "battle_deaths_rise"])  # no 2011 in the file


ONE_SIDED = """
"conflict_id","dyad_id","actor_id","coalition_components","actor_name","actor_name_fulltext","actor_name_mothertongue","year","best_fatality_estimate","low_fatality_estimate","high_fatality_estimate","is_government_actor","location","gwno_location","gwnoa","region","version"
"472","939","94","","Government of Rwanda","Government of Rwanda","Government of Rwanda","1994","768619","344840","1589881","1","Burundi, DR Congo (Zaire), Rwanda","490, 516, 517","517","4","23.1"
"585","1052","623","","Interahamwe, ex-FAR","Interahamwe, ex-Armed Forces of Rwanda","Interahamwe, ex-FAR","1994","80","80","206","0","Burundi, DR Congo (Zaire), Rwanda","490, 516, 517","","4","23.1"
"""


def test_one_sided_violence_is_split_on_the_comma_and_summed_per_country(tmp_path, codes, panel):
    table = ucdp.read_one_sided(write(tmp_path, "osv.csv", ONE_SIDED), codes=codes, panel=panel)
    rows = table.values.set_index(["iso3", "year"])
    for iso3 in ("RWA", "BDI", "COD"):
        assert rows.loc[(iso3, 1994), "civilian_deaths"] == 768619 + 80
    assert rows.loc[("SYR", 1994), "civilian_deaths"] == 0


NON_STATE = """
"conflict_id","dyad_id","org","side_a_name","year","best_fatality_estimate","gwno_location","version"
"1","1","3","Fulani","2013","41","652","23.1"
"2","2","2","Party A","2013","30","652","23.1"
"3","3","1","Group A","2013","200","652","23.1"
"4","4","1","Group B","2013","100","652","23.1"
"""


def test_non_state_fighting_is_counted_by_kind_of_group(tmp_path, codes, panel):
    table = ucdp.read_non_state(write(tmp_path, "nsc.csv", NON_STATE), codes=codes, panel=panel)
    syria = table.values.set_index(["iso3", "year"]).loc[("SYR", 2013)]
    assert syria["nonstate_deaths"] == 371
    assert syria["communal_deaths"] == 41
    assert syria["supporter_deaths"] == 30
    assert syria["organised_groups_fighting"] == 2


WDI = """
country,iso2c,iso3c,year,wdi.trade.new,wdi.gdppc.new,wdi.gdppcgrow.new,wdi.popsize.new,wdi.imrate.new,wdi.imports.new,wdi.exports.new,ccode
Syrian Arab Republic,SY,SYR,2013,44.7052547833532,884.329813332104,-22.5827773307621,21666917,25,7198593271.21417,2879837660.24824,652
High income,XD,"",2013,,46000.1,,1200000000,,,,
World,1W,WLD,2013,,10800,1.6,7200000000,,,,
"""


def test_wdi_maps_iso3_and_reports_aggregates(tmp_path, codes):
    table = worldbank.read(write(tmp_path, "wdi.csv", WDI), codes=codes)
    syria = table.values.set_index("iso3").loc["SYR"]
    assert syria["wdi.gdppcgrow.new"] == pytest.approx(-22.5827773307621)
    assert syria["wdi.popsize.new"] == 21666917
    assert sorted(u.code for u in table.unmapped) == ["", "WLD"]


def test_un_infant_mortality_is_read_by_iso3(tmp_path, codes):
    path = write(tmp_path, "imr.csv", "iso3c,year,un_imr,ccode\nSYR,2013,21.983,652\n")
    assert un_wpp.read(path, codes=codes).values["un_imr"].tolist() == [21.983]


EPR = """
"countries_gwid","year","countryname","egip_groups_count","excl_groups_count","regaut_groups_count","regaut_excl_groups_count","regaut_egip_groups_count","rlvt_groups_count","actv_groups_count","lpop","egippop","legippop","exclpop","lexclpop","discrimpop","ldiscrimpop","maxexclpop","lmaxexclpop","regautpop","regautexclpop","regautegippop","cntr_relevance","nstar"
517,2003,"Rwanda",1,1,0,0,0,2,2,0.99,0.15,0.15151516,0.84,0.8484848,0,0,0.84,0.8484848,0,0,0,"R",0.9336538759130929
625,2003,"Sudan",1,14,0,0,0,15,15,0.985,0.15,0.15228426,0.835,0.8477157,0.035,0.035532996,0.24,0.24365482,0,0,0,"R",0.9310448195030419
"""


def test_epr_gives_the_discriminated_and_excluded_shares(tmp_path, codes):
    rows = epr.read(write(tmp_path, "epr.csv", EPR), codes=codes).values.set_index("iso3")
    assert rows.loc["SDN", "discrimpop"] == pytest.approx(0.035)
    assert rows.loc["RWA", "exclpop"] == pytest.approx(0.84)


COUPS = """
ccode,country,year,cou.any
517,Rwanda,1994,1
652,Syria,1970,1
516,Burundi,1996,1
"""


def test_coups_zero_fill_and_count_years_since_the_last_attempt(tmp_path, codes, panel):
    table = coups.read(write(tmp_path, "coups.csv", COUPS), codes=codes, panel=panel)
    rows = table.values.set_index(["iso3", "year"])
    assert rows.loc[("RWA", 1994), "cou.any"] == 1
    assert rows.loc[("RWA", 1994), "years_since_coup_attempt"] == 0
    assert rows.loc[("RWA", 1996), "years_since_coup_attempt"] == 2
    assert rows.loc[("RWA", 1993), "years_since_coup_attempt"] == 10  # none before in the data
    assert rows.loc[("NOR", 1994), "cou.any"] == 0
    assert rows.loc[("BDI", 1996), "years_since_coup_attempt"] == 0
    # Syria's 1970 attempt is before the panel's years here, so only its history counts.
    assert rows.loc[("SYR", 1989), "years_since_coup_attempt"] == 10


ICCPR = """
year,country,ccode,ios.iccpr1
2021,Norway,385,1
2022,Norway,385,1
2020,Syria,652,0
2021,Syria,652,0
2022,Syria,652,0
1980,"Germany, East",265,0
"""


def test_iccpr_rows_make_the_panel_carried_to_the_last_complete_year(tmp_path, codes):
    table = iccpr.read(write(tmp_path, "iccpr.csv", ICCPR), codes=codes)
    assert sorted(table.values["iso3"].unique()) == ["NOR", "SYR"]
    assert [u.code for u in table.unmapped] == ["265"]
    panel = iccpr.panel(table, last_year=2025)
    assert panel.years_of("SYR") == frozenset(range(2020, 2026))
    assert panel.years_of("NOR") == frozenset(range(2021, 2026))


PTS = """
Country,Country_OLD,Year,COW_Code_A,COW_Code_N,WordBank_Code_A,UN_Code_N,Region,PTS_A,PTS_H,PTS_S,NA_Status_A,NA_Status_H,NA_Status_S
Syrian Arab Republic,Syria,2013,SYR,652,SYR,760,mena,NA,5,5,88,0,0
Norway,Norway,2013,NOR,385,NOR,578,eca,NA,NA,1,88,88,0
Soviet Union,Soviet Union,1990,NA,NA,NA,NA,eca,4,NA,4,0,99,0
Soviet Union,Soviet Union,1995,NA,NA,NA,NA,eca,NA,NA,NA,77,99,77
"Yugoslavia, Socialist Federal Republic of",Yugoslavia,1991,YUG,345,YUG,890,eca,4,NA,5,0,99,0
"Yugoslavia, Socialist Federal Republic of",Yugoslavia,1992,YUG,345,YUG,890,eca,3,NA,5,0,99,0
"Yugoslavia, Federal Republic of",Yugoslavia,1992,YUG,345,YUG,891,eca,3,NA,5,0,99,0
Serbia,Serbia,2010,NA,NA,SRB,688,eca,2,NA,2,0,99,0
Somaliland,Somaliland,2010,NA,NA,NA,NA,ssa,3,NA,NA,0,99,99
"""


def test_pts_decides_the_codes_the_cow_number_cannot(tmp_path, codes):
    table = pts.read(write(tmp_path, "pts.csv", PTS), codes=codes)
    rows = table.values.set_index(["iso3", "year"])
    assert rows.loc[("SYR", 2013), "PTS_S"] == 5
    assert math.isnan(rows.loc[("SYR", 2013), "PTS_A"])  # "NA" is missing, not an error
    assert rows.loc[("RUS", 1990), "PTS_A"] == 4  # the Soviet Union, by name
    assert rows.loc[("SRB", 1991), "PTS_A"] == 4
    assert rows.loc[("SRB", 1992), "PTS_A"] == 3  # the Federal Republic from 1992
    assert rows.loc[("SRB", 2010), "PTS_S"] == 2  # Serbia by its World Bank code
    assert table.skipped["no score from any report that year"] == 1
    assert any("Socialist Federal Republic" in reason for reason in table.skipped)
    assert [u.code for u in table.unmapped] == ["none (Somaliland)"]


UNHCR = """
iso3,year,name,unhcr_code,refugees,asylum_seekers,returned_refugees,idps,returned_idps,stateless_residing,ooc,oip
SYR,2013,Syrian Arab Rep.,SYR,2468323,41019,140761,6520800,0,160000,9400,
SYR,1975,Syrian Arab Rep.,SYR,100,0,0,0,0,0,0,
UNK,2013,Unknown,UNK,10,0,0,0,0,0,0,
"""


def test_unhcr_gives_the_displaced_share_of_the_population(tmp_path, codes):
    population = worldbank.read(write(tmp_path, "wdi.csv", WDI), codes=codes)
    table = unhcr.read(write(tmp_path, "unhcr.csv", UNHCR), codes=codes, population=population)
    share = table.values.set_index("iso3").loc["SYR", "displaced_share"]
    assert share == pytest.approx((2468323 + 41019 + 6520800) / 21666917)
    assert table.skipped["years before 1980 (origins then largely unknown)"] == 1
    assert [u.code for u in table.unmapped] == ["UNK"]


EPISODES = """
country,mk_event_code,mk_event_name,startyear,endyear,ongoing_at_end_of_2014,State-Led or Non-State-Led,mk_number_eth_groups,mk_location_cow,mk_location_inheritor1,mk_location_inheritor2,mk_repsonsible_state_cow,mk_repsonsible_state_inheritor1,mk_repsonsible_state_inheritor2
Rwanda,rwa1990s1,"Hutu dominated government vs. suspected supporters of Tutsi RPF insurgency, including moderate Hutu",1990,1994,0,State-Led,2,517,517,,517,517,
Syria,syr1979s1,Hafez al-Assad government vs. suspected supporters of Muslim Brotherhood and other political opponents,1979,1985,0,State-Led,0,652,652,,652,652,
Syria,syr2011s1,"Government vs. suspected political opponents, pro-democracy protesters and Islamist insurgents",2011,,1,State-Led,2,652,652,,652,652,
Vietnam-South,vnm1954s1,South Vietnamese government vs. suspected supporters of communist insurgency and other political opponents,1954,1975,0,State-Led,0,817,816,,817,816,
"""


def test_episodes_are_located_with_the_inheritor_where_the_state_is_not_scored(tmp_path, codes):
    found = episodes.read_episodes(write(tmp_path, "mk.csv", EPISODES), codes=codes)
    by_code = {e.code: e for e in found.episodes}
    assert by_code["vnm1954s1"].iso3 == "VNM"
    assert "South Vietnam" in by_code["vnm1954s1"].location_note
    assert by_code["syr2011s1"].end_year is None
    assert by_code["syr2011s1"].ongoing_at_end
    assert by_code["rwa1990s1"].ethnic_groups_targeted == 2
    assert found.last_year == 2011


def test_episode_histories_code_none_earlier_recent_and_under_way(tmp_path, codes, panel):
    table = episodes.read(
        write(tmp_path, "mk.csv", EPISODES), codes=codes, panel=panel, last_year=2014
    )
    rows = table.values.set_index(["iso3", "year"])
    history = rows["mass_killing_history"]
    assert history[("RWA", 1993)] == 3  # under way
    assert history[("RWA", 2004)] == 2  # ended 1994, within ten years
    assert history[("RWA", 2005)] == 1  # earlier
    assert history[("SYR", 1995)] == 2  # syr1979s1 ended 1985
    assert history[("SYR", 2000)] == 1
    assert history[("SYR", 2011)] == 3
    assert history[("NOR", 2011)] == 0
    # Only episodes targeting ethnic groups count for 9.3: syr1979s1 targeted none.
    assert rows.loc[("SYR", 1995), "ethnic_mass_killing_history"] == 0
    assert rows.loc[("RWA", 1995), "ethnic_mass_killing_history"] == 2
    assert rows.loc[("SYR", 2011), "mass_killing_ongoing"] == 1
    assert rows.loc[("SYR", 2011), "ethnic_mass_killing_history"] == 3


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        # A missing column, and a file that is another data set altogether.
        (vdem.read, VDEM.replace("pol_killing_approved,", "killings,", 1), "lacks the column"),
        (lambda p, codes: ucdp.read_battle_deaths(p, codes=codes, panel=None), VDEM, "right file"),
        # A bad number, and a bad year.
        (vdem.read, VDEM.replace("0.951", "high", 1), "row 3: 'high' is not a number"),
        (un_wpp.read, "iso3c,year,un_imr,ccode\nSYR,20x3,21.9,652\n", "is not a number"),
        (un_wpp.read, "iso3c,year,un_imr,ccode\nSYR,1066,21.9,652\n", "is not a year"),
        # Unknown codes.
        (vdem.read, VDEM.replace("385,Norway", "999,Atlantis", 1), "unknown COW code 999"),
        (un_wpp.read, "iso3c,year,un_imr,ccode\nS1R,2013,21.9,652\n", "not an ISO3 code"),
        (
            lambda p, codes: ucdp.read_one_sided(p, codes=codes, panel=None),
            ONE_SIDED.replace("490, 516, 517", "490; 516", 1),
            "not a list of GW codes",
        ),
        (episodes.read_episodes, EPISODES.replace(",1990,1994,", ",1990,1984,", 1), "before"),
        (episodes.read_episodes, EPISODES.replace("syr1979s1", "rwa1990s1", 1), "repeats"),
        (epr.read, "not,a,csv\n\x00\x01", "lacks the column"),
    ],
)
def test_malformed_input_is_refused_with_a_clear_error(tmp_path, codes, reader, text, message):
    path = write(tmp_path, "data.csv", text)
    with pytest.raises(SourceFormatError, match=message) as caught:
        reader(path, codes=codes)
    assert "data.csv" in str(caught.value)


def test_an_episode_under_way_when_the_file_ends_never_fades_to_earlier(tmp_path, codes, panel):
    table = episodes.read(
        write(tmp_path, "mk.csv", EPISODES), codes=codes, panel=panel, last_year=2030
    )
    history = table.values.set_index(["iso3", "year"])["mass_killing_history"]
    # syr2011s1 is under way at the file's end (2011 here): whether it ended is unknown.
    assert history[("SYR", 2011)] == 3
    assert history[("SYR", 2014)] == 2
    assert math.isnan(
        table.values.set_index(["iso3", "year"]).loc[("SYR", 2014), "mass_killing_ongoing"]
    )

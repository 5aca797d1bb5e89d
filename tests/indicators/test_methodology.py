"""The methodology lifecycle: draft, preview, publish, roll back; the audit log; who sees what."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from countries.models import Country
from indicators import methodology, methodology_jobs, services
from indicators.models import (
    MethodologyEvent,
    MethodologyJob,
    MethodologyVersion,
    ProfileAssignment,
    RiskScore,
    SituationProfile,
    SituationScore,
)
from indicators.roles import Role
from indicators.services import record_observations, refresh_scores
from tests.conftest import make_user
from tests.indicators.sources.test_readers import EPISODES

pytestmark = pytest.mark.usefixtures("countries", "framework")
TODAY = date(2014, 7, 1)


@pytest.fixture
def admin(db):
    return make_user("ada", Role.ADMINISTRATOR, is_staff=True)


@pytest.fixture
def scored() -> MethodologyVersion:
    """Syria with armed conflict and incitement, Norway calm; v1 published and scored."""
    rows = [
        ("SYR", "1.1", "2013-12-31", 1.0),
        ("SYR", "8.7", "2014-02-10", 2 / 3),
        ("NOR", "1.1", "2013-12-31", 0.0),
        ("NOR", "8.7", "2014-02-10", 1 / 3),
    ]
    record_observations(
        rows=[
            {"country": c, "indicator": i, "observed_on": d, "value": v, "source": "test"}
            for c, i, d, v in rows
        ],
        today=TODAY,
        recompute=False,
    )
    refresh_scores(today=TODAY)
    return methodology.initial_methodology()


def kinds(version: MethodologyVersion) -> list[str]:
    return list(version.events.order_by("at", "pk").values_list("kind", flat=True))


def test_the_first_version_weighs_everything_alike_and_is_published_on_record():
    v1 = methodology.initial_methodology()
    assert (v1.number, v1.status, v1.title) == (1, "published", "Equal weights")
    assert set(v1.factor_weights.values()) == {1.0}
    assert set(v1.indicator_weights.values()) == {1.0}
    # Slow-moving treaty indicators keep their values longer (the public-data mapping).
    assert (v1.staleness_days["3.1"], v1.staleness_days["1.1"]) == (1826, 730)
    assert v1.rationale.startswith("Initial methodology")
    assert kinds(v1) == ["published"]
    assert methodology.initial_methodology() == v1  # made once


def test_a_draft_copies_the_published_version_and_records_its_author(scored, admin):
    draft = methodology.create_draft(by=admin)
    assert (draft.status, draft.based_on, draft.created_by) == ("draft", scored, admin)
    assert draft.factor_weights == scored.factor_weights
    event = draft.events.get()
    assert (event.kind, event.actor, event.note) == ("drafted", admin, "From v1.")


def test_edits_are_checked_all_or_nothing_and_logged_with_what_changed(scored, admin):
    draft = methodology.create_draft(by=admin)
    bad = {
        "factor_weights": {"RF8": -2, "RF99": 1},
        "staleness_days": {"1.1": 0},
    }
    with pytest.raises(methodology.MethodologyError) as caught:
        methodology.edit_draft(draft, by=admin, **bad)
    assert "negative" in " ".join(caught.value.errors["factor_weights"])
    assert "RF99: unknown code." in caught.value.errors["factor_weights"]
    assert "whole number of days" in " ".join(caught.value.errors["staleness_days"])
    with pytest.raises(methodology.MethodologyError, match="increase"):
        methodology.edit_draft(draft, by=admin, thresholds={"high_from": 10})
    draft.refresh_from_db()
    assert draft.factor_weights == scored.factor_weights
    assert kinds(draft) == ["drafted"]

    changes = methodology.edit_draft(
        draft, by=admin, factor_weights={"RF8": 2}, thresholds={"min_coverage": 0.01}
    )
    assert changes == {
        "factor_weights": {"RF8": [1.0, 2.0]},
        "thresholds": {"min_coverage": [0.15, 0.01]},
    }
    edit = draft.events.get(kind="edited")
    assert (edit.actor, edit.changes) == (admin, changes)
    # Published versions are never edited.
    with pytest.raises(methodology.MethodologyError, match="not a draft"):
        methodology.edit_draft(scored, by=admin, factor_weights={"RF8": 5})


def test_a_preview_is_computed_by_a_worker_and_writes_no_score(
    scored, admin, django_capture_on_commit_callbacks
):
    draft = methodology.create_draft(by=admin)
    methodology.edit_draft(draft, by=admin, factor_weights={"RF8": 3})
    with django_capture_on_commit_callbacks(execute=True):
        job = methodology.request_preview(draft, by=admin)
    job.refresh_from_db()
    assert (job.kind, job.status, job.requested_by) == ("preview", "done", admin)
    result = job.result
    assert result["changes"] == {"factor_weights": {"RF8": [1.0, 3.0]}}
    syria = next(r for r in result["ranking"] if r["country"] == "SYR")
    # v1: (1 + 2/3) / 2 = 83.33; the draft: (1 + 3 * 2/3) / 4 = 75.
    assert (syria["score_published"], syria["score_draft"]) == (83.33, 75.0)
    assert syria["change"] == -8.33
    assert result["biggest_score_changes"][0]["country"] in {"SYR", "NOR"}
    assert "backtest_error" in result  # nothing to backtest in 2014's scores: said, not hidden
    assert not RiskScore.objects.filter(methodology=draft).exists()
    assert kinds(draft) == ["drafted", "edited", "preview_requested", "previewed"]


def test_publishing_recomputes_every_score_switches_and_logs_who_why_and_what_moved(scored, admin):
    draft = methodology.create_draft(by=admin)
    methodology.edit_draft(draft, by=admin, factor_weights={"RF8": 3})
    with pytest.raises(methodology.MethodologyError, match="rationale"):
        methodology.request_publication(draft, by=admin, rationale="  ")
    published = methodology_jobs.publish(
        draft, by=admin, rationale="Incitement is the most direct warning.", today=TODAY
    )
    scored.refresh_from_db()
    assert (published.status, published.published_by) == ("published", admin)
    assert (scored.status, scored.superseded_at is not None) == ("superseded", True)
    # Every score recomputed under the new version; the old ones stay, unchanged.
    new = RiskScore.objects.get(methodology=published, country__iso3="SYR", period="2014-03-31")
    old = RiskScore.objects.get(methodology=scored, country__iso3="SYR", period="2014-03-31")
    assert (round(old.overall, 2), round(new.overall, 2)) == (83.33, 75.0)
    event = published.events.get(kind="published")
    assert (event.actor, event.note) == (admin, "Incitement is the most direct warning.")
    assert event.changes == {"factor_weights": {"RF8": [1.0, 3.0]}}
    moved = {m["country"]: m for m in event.moved}
    assert moved["SYR"]["change"] == pytest.approx(-8.33, abs=0.01)
    assert kinds(scored) == ["published", "superseded"]
    assert services.latest_full_run().methodology == published


def test_a_failed_publication_leaves_the_draft_a_draft_and_says_why(
    scored, admin, monkeypatch, django_capture_on_commit_callbacks
):
    draft = methodology.create_draft(by=admin)

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "refresh_scores", broken)
    with django_capture_on_commit_callbacks(execute=True):
        job = methodology.request_publication(draft, by=admin, rationale="Try it.")
    job.refresh_from_db()
    draft.refresh_from_db()
    assert (job.status, draft.status) == ("failed", "draft")
    assert "the database went away" in job.error
    assert draft.events.get(kind="publish_failed").note == job.error
    scored.refresh_from_db()
    assert scored.status == "published"


def test_a_rollback_publishes_a_copy_of_an_earlier_version_with_its_own_rationale(
    scored, admin, django_capture_on_commit_callbacks
):
    v2 = methodology.create_draft(by=admin)
    methodology.edit_draft(v2, by=admin, factor_weights={"RF8": 3})
    methodology_jobs.publish(v2, by=admin, rationale="Try incitement x3.", today=TODAY)
    with pytest.raises(methodology.MethodologyError, match="rationale"):
        methodology.roll_back(scored, by=admin, rationale="")
    with django_capture_on_commit_callbacks(execute=True):
        job = methodology.roll_back(scored, by=admin, rationale="x3 ranked Norway too high.")
    v3 = job.version
    v3.refresh_from_db()
    assert (v3.number, v3.status, v3.based_on) == (3, "published", scored)
    assert v3.factor_weights == scored.factor_weights
    assert v3.title == "Rollback to v1"
    assert v3.events.get(kind="published").note == "x3 ranked Norway too high."
    assert scored.events.filter(kind="rolled_back").get().actor == admin
    assert MethodologyVersion.objects.get(number=2).status == "superseded"


def test_a_job_is_run_once_whoever_drains(scored, admin):
    draft = methodology.create_draft(by=admin)
    methodology.request_preview(draft, by=admin)  # not drained on commit: no commit here
    first = methodology_jobs.run_methodology_jobs()
    second = methodology_jobs.run_methodology_jobs()
    assert [j.kind for j in first] == ["preview"]
    assert second == []
    assert MethodologyJob.objects.get().status == "done"


def test_analysts_never_see_draft_scores(scored, admin, analyst, client):
    draft = methodology.create_draft(by=admin)
    methodology.edit_draft(draft, by=admin, factor_weights={"RF1": 0, "RF8": 1})
    refresh_scores(today=TODAY, methodology=draft)  # as during a publication under way
    assert RiskScore.objects.filter(methodology=draft).exists()
    client.force_login(analyst)
    page = client.get("/countries/SYR/")
    assert page.context["methodology"] == scored
    assert client.get(f"/countries/SYR/?version={draft.number}").status_code == 404
    api = client.get("/api/v1/countries/SYR/scores/").json()
    assert {row["methodology"] for row in api["results"]} == {1}
    assert client.get(f"/api/v1/countries/SYR/scores/?version={draft.number}").status_code == 404
    assert client.get(f"/methodology/versions/{draft.number}/").status_code == 404
    versions = client.get("/api/v1/methodology-versions/").json()["results"]
    assert [v["number"] for v in versions] == [1]
    # An administrator may look, and is told these are not the published scores.
    client.force_login(admin)
    seen = client.get(f"/countries/SYR/?version={draft.number}")
    assert seen.status_code == 200
    assert "Not the published scores" in seen.content.decode()


def test_the_version_pages_show_the_log_and_let_administrators_work_a_draft(
    scored, admin, analyst, client, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    started = client.post("/methodology/versions/", follow=True)
    draft = MethodologyVersion.objects.get(status="draft")
    assert started.redirect_chain[-1][0] == f"/methodology/versions/{draft.number}/"
    form = client.get(f"/methodology/versions/{draft.number}/").context["form"]
    data = {name: "" if value is None else value for name, value in form.initial.items()}
    data.update({"factor_RF8": "2.5", "title": "RF8 x2.5", "action": "save"})
    client.post(f"/methodology/versions/{draft.number}/", data)
    draft.refresh_from_db()
    assert (draft.factor_weights["RF8"], draft.title) == (2.5, "RF8 x2.5")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/methodology/versions/{draft.number}/",
            {"action": "publish", "rationale": "Triggers deserve more weight."},
        )
    draft.refresh_from_db()
    assert draft.status == "published"
    client.force_login(analyst)
    log = client.get("/methodology/versions/").content.decode()
    assert "Triggers deserve more weight." in log
    assert "ada" in log
    assert client.post("/methodology/versions/").status_code == 404  # analysts cannot draft


def write_episodes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "episodes.csv"
    path.write_text(text.lstrip("\n"))
    return path


def test_the_backtest_command_prints_figures_and_takes_a_newer_episode_list(
    scored, tmp_path, settings
):
    (tmp_path / "country_codes.csv").write_text(
        "ccode,gwcode,iso3,name\n385,385,NOR,Norway\n652,652,SYR,Syria\n517,517,RWA,Rwanda\n"
        "816,816,VNM,Vietnam\n817,817,,Republic of Vietnam\n"
    )
    settings.PUBLIC_DATA_DIR = tmp_path
    # An onset in Syria in 2015 follows base year 2013: the only scored year before it.
    newer = EPISODES.replace(",2011,,1,State-Led,2,652", ",2015,,1,State-Led,2,652")
    newer += "Norway,nor2016s1,test,2016,2016,0,State-Led,0,385,385,,385,385,\n"
    path = write_episodes(tmp_path, newer)
    out = StringIO()
    call_command(
        "backtest", "--episodes", str(path), "--from", "2013", "--to", "2014", "--json", stdout=out
    )
    figures = json.loads(out.getvalue())
    # Base years 2013-2014 asked; scores exist for December 2013 only.
    assert (figures["version"], figures["first_year"], figures["last_year"]) == (1, 2013, 2013)
    assert figures["auc"] == 1.0  # Syria stood above Norway before its onset
    assert figures["recall_at"]["10"] == 1.0
    assert figures["onset_ranks"][0]["country"] == "SYR"
    text = StringIO()
    call_command("backtest", "--episodes", str(path), "--from", "2013", "--to", "2014", stdout=text)
    assert "AUC 1.000" in text.getvalue()
    with pytest.raises(CommandError, match="last base year it can judge is 2014"):
        call_command("backtest", "--episodes", str(path), "--to", "2015")
    with pytest.raises(CommandError, match="No methodology version 7"):
        call_command("backtest", "--version", "7")
    with pytest.raises(CommandError, match="is missing"):
        call_command("backtest", "--episodes", str(tmp_path / "none.csv"))
    assert MethodologyEvent.objects.count() == 1  # a backtest changes nothing


def test_a_situation_profile_scores_the_country_beside_the_standard_score(
    scored, admin, analyst, client
):
    profile = SituationProfile.objects.create(
        name="Election period", description="Campaigns and votes.", factor_multipliers={"RF8": 3}
    )
    ProfileAssignment.objects.create(
        profile=profile,
        country=Country.objects.get(iso3="SYR"),
        starts_on=date(2014, 3, 1),
        justification="Presidential election of June 2014.",
        assigned_by=admin,
    )
    refresh_scores(countries=["SYR"], today=TODAY)
    scores = SituationScore.objects.filter(assignment__profile=profile).order_by("period")
    assert [s.period for s in scores] == [
        date(2014, 3, 31),
        date(2014, 4, 30),
        date(2014, 5, 31),
        date(2014, 6, 30),
    ]
    # RF1 = 1, RF8 = 2/3 weighing three times: (1 + 3 * 2/3) / 4 = 75, beside 83.33.
    assert scores.last().overall == pytest.approx(75.0)
    standard = RiskScore.objects.get(country__iso3="SYR", period=date(2014, 6, 30))
    assert standard.overall == pytest.approx(83.3333, abs=1e-3)  # never replaced
    client.force_login(analyst)
    page = client.get("/countries/SYR/").content.decode()
    assert "Election period" in page
    assert "beside the standard 83.3" in page
    assert "Presidential election of June 2014." in page
    overview = client.get("/").content.decode()
    assert "Election period: 75.0" in overview
    api = client.get("/api/v1/countries/SYR/").json()
    assert api["latest_score"]["overall"] == pytest.approx(83.3333, abs=1e-3)
    assert api["situation_scores"] == [
        {
            "profile": "Election period",
            "starts_on": "2014-03-01",
            "ends_on": None,
            "justification": "Presidential election of June 2014.",
            "period": "2014-06-30",
            "overall": 75.0,
            "level": "insufficient_data",
        }
    ]


def test_the_backtest_api_gives_figures_to_analysts_and_a_plain_error_for_years_it_cannot_judge(
    scored, admin, analyst, client, tmp_path, settings
):
    from indicators.sources.mapping import published_mapping

    (tmp_path / "country_codes.csv").write_text(
        "ccode,gwcode,iso3,name\n385,385,NOR,Norway\n652,652,SYR,Syria\n517,517,RWA,Rwanda\n"
        "816,816,VNM,Vietnam\n817,817,,Republic of Vietnam\n"
    )
    settings.PUBLIC_DATA_DIR = tmp_path
    newer = EPISODES.replace(",2011,,1,State-Led,2,652", ",2015,,1,State-Led,2,652")
    newer += "Norway,nor2016s1,test,2016,2016,0,State-Led,0,385,385,,385,385,\n"
    (tmp_path / published_mapping().datasets["episodes"].file).write_text(newer.lstrip("\n"))
    draft = methodology.create_draft(by=admin)
    client.force_login(analyst)

    response = client.get("/api/v1/methodology-versions/1/backtest/", {"from": 2013, "to": 2014})
    assert response.status_code == 200, response.content
    figures = response.json()
    assert (figures["version"], figures["first_year"], figures["last_year"]) == (1, 2013, 2013)
    assert figures["auc"] == 1.0
    assert figures["onset_ranks"][0]["country"] == "SYR"

    refused = client.get("/api/v1/methodology-versions/1/backtest/", {"to": 2015})
    assert refused.status_code == 400
    assert "last base year it can judge is 2014" in refused.json()["detail"]
    draft_url = f"/api/v1/methodology-versions/{draft.number}/backtest/"
    assert client.get(draft_url).status_code == 404  # analysts never see drafts
    client.force_login(admin)
    assert client.get(draft_url, {"from": 2013, "to": 2014}).status_code == 200

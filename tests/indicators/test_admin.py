"""The admin: drafts edited through the methodology service, observations through theirs."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from countries.models import Country
from indicators import methodology, selectors
from indicators.models import (
    Indicator,
    MethodologyEvent,
    MethodologyVersion,
    Observation,
    RiskScore,
    ScoringRun,
)
from indicators.services import (
    _queue_hook_tasks,
    record_observations,
    refresh_scores,
)
from tests.conftest import last_recompute_request, recomputes_requested_after

pytestmark = pytest.mark.usefixtures("countries", "framework")


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-unused-1")
    client.force_login(user)
    return client


@pytest.fixture
def scored() -> ScoringRun:
    record_observations(
        rows=[
            {
                "country": "SYR",
                "indicator": "8.7",
                "observed_on": "2014-01-31",
                "value": 1,
                "source": "test",
            },
            {
                "country": "SYR",
                "indicator": "1.1",
                "observed_on": "2014-01-31",
                "value": 0,
                "source": "test",
            },
        ],
        recompute=False,
    )
    return refresh_scores()


def draft_form(version: MethodologyVersion, **changes: object) -> dict:
    data = {
        "title": version.title,
        "rationale": version.rationale,
        "factor_weights": json.dumps(version.factor_weights),
        "indicator_weights": json.dumps(version.indicator_weights),
        "staleness_days": json.dumps(version.staleness_days),
        "thresholds": json.dumps(version.thresholds),
    }
    return {**data, **{k: json.dumps(v) if isinstance(v, dict) else v for k, v in changes.items()}}


def test_a_draft_is_edited_in_the_admin_through_the_methodology_service(admin_client, scored):
    draft = methodology.create_draft(by=None)
    weights = {**draft.factor_weights, "RF8": 3.0}
    url = reverse("admin:indicators_methodologyversion_change", args=[draft.pk])
    response = admin_client.post(url, draft_form(draft, factor_weights=weights, title="RF8 x3"))
    assert response.status_code == 302, response.content[:2000]
    draft.refresh_from_db()
    assert (draft.factor_weights["RF8"], draft.title) == (3.0, "RF8 x3")
    edit = draft.events.get(kind=MethodologyEvent.Kind.EDITED)
    assert edit.actor.username == "boss"
    assert edit.changes["factor_weights"] == {"RF8": [1.0, 3.0]}
    # Nothing is recomputed or shown by an edit: the published version is unchanged.
    assert selectors.published_methodology() != draft


def test_the_admin_refuses_what_the_service_refuses_and_changes_nothing(admin_client, scored):
    draft = methodology.create_draft(by=None)
    url = reverse("admin:indicators_methodologyversion_change", args=[draft.pk])
    for bad, field, message in [
        ({"factor_weights": {**draft.factor_weights, "RF8": -1}}, "factor_weights", "negative"),
        ({"thresholds": {**draft.thresholds, "high_from": 10}}, "thresholds", "increase"),
    ]:
        response = admin_client.post(url, draft_form(draft, **bad))
        assert response.status_code == 200
        assert message in str(response.context["adminform"].form.errors[field])
    draft.refresh_from_db()
    assert draft.factor_weights["RF8"] == 1.0
    assert not draft.events.filter(kind=MethodologyEvent.Kind.EDITED).exists()


def test_published_versions_and_weights_are_not_edited_in_the_admin(admin_client, scored):
    published = selectors.published_methodology()
    change = reverse("admin:indicators_methodologyversion_change", args=[published.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert b'name="factor_weights"' not in page.content  # read-only
    assert admin_client.post(change, draft_form(published)).status_code == 403
    factors = admin_client.get(reverse("admin:indicators_riskfactor_changelist"), follow=True)
    assert "belong to methodology versions" in factors.content.decode()
    assert b'name="form-0-weight"' not in factors.content


def test_publishing_from_the_admin_needs_a_rationale_and_records_who_and_why(
    admin_client, scored, django_capture_on_commit_callbacks
):
    draft = methodology.create_draft(by=None)
    methodology.edit_draft(draft, by=None, factor_weights={"RF8": 3.0})
    changelist = reverse("admin:indicators_methodologyversion_changelist")
    action = {"action": "publish_with_rationale", "_selected_action": [str(draft.pk)]}
    with django_capture_on_commit_callbacks(execute=True):
        refused = admin_client.post(changelist, action, follow=True)
    assert "needs a rationale" in refused.content.decode()
    draft.refresh_from_db()
    assert draft.status == MethodologyVersion.Status.DRAFT
    methodology.edit_draft(draft, by=None, rationale="Incitement matters most (see preview).")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(changelist, action, follow=True)
    draft.refresh_from_db()
    assert draft.status == MethodologyVersion.Status.PUBLISHED
    assert draft.published_by.username == "boss"
    published = draft.events.get(kind=MethodologyEvent.Kind.PUBLISHED)
    assert published.actor.username == "boss"
    assert published.note == "Incitement matters most (see preview)."
    assert published.changes == {"factor_weights": {"RF8": [1.0, 3.0]}}
    assert RiskScore.objects.filter(methodology=draft, country__iso3="SYR").exists()


def test_scores_and_runs_are_read_only_in_the_admin(admin_client, scored):
    score = RiskScore.objects.first()
    response = admin_client.post(
        reverse("admin:indicators_riskscore_change", args=[score.pk]), {"overall": 1}
    )
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:indicators_scoringrun_changelist")).status_code == 200


def observation_form(**fields: object) -> dict:
    data = {
        "country": Country.objects.get(iso3="SYR").pk,
        "indicator": Indicator.objects.get(code="8.7").pk,
        "observed_on": "2014-02-28",
        "value": "1",
        "confidence": "high",
        "source": "admin entry",
        "source_url": "",
        "note": "",
    }
    return {**data, **fields}


def queued(callbacks, mark: int) -> dict[str, list]:
    """The recomputes requested after ``mark`` and the hook tasks queued on commit."""
    partials = [c for c in callbacks if hasattr(c, "func")]
    return {
        "recompute": recomputes_requested_after(mark),
        "hooks": [c.args for c in partials if c.func is _queue_hook_tasks],
    }


def test_adding_an_observation_in_the_admin_records_it_through_the_service(
    admin_client, settings, django_capture_on_commit_callbacks
):
    url = reverse("admin:indicators_observation_add")
    mark = last_recompute_request()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, observation_form())
    assert response.status_code == 302, response.content[:3000]
    stored = Observation.objects.get()
    assert RiskScore.objects.filter(country__iso3="SYR", period=date(2014, 2, 28)).exists()
    assert (stored.value, stored.source) == (1.0, "admin entry")
    assert stored.recorded_by.username == "boss"  # who saved it, not a form field
    follow_up = queued(callbacks, mark)
    assert follow_up["recompute"] == ["SYR"]
    # The red-flag rule sees the new row (then the recompute's run is evaluated too).
    assert follow_up["hooks"][0] == (settings.OBSERVATIONS_RECORDED_TASKS, [stored.pk])


def test_the_admin_refuses_a_future_date_as_the_service_does(admin_client):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = admin_client.post(
        reverse("admin:indicators_observation_add"), observation_form(observed_on=tomorrow)
    )
    assert response.status_code == 200
    assert "is in the future" in response.context["adminform"].form.errors["observed_on"][0]
    assert not Observation.objects.exists()


def test_editing_an_observation_value_in_the_admin_updates_it_and_recomputes(
    admin_client, django_capture_on_commit_callbacks
):
    admin_client.post(reverse("admin:indicators_observation_add"), observation_form())
    stored = Observation.objects.get()
    url = reverse("admin:indicators_observation_change", args=[stored.pk])
    mark = last_recompute_request()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url, observation_form(value="0.5"))
    assert response.status_code == 302, response.content[:3000]
    assert Observation.objects.get().pk == stored.pk
    assert Observation.objects.get().value == 0.5
    follow_up = queued(callbacks, mark)
    assert follow_up["recompute"] == ["SYR"]
    assert len(follow_up["hooks"]) == 1


def test_moving_an_observation_to_another_date_in_the_admin_replaces_it(
    admin_client, django_capture_on_commit_callbacks
):
    admin_client.post(reverse("admin:indicators_observation_add"), observation_form())
    stored = Observation.objects.get()
    url = reverse("admin:indicators_observation_change", args=[stored.pk])
    mark = last_recompute_request()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url, observation_form(observed_on="2014-01-31"))
    assert response.status_code == 302, response.content[:3000]
    assert list(Observation.objects.values_list("observed_on", flat=True)) == [date(2014, 1, 31)]
    assert set(queued(callbacks, mark)["recompute"]) == {"SYR"}


def test_deleting_an_observation_in_the_admin_recomputes_its_country(
    admin_client, django_capture_on_commit_callbacks
):
    admin_client.post(reverse("admin:indicators_observation_add"), observation_form())
    stored = Observation.objects.get()
    url = reverse("admin:indicators_observation_delete", args=[stored.pk])
    mark = last_recompute_request()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Observation.objects.exists()
    assert queued(callbacks, mark)["recompute"] == ["SYR"]


def test_deleting_observations_from_the_list_recomputes_each_country(
    admin_client, django_capture_on_commit_callbacks
):
    add = reverse("admin:indicators_observation_add")
    admin_client.post(add, observation_form())
    admin_client.post(add, observation_form(country=Country.objects.get(iso3="NOR").pk))
    assert Observation.objects.count() == 2
    data = {
        "action": "delete_selected",
        "_selected_action": [str(pk) for pk in Observation.objects.values_list("pk", flat=True)],
        "post": "yes",
    }
    mark = last_recompute_request()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(reverse("admin:indicators_observation_changelist"), data)
    assert response.status_code == 302
    assert not Observation.objects.exists()
    assert queued(callbacks, mark)["recompute"] == ["NOR", "SYR"]


def test_an_administrator_who_is_not_a_superuser_works_drafts_profiles_and_reads_the_records(
    client, scored
):
    from indicators.roles import Role
    from tests.conftest import make_user

    client.force_login(make_user("ada", Role.ADMINISTRATOR, is_staff=True))
    draft = methodology.create_draft(by=None)
    pages = [
        reverse("admin:indicators_methodologyversion_change", args=[draft.pk]),
        reverse("admin:indicators_situationprofile_add"),
        reverse("admin:indicators_profileassignment_add"),
        reverse("admin:indicators_methodologyevent_changelist"),
        reverse("admin:indicators_methodologyjob_changelist"),
        reverse("admin:indicators_observationupload_changelist"),
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page
    response = client.post(
        reverse("admin:indicators_situationprofile_add"),
        {
            "name": "Armed conflict under way",
            "description": "Conflict factors count double.",
            "factor_multipliers": '{"RF1": 2.0}',
            "indicator_multipliers": "{}",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    # Analysts and focal points get no admin at all.
    client.force_login(make_user("ana", Role.ANALYST))
    assert client.get(pages[1]).status_code == 302  # to the admin's login

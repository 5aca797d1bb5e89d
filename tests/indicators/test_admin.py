"""Administrators edit weights in the admin lists; an edit recomputes under a new version."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from countries.models import Country
from indicators.models import (
    Indicator,
    MethodologyVersion,
    Observation,
    RiskFactor,
    RiskScore,
    ScoringRun,
)
from indicators.services import (
    _queue_hook_tasks,
    _queue_recompute_drain,
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


def changelist_post(model: type, objects, field: str, values: dict[int, object]) -> dict:
    data = {
        "form-TOTAL_FORMS": str(len(objects)),
        "form-INITIAL_FORMS": str(len(objects)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for n, obj in enumerate(objects):
        data[f"form-{n}-id"] = str(obj.pk)
        data[f"form-{n}-{field}"] = str(values.get(obj.pk, getattr(obj, field)))
    return data


def test_editing_a_factor_weight_in_the_list_recomputes_under_a_new_version(
    admin_client, scored, django_capture_on_commit_callbacks
):
    factors = list(RiskFactor.objects.order_by("number"))
    rf8 = RiskFactor.objects.get(code="RF8")
    url = reverse("admin:indicators_riskfactor_changelist")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            url, changelist_post(RiskFactor, factors, "weight", {rf8.pk: 3.0})
        )
    assert response.status_code == 302
    assert callbacks.count(_queue_recompute_drain) == 1  # one per request
    assert RiskFactor.objects.get(code="RF8").weight == 3.0
    assert MethodologyVersion.objects.count() == 2
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert latest.is_full
    assert latest.methodology.factor_weights["RF8"] == 3.0
    score = RiskScore.objects.get(
        methodology=latest.methodology, country__iso3="SYR", period=date(2014, 1, 31)
    )
    assert score.overall == pytest.approx(100 * (0 + 3 * 1) / 4)


def test_editing_an_indicator_weight_in_the_list_recomputes(
    admin_client, scored, django_capture_on_commit_callbacks
):
    indicators = list(Indicator.objects.select_related("factor")[:100])
    first = indicators[0]
    url = reverse("admin:indicators_indicator_changelist")
    data = changelist_post(Indicator, indicators, "weight", {first.pk: 0.5})
    for n, obj in enumerate(indicators):
        data[f"form-{n}-staleness_days"] = str(obj.staleness_days or "")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, data)
    assert response.status_code == 302
    assert callbacks.count(_queue_recompute_drain) == 1  # one per request
    assert (
        ScoringRun.objects.order_by("-started_at").first().methodology.indicator_weights[first.code]
        == 0.5
    )


def test_saving_without_changing_a_weight_does_not_recompute(
    admin_client, scored, django_capture_on_commit_callbacks
):
    factor = RiskFactor.objects.get(code="RF1")
    url = reverse("admin:indicators_riskfactor_change", args=[factor.pk])
    data = {
        "number": factor.number,
        "code": factor.code,
        "title": "Renamed",
        "group": factor.group,
        "summary": factor.summary,
        "weight": factor.weight,
        "indicators-TOTAL_FORMS": "0",
        "indicators-INITIAL_FORMS": "0",
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    assert callbacks == []
    assert MethodologyVersion.objects.count() == 1


def test_a_negative_weight_is_refused(admin_client, scored):
    factors = list(RiskFactor.objects.order_by("number"))
    url = reverse("admin:indicators_riskfactor_changelist")
    response = admin_client.post(
        url, changelist_post(RiskFactor, factors, "weight", {factors[0].pk: -1})
    )
    assert response.status_code == 200  # the list comes back with the error
    assert RiskFactor.objects.get(pk=factors[0].pk).weight == 1.0


def test_scores_and_runs_are_read_only_in_the_admin(admin_client, scored):
    score = RiskScore.objects.first()
    response = admin_client.post(
        reverse("admin:indicators_riskscore_change", args=[score.pk]), {"overall": 1}
    )
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:indicators_scoringrun_changelist")).status_code == 200


def factor_change_post(factor: RiskFactor, inline_edits: dict[str, dict[str, object]]) -> dict:
    """The factor's change form with its indicator inline rows, edited per indicator code."""
    data = {
        "number": factor.number,
        "code": factor.code,
        "title": factor.title,
        "group": factor.group,
        "summary": factor.summary,
        "weight": factor.weight,
        "indicators-INITIAL_FORMS": "0",
        "indicators-MIN_NUM_FORMS": "0",
        "indicators-MAX_NUM_FORMS": "1000",
    }
    rows = list(factor.indicators.order_by("position"))
    data["indicators-TOTAL_FORMS"] = data["indicators-INITIAL_FORMS"] = str(len(rows))
    for n, indicator in enumerate(rows):
        row = {
            "id": indicator.pk,
            "factor": factor.pk,
            "code": indicator.code,
            "label": indicator.label,
            "weight": indicator.weight,
            "staleness_days": indicator.staleness_days or "",
            "verification": indicator.verification,
            **inline_edits.get(indicator.code, {}),
        }
        data.update({f"indicators-{n}-{name}": value for name, value in row.items()})
    return data


def post_factor_change(admin_client, inline_edits, capture):
    factor = RiskFactor.objects.get(code="RF1")
    url = reverse("admin:indicators_riskfactor_change", args=[factor.pk])
    with capture(execute=True) as callbacks:
        response = admin_client.post(url, factor_change_post(factor, inline_edits))
    assert response.status_code == 302, response.content[:3000]
    return callbacks


def test_editing_an_indicator_weight_inline_on_its_factor_recomputes(
    admin_client, scored, django_capture_on_commit_callbacks
):
    callbacks = post_factor_change(
        admin_client, {"1.1": {"weight": 2.0}}, django_capture_on_commit_callbacks
    )
    assert callbacks.count(_queue_recompute_drain) == 1
    assert Indicator.objects.get(code="1.1").weight == 2.0
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert latest.is_full
    assert latest.methodology.indicator_weights["1.1"] == 2.0
    assert MethodologyVersion.objects.count() == 2


def test_editing_a_staleness_limit_inline_recomputes(
    admin_client, scored, django_capture_on_commit_callbacks
):
    callbacks = post_factor_change(
        admin_client, {"1.2": {"staleness_days": 90}}, django_capture_on_commit_callbacks
    )
    assert callbacks.count(_queue_recompute_drain) == 1
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert latest.methodology.staleness_days["1.2"] == 90


def test_deleting_an_indicator_inline_recomputes(
    admin_client, scored, django_capture_on_commit_callbacks
):
    callbacks = post_factor_change(
        admin_client, {"1.11": {"DELETE": "on"}}, django_capture_on_commit_callbacks
    )
    assert callbacks.count(_queue_recompute_drain) == 1
    assert not Indicator.objects.filter(code="1.11").exists()
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert "1.11" not in latest.methodology.indicator_weights


def test_editing_only_an_inline_label_does_not_recompute(
    admin_client, scored, django_capture_on_commit_callbacks
):
    callbacks = post_factor_change(
        admin_client, {"1.1": {"label": "Reworded"}}, django_capture_on_commit_callbacks
    )
    assert Indicator.objects.get(code="1.1").label == "Reworded"
    assert callbacks.count(_queue_recompute_drain) == 0
    assert MethodologyVersion.objects.count() == 1


def test_deleting_an_indicator_in_the_admin_recomputes(
    admin_client, scored, django_capture_on_commit_callbacks
):
    indicator = Indicator.objects.get(code="1.11")  # no observations, so not protected
    url = reverse("admin:indicators_indicator_delete", args=[indicator.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert callbacks.count(_queue_recompute_drain) == 1
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert "1.11" not in latest.methodology.indicator_weights


def test_deleting_indicators_from_the_list_recomputes_once(
    admin_client, scored, django_capture_on_commit_callbacks
):
    doomed = Indicator.objects.filter(code__in=["1.10", "1.11"])
    url = reverse("admin:indicators_indicator_changelist")
    data = {
        "action": "delete_selected",
        "_selected_action": [str(i.pk) for i in doomed],
        "post": "yes",
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, data)
    assert response.status_code == 302
    assert not Indicator.objects.filter(code__in=["1.10", "1.11"]).exists()
    assert callbacks.count(_queue_recompute_drain) == 1
    latest = ScoringRun.objects.order_by("-started_at").first()
    assert not {"1.10", "1.11"} & set(latest.methodology.indicator_weights)


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

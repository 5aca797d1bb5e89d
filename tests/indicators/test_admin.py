"""Administrators edit weights in the admin lists; an edit recomputes under a new version."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from indicators.models import Indicator, MethodologyVersion, RiskFactor, RiskScore, ScoringRun
from indicators.services import record_observations, refresh_scores
from indicators.tasks import recompute_all_scores

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
    assert callbacks.count(recompute_all_scores.delay) == 1  # one per request
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
    assert callbacks.count(recompute_all_scores.delay) == 1  # one per request
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

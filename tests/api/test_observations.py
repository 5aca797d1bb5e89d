"""Observations: list with filters, record one or a batch through ``record_observations``."""

from __future__ import annotations

import csv
import io

import pytest

from indicators.models import Observation

from .conftest import OBSERVATIONS

pytestmark = pytest.mark.django_db

URL = "/api/v1/observations/"
BATCH = "/api/v1/observations/batch/"


def row(**overrides):
    return {
        "country": "SDN",
        "indicator": "8.7",
        "observed_on": "2025-05-20",
        "value": 2 / 3,
        "confidence": "high",
        "source": "UN OHCHR report",
        "source_url": "https://www.ohchr.org/en/countries/sudan",
        "note": "Hate speech on state radio.",
        **overrides,
    }


# --- list ------------------------------------------------------------------------------


def test_it_lists_observations_newest_first(analyst_client, scored, analyst):
    Observation.objects.update(recorded_by=analyst)
    body = analyst_client.get(URL).json()
    assert body["count"] == len(OBSERVATIONS)
    first = body["results"][0]
    assert first["observed_on"] == "2025-02-01"
    assert first["country"] == "SDN"
    assert first["indicator"] == "12.1"
    assert first["recorded_by"] == "ana"
    assert set(first) == {
        "id",
        "country",
        "indicator",
        "observed_on",
        "value",
        "confidence",
        "source",
        "source_url",
        "note",
        "recorded_by",
        "dataset",
        "variable",
        "raw_value",
        "overrides_data",
        "created_at",
        "updated_at",
    }
    # An analyst's assessment: no data set, variable or raw value.
    assert (first["dataset"], first["variable"], first["raw_value"]) == (None, "", None)
    assert first["overrides_data"] is False


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"country": "sdn"}, 3),
        ({"indicator": "1.1"}, 4),
        ({"factor": "RF10"}, 2),
        ({"from": "2024-12-01", "to": "2025-01-31"}, 1),
        ({"confidence": "medium"}, 9),
        ({"confidence": "high"}, 0),
        ({"source": "TEST"}, 9),
        ({"country": "NOR", "indicator": "12.1"}, 1),
    ],
)
def test_filters(analyst_client, scored, params, expected):
    assert analyst_client.get(URL, params).json()["count"] == expected


@pytest.mark.parametrize("params", [{"from": "soon"}, {"confidence": "total"}])
def test_bad_filters_are_field_errors(analyst_client, scored, params):
    response = analyst_client.get(URL, params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_ordering_and_pagination(analyst_client, scored):
    rows = analyst_client.get(URL, {"ordering": "value", "page_size": 2}).json()["results"]
    assert [r["value"] for r in rows] == [0.0, 0.0]
    page = analyst_client.get(URL, {"ordering": "observed_on", "page_size": 4, "page": 3})
    assert [r["observed_on"] for r in page.json()["results"]] == ["2025-02-01"]


def test_csv(analyst_client, scored):
    Observation.objects.filter(country__iso3="NOR").update(note='=HYPERLINK("http://x")')
    response = analyst_client.get(URL, {"format": "csv", "country": "NOR"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["indicator"] for r in rows] == ["12.1", "1.1"]
    assert rows[0]["recorded_by"] == ""
    # A spreadsheet must not run what an analyst typed as a formula.
    assert rows[0]["note"] == '\'=HYPERLINK("http://x")'


def test_detail(analyst_client, scored):
    observation = Observation.objects.get(country__iso3="SDN", indicator__code="10.1")
    body = analyst_client.get(f"{URL}{observation.pk}/").json()
    assert body["id"] == observation.pk
    assert body["value"] == pytest.approx(2 / 3)
    assert analyst_client.get(f"{URL}999999/").status_code == 404


# --- create one ------------------------------------------------------------------------


def test_an_analyst_records_one_observation(analyst_client, scored, analyst):
    response = analyst_client.post(URL, row(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    saved = Observation.objects.get(pk=body["id"])
    assert (saved.country.iso3, saved.indicator.code, saved.value) == ("SDN", "8.7", 2 / 3)
    assert saved.recorded_by == analyst
    assert body["recorded_by"] == "ana"
    assert response["Location"].endswith(f"/api/v1/observations/{saved.pk}/")


def test_sending_a_known_key_again_updates_it(analyst_client, scored):
    first = analyst_client.post(URL, row(), format="json").json()
    again = analyst_client.post(URL, row(value=1.0, country=" sdn "), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["value"] == 1.0
    assert Observation.objects.filter(indicator__code="8.7").count() == 1


def test_recording_queues_a_recompute_of_the_country(
    analyst_client, scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        analyst_client.post(URL, row(), format="json")
    assert callbacks, "nothing was queued after the observation was recorded"


def test_optional_fields_default(analyst_client, scored):
    minimal = {k: row()[k] for k in ("country", "indicator", "observed_on", "value", "source")}
    body = analyst_client.post(URL, minimal, format="json").json()
    assert (body["confidence"], body["source_url"], body["note"]) == ("medium", "", "")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"country": "XXX"}, "country", "unknown country code 'XXX'"),
        ({"indicator": "99.9"}, "indicator", "unknown indicator code '99.9'"),
        ({"observed_on": "2999-01-01"}, "observed_on", "2999-01-01 is in the future"),
        ({"observed_on": "20/05/2025"}, "observed_on", "is not a date in the form YYYY-MM-DD"),
        ({"value": 1.5}, "value", "1.5 is outside [0, 1]"),
        ({"value": "high"}, "value", "'high' is not a number"),
        ({"confidence": "certain"}, "confidence", "'certain' is not one of low, medium, high"),
        ({"source": ""}, "source", "is required"),
        ({"source_url": "ftp://example.org/x"}, "source_url", "is not a valid http(s) URL"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(
    analyst_client, scored, overrides, field, message
):
    response = analyst_client.post(URL, row(**overrides), format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert message in body[field][0]
    assert Observation.objects.count() == len(OBSERVATIONS)


def test_several_problems_are_reported_together(analyst_client, scored):
    body = analyst_client.post(URL, row(country="XXX", value=7), format="json").json()
    assert body == {
        "country": ["unknown country code 'XXX'"],
        "value": ["7 is outside [0, 1]"],
    }


@pytest.mark.parametrize("payload", [[row()], "SDN", 42])
def test_a_body_that_is_not_an_object_is_rejected(analyst_client, scored, payload):
    response = analyst_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_form_encoded_bodies_are_not_accepted(analyst_client, scored):
    response = analyst_client.post(URL, row())  # multipart
    assert response.status_code == 415
    assert "detail" in response.json()


# --- batches ---------------------------------------------------------------------------


def test_a_batch_is_recorded(analyst_client, scored):
    rows = [row(), row(country="MMR"), row(indicator="1.1", value=0.0, country="NOR")]
    response = analyst_client.post(BATCH, {"observations": rows}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "countries": ["MMR", "NOR", "SDN"],
    }
    again = analyst_client.post(BATCH, {"observations": rows}, format="json").json()
    assert again == {"created": 0, "updated": 0, "unchanged": 3, "countries": []}


def test_a_batch_with_one_bad_row_writes_nothing(analyst_client, scored):
    rows = [row(), row(country="MMR", value=1.5), row(country="UKR")]
    response = analyst_client.post(BATCH, {"observations": rows}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "1 problem(s), nothing recorded.",
        "errors": [{"row": 2, "field": "value", "message": "1.5 is outside [0, 1]"}],
    }
    assert Observation.objects.count() == len(OBSERVATIONS)


def test_a_batch_reports_every_problem_of_every_row(analyst_client, scored):
    rows = [
        row(country="XXX"),
        row(observed_on="not a date", confidence="certain"),
        "not an object",
        row(),
        row(),  # the same key as row 4
    ]
    response = analyst_client.post(BATCH, {"observations": rows}, format="json")
    assert response.status_code == 400
    errors = [(e["row"], e["field"]) for e in response.json()["errors"]]
    assert errors == [
        (1, "country"),
        (2, "confidence"),
        (2, "observed_on"),
        (3, "non_field_errors"),
        (5, "source"),
    ]
    messages = {(e["row"], e["field"]): e["message"] for e in response.json()["errors"]}
    assert messages[(1, "country")] == "unknown country code 'XXX'"
    assert messages[(5, "source")].startswith("repeats row 4")
    assert Observation.objects.count() == len(OBSERVATIONS)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"observations": []}, "This list may not be empty."),
        ({}, "This field is required."),
        ({"observations": "SDN"}, 'Expected a list of items but got type "str".'),
        ([row()], "Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_a_malformed_batch_is_rejected_as_a_whole(analyst_client, scored, payload, message):
    response = analyst_client.post(BATCH, payload, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["row"], e["message"]) for e in errors] == [(0, message)]


def test_a_batch_has_a_size_limit(analyst_client, scored):
    rows = [row()] * 5001
    response = analyst_client.post(BATCH, {"observations": rows}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "row": 0,
            "field": "observations",
            "message": "Ensure this field has no more than 5000 elements.",
        }
    ]


# --- who may write ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "allowed"),
    [
        ("analyst", True),
        ("focal_point", False),
        ("administrator", False),
        ("no_role_user", False),
    ],
)
def test_only_analysts_record_observations(client_for, scored, fixture, allowed):
    client = client_for(fixture)
    single = client.post(URL, row(), format="json")
    batch = client.post(BATCH, {"observations": [row(country="MMR")]}, format="json")
    if allowed:
        assert (single.status_code, batch.status_code) == (201, 200)
    else:
        assert (single.status_code, batch.status_code) == (403, 403)
        assert "detail" in single.json()
        assert Observation.objects.count() == len(OBSERVATIONS)


def test_a_superuser_holds_every_role(scored, django_user_model):
    from .conftest import token_client

    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-x-123456")
    assert token_client(boss).post(URL, row(), format="json").status_code == 201


def test_anonymous_callers_get_401(api_client, scored):
    response = api_client.post(URL, row(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert api_client.post(BATCH, {"observations": [row()]}, format="json").status_code == 401


def test_session_writes_need_the_csrf_token(analyst, scored):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(analyst)
    response = browser.post(URL, row(), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_batch_the_service_refuses_is_all_or_nothing_with_row_errors(analyst_client, scored):
    # Every row is well-formed, so only record_observations can find these problems.
    rows = [row(), row(country="XXX"), row(country="MMR"), row(observed_on="2999-01-01")]
    response = analyst_client.post(BATCH, {"observations": rows}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "2 problem(s), nothing recorded."
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (2, "country"),
        (4, "observed_on"),
    ]
    assert body["errors"][0]["message"] == "unknown country code 'XXX'"
    assert Observation.objects.count() == len(OBSERVATIONS)

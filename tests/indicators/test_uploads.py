"""Analysts' assessment files: the parser, the upload page and the import command."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

from indicators import uploads
from indicators.models import Observation, ObservationUpload
from indicators.roles import Role
from indicators.services import ObservationBatchError, drain_recompute_requests
from indicators.uploads import (
    UploadFormatError,
    import_observation_file,
    import_pending_uploads,
    read_observation_file,
    submit_upload,
)
from tests.conftest import make_user, pending_recomputes

pytestmark = pytest.mark.usefixtures("countries", "framework")

GOOD_CSV = (
    "\ufeffCountry,Indicator,Date,Value,Scale,Confidence,Source,URL,Note\n"
    "SDN,8.7,2025-06-30,3,0-3,high,UN panel report,https://example.org/r1,hate radio\n"
    "SDN,8.1,2025-06-30,0.5,0-1,,UN panel report,,\n"
    "NOR,8.7,2025-05-31,0,,low,Press review,,\n"
).encode()

# Rows 2 and 5 are good; every other row has at least one problem.
MIXED_CSV = (
    b"country,indicator,date,value,scale,confidence,source,url,note\n"
    b"SDN,8.7,2025-06-30,2,0-3,high,Report A,,\n"
    b"XXX,8.7,2025-06-30,1,0-3,,Report A,,\n"
    b"SDN,99.9,2025-13-01,7,0-3,sure,,not-a-url,\n"
    b",,,,,,,,\n"
    b"NOR,8.1,2025-06-30,0.25,0-1,,Report B,,\n"
    b"NOR,8.2,2025-06-30,1.5,0-1,,Report B,,\n"
    b"NOR,8.3,2025-06-30,1,0-5,,Report B,,\n"
    b"SDN,8.7,2025-06-30,3,0-3,,Report A,,\n"
)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def problems(error: ObservationBatchError) -> list[tuple[int, str]]:
    return [(problem.row, problem.field) for problem in error.errors]


# --- Parser and import ------------------------------------------------------------------


def test_a_good_csv_is_recorded_with_values_on_the_unit_scale(
    analyst, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        result = import_observation_file(name="a.csv", content=GOOD_CSV, recorded_by=analyst)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert result.countries == {"SDN", "NOR"}
    stored = {
        (o.country.iso3, o.indicator.code): o
        for o in Observation.objects.select_related("country", "indicator")
    }
    assert stored["SDN", "8.7"].value == 1.0
    assert stored["SDN", "8.7"].confidence == "high"
    assert stored["SDN", "8.7"].source_url == "https://example.org/r1"
    assert stored["SDN", "8.7"].note == "hate radio"
    assert stored["SDN", "8.7"].recorded_by == analyst
    assert stored["SDN", "8.1"].value == 0.5
    assert stored["SDN", "8.1"].confidence == "medium"
    assert stored["NOR", "8.7"].value == 0.0
    assert pending_recomputes() == ["NOR", "SDN"]


def test_a_good_xlsx_is_recorded():
    content = xlsx_bytes(
        [
            ["COUNTRY", "indicator", "date", "value", "scale", "source", "note"],
            ["SDN", "8.7", date(2025, 6, 30), 2, "0-3", "UN panel report", None],
            [None, None, None, None, None, None, None],
            ["NOR", "8.10", "2025-05-31", 0.75, "0-1", "Press review", "from a sheet"],
        ]
    )
    result = import_observation_file(name="Sheet.XLSX", content=content)
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    sdn = Observation.objects.get(country__iso3="SDN")
    assert sdn.indicator.code == "8.7"
    assert sdn.observed_on == date(2025, 6, 30)
    assert sdn.value == pytest.approx(2 / 3)
    nor = Observation.objects.get(country__iso3="NOR")
    assert (nor.indicator.code, nor.value, nor.note) == ("8.10", 0.75, "from a sheet")


def test_a_dry_run_counts_and_writes_nothing():
    result = import_observation_file(name="a.csv", content=GOOD_CSV, dry_run=True)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert not Observation.objects.exists()


def test_a_file_with_bad_rows_writes_nothing_and_lists_every_problem_by_file_row():
    with pytest.raises(ObservationBatchError) as caught:
        import_observation_file(name="mixed.csv", content=MIXED_CSV)
    assert problems(caught.value) == [
        (3, "country"),
        (4, "confidence"),
        (4, "date"),
        (4, "indicator"),
        (4, "source"),
        (4, "url"),
        (4, "value"),
        (7, "value"),
        (8, "scale"),
        (9, "source"),
    ]
    repeat = caught.value.errors[-1]
    assert repeat.message.startswith("repeats row 2 ")
    assert str(caught.value.errors[0]) == "row 3, country: unknown country code 'XXX'"
    assert not Observation.objects.exists()


def test_the_same_file_twice_changes_nothing_the_second_time():
    import_observation_file(name="a.csv", content=GOOD_CSV)
    again = import_observation_file(name="a.csv", content=GOOD_CSV)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert again.countries == frozenset()
    assert Observation.objects.count() == 3


def test_a_missing_column_is_named():
    content = b"country,indicator,value,source\nSDN,8.7,2,Report\n"
    with pytest.raises(UploadFormatError, match="Missing required column\\(s\\): date"):
        read_observation_file(name="a.csv", content=content)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", b"country\n", "neither a .csv nor a .xlsx"),
        ("a.csv", b"", "empty"),
        ("a.csv", b"country,indicator,date,value,source\n", "no data rows"),
        ("a.xlsx", b"not a workbook", "cannot be read"),
        ("a.csv", "é".encode("latin-1"), "not UTF-8"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(name, content, message):
    with pytest.raises(UploadFormatError, match=message):
        read_observation_file(name=name, content=content)


# --- Pages -------------------------------------------------------------------------------


def upload(client, content: bytes, *, name: str = "a.csv", dry_run: bool = False):
    data = {"file": SimpleUploadedFile(name, content)}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(reverse("observation-upload"), data)


def upload_page(client, stored: ObservationUpload) -> str:
    response = client.get(reverse("observation-upload-detail", args=[stored.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_stores_the_file_and_answers_with_the_uploads_own_page(client, analyst):
    client.force_login(analyst)
    assert client.get(reverse("observation-upload")).status_code == 200
    response = upload(client, GOOD_CSV)
    stored = ObservationUpload.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("observation-upload-detail", args=[stored.pk])
    assert (stored.status, stored.file_name, stored.uploaded_by) == ("pending", "a.csv", analyst)
    assert bytes(stored.content) == GOOD_CSV
    assert not Observation.objects.exists()  # a worker records it, not the request
    page = upload_page(client, stored)
    assert "Waiting for a worker" in page
    assert '<meta http-equiv="refresh" content="2">' in page


def test_a_worker_records_the_upload_and_its_page_follows_the_recompute(client, analyst):
    client.force_login(analyst)
    upload(client, GOOD_CSV)
    assert import_pending_uploads() == 1
    stored = ObservationUpload.objects.get()
    assert stored.status == "succeeded"
    assert (stored.rows, stored.result["created"], stored.result["countries"]) == (
        3,
        3,
        ["NOR", "SDN"],
    )
    assert bytes(stored.content) == b""  # the file is let go once imported
    assert Observation.objects.filter(recorded_by=analyst).count() == 3
    assert pending_recomputes() == ["NOR", "SDN"]
    page = upload_page(client, stored)
    assert "3 created, 0 updated, 0 unchanged" in page
    assert "Recomputing the scores of NOR, SDN" in page
    assert 'http-equiv="refresh"' in page
    drain_recompute_requests()
    page = upload_page(client, stored)
    assert "Scores recomputed for" in page
    assert reverse("country", args=["SDN"]) in page
    assert 'http-equiv="refresh"' not in page


def test_in_the_one_machine_default_the_upload_is_imported_before_the_page_answers(
    client, analyst, django_capture_on_commit_callbacks
):
    # No broker: tasks run in process, so the on-commit import runs within the request.
    client.force_login(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, GOOD_CSV)
    stored = ObservationUpload.objects.get()
    assert stored.status == "succeeded"
    assert Observation.objects.count() == 3
    assert "3 created, 0 updated, 0 unchanged" in client.get(response.url).content.decode()


def test_a_dry_run_upload_counts_and_writes_nothing(client, analyst):
    client.force_login(analyst)
    upload(client, GOOD_CSV, dry_run=True)
    import_pending_uploads()
    stored = ObservationUpload.objects.get()
    assert (stored.status, stored.dry_run) == ("succeeded", True)
    assert "would create 3, update 0" in upload_page(client, stored)
    assert not Observation.objects.exists()
    assert pending_recomputes() == []


def test_the_uploads_page_lists_every_problem_and_nothing_is_written(client, analyst):
    client.force_login(analyst)
    upload(client, MIXED_CSV)
    import_pending_uploads()
    stored = ObservationUpload.objects.get()
    assert stored.status == "failed"
    assert [(p["row"], p["field"]) for p in stored.problems][:2] == [
        (3, "country"),
        (4, "confidence"),
    ]
    page = upload_page(client, stored)
    assert "10 problems in the file; nothing was recorded" in page
    assert '<td class="num">9</td><td>source</td>' in page
    assert 'http-equiv="refresh"' not in page
    assert not Observation.objects.exists()


def test_a_file_that_cannot_be_read_is_refused_at_once_on_the_file_field(client, analyst):
    client.force_login(analyst)
    response = upload(client, b"\xff\xfe not text", name="a.csv")
    assert response.status_code == 200
    assert "not UTF-8" in response.content.decode()
    assert not ObservationUpload.objects.exists()


def test_a_missing_column_fails_the_upload_with_its_reason(client, analyst):
    client.force_login(analyst)
    upload(client, b"country,value\nSDN,2\n")
    import_pending_uploads()
    stored = ObservationUpload.objects.get()
    assert stored.status == "failed"
    assert "Missing required column" in stored.error
    assert "Missing required column" in upload_page(client, stored)


def test_the_upload_page_lists_the_analysts_own_uploads_in_constant_queries(
    client, analyst, django_assert_max_num_queries
):
    other = make_user("other-analyst", Role.ANALYST)
    client.force_login(analyst)
    for name in ("first.csv", "second.csv"):
        upload(client, GOOD_CSV, name=name)
    submit_upload(name="theirs.csv", content=GOOD_CSV, uploaded_by=other)
    import_pending_uploads()
    page = client.get(reverse("observation-upload")).content.decode()
    assert "first.csv" in page
    assert "second.csv" in page
    assert "theirs.csv" not in page
    for _ in range(5):
        submit_upload(name="more.csv", content=GOOD_CSV, uploaded_by=analyst)
    with django_assert_max_num_queries(8):
        client.get(reverse("observation-upload"))


def test_an_upload_is_seen_by_its_uploader_and_administrators_only(client, analyst, administrator):
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=analyst)
    url = reverse("observation-upload-detail", args=[stored.pk])
    client.force_login(make_user("other-analyst", Role.ANALYST))
    assert client.get(url).status_code == 404
    client.force_login(administrator)
    assert client.get(url).status_code == 200
    client.force_login(analyst)
    assert client.get(url).status_code == 200
    assert client.get(reverse("observation-upload-detail", args=[stored.pk + 1])).status_code == 404


def test_a_body_larger_than_the_limit_is_refused_before_it_is_read(client, analyst, settings):
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    client.force_login(analyst)
    # The declared length is far larger than the body: reading it would fail the test.
    response = client.generic(
        "POST",
        reverse("observation-upload"),
        b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert "The file is larger than 1.0 MB; split it into smaller files." in (
        response.content.decode()
    )
    assert not ObservationUpload.objects.exists()


def test_a_file_over_the_limit_gets_a_field_error(client, analyst, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    client.force_login(analyst)
    response = upload(client, b"x" * 1001)
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "The file is larger than 1.0 KB; split it into smaller files."
    ]
    assert not ObservationUpload.objects.exists()


def test_the_upload_still_needs_a_csrf_token(analyst):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)
    response = upload(client, GOOD_CSV)
    assert response.status_code == 403
    assert not ObservationUpload.objects.exists()


def test_a_focal_point_may_not_upload(client, focal_point):
    client.force_login(focal_point)
    assert client.get(reverse("observation-upload")).status_code == 403
    assert upload(client, GOOD_CSV).status_code == 403
    assert not ObservationUpload.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("observation-upload"))
    assert response.status_code == 302
    assert "login" in response.url


def test_analysts_see_the_upload_link(client, analyst):
    client.force_login(analyst)
    page = client.get(reverse("overview")).content.decode()
    assert reverse("observation-upload") in page


# --- Command -----------------------------------------------------------------------------


def test_the_command_records_a_good_file(tmp_path: Path, analyst):
    path = tmp_path / "good.csv"
    path.write_bytes(GOOD_CSV)
    out = io.StringIO()
    call_command("import_observations", str(path), "--user", "ana", stdout=out)
    assert "Created 3, updated 0, unchanged 0" in out.getvalue()
    assert Observation.objects.filter(recorded_by=analyst).count() == 3


def test_the_command_dry_run_writes_nothing(tmp_path: Path):
    path = tmp_path / "good.csv"
    path.write_bytes(GOOD_CSV)
    out = io.StringIO()
    call_command("import_observations", str(path), "--dry-run", stdout=out)
    assert "would create 3, update 0" in out.getvalue()
    assert not Observation.objects.exists()


def test_the_command_lists_problems_and_fails_on_a_bad_file(tmp_path: Path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED_CSV)
    err = io.StringIO()
    with pytest.raises(CommandError, match="10 problem"):
        call_command("import_observations", str(path), stderr=err)
    assert "row 3, country: unknown country code 'XXX'" in err.getvalue()
    assert "row 9, source: repeats row 2" in err.getvalue()
    assert not Observation.objects.exists()


def test_the_command_refuses_an_unknown_user(tmp_path: Path):
    path = tmp_path / "good.csv"
    path.write_bytes(GOOD_CSV)
    with pytest.raises(CommandError, match="No user named"):
        call_command("import_observations", str(path), "--user", "nobody-here")


def test_an_xlsx_indicator_typed_as_a_number_is_refused_not_misread():
    book = Workbook()
    sheet = book.active
    sheet.append(["country", "indicator", "date", "value", "source"])
    sheet.append(["SYR", 8.10, "2024-01-31", 2, "analyst"])  # stored as 8.1
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(ObservationBatchError) as caught:
        import_observation_file(name="numbers.xlsx", content=buffer.getvalue())
    assert [(e.row, e.field) for e in caught.value.errors] == [(2, "indicator")]
    assert "format the indicator column as text" in caught.value.errors[0].message
    assert not Observation.objects.exists()


def test_an_override_column_marks_rows_that_replace_the_data_derived_values():
    content = (
        b"country,indicator,date,value,source,override\n"
        b"SDN,1.1,2024-12-31,3,Field report,yes\n"
        b"SDN,1.2,2024-12-31,2,Field report,\n"
        b"SDN,1.3,2024-12-31,2,Field report,maybe\n"
    )
    with pytest.raises(ObservationBatchError) as caught:
        import_observation_file(name="a.csv", content=content)
    assert [str(e) for e in caught.value.errors] == ["row 4, override: 'maybe' is not yes or no"]
    assert not Observation.objects.exists()
    import_observation_file(name="a.csv", content=content.replace(b",maybe", b",no"))
    flags = dict(Observation.objects.values_list("indicator__code", "overrides_data"))
    assert flags == {"1.1": True, "1.2": False, "1.3": False}


# --- The queue ---------------------------------------------------------------------------


def leave_running(stored: ObservationUpload, *, lease_until, attempts: int = 1) -> None:
    """The row as a worker leaves it that stopped in the middle of an import."""
    ObservationUpload.objects.filter(pk=stored.pk).update(
        status="running",
        claim=uuid.uuid4(),
        claimed_until=lease_until,
        started_at=timezone.now(),
        attempts=attempts,
    )


def test_an_upload_held_by_a_live_worker_is_left_to_it():
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    leave_running(stored, lease_until=timezone.now() + timedelta(minutes=5))
    assert import_pending_uploads() == 0
    assert not Observation.objects.exists()


def test_an_upload_whose_worker_stopped_is_imported_once_its_lease_runs_out():
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    leave_running(stored, lease_until=timezone.now() - timedelta(seconds=1))
    assert import_pending_uploads() == 1
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.result["created"]) == ("succeeded", 2, 3)
    assert stored.claim is None
    assert stored.claimed_until is None


def test_an_upload_that_keeps_stopping_its_worker_fails_after_three_attempts():
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    leave_running(stored, lease_until=timezone.now() - timedelta(seconds=1), attempts=3)
    assert import_pending_uploads() == 1
    stored.refresh_from_db()
    assert stored.status == "failed"
    assert "stopped 3 times" in stored.error
    assert not Observation.objects.exists()


def test_a_worker_that_outlived_its_lease_writes_nothing(monkeypatch):
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    record = uploads.record_file_rows

    def record_then_lose_the_claim(**kwargs):
        result = record(**kwargs)
        # Meanwhile the lease ran out and another worker took the upload over.
        leave_running(stored, lease_until=timezone.now() + timedelta(minutes=5), attempts=2)
        return result

    monkeypatch.setattr(uploads, "record_file_rows", record_then_lose_the_claim)
    import_pending_uploads()
    stored.refresh_from_db()
    assert stored.status == "running"  # still the other worker's
    assert not Observation.objects.exists()  # this worker's rows were rolled back
    assert pending_recomputes() == []


def test_an_unexpected_error_fails_the_upload_with_a_plain_message(monkeypatch, caplog):
    stored = submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(uploads, "record_file_rows", broken)
    import_pending_uploads()
    stored.refresh_from_db()
    assert stored.status == "failed"
    assert "unexpected error" in stored.error
    assert "a bug" not in stored.error
    assert "a bug" in caplog.text
    assert not Observation.objects.exists()


def test_the_import_is_queued_once_the_upload_is_committed(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    assert len(callbacks) == 1
    callbacks[0]()  # tasks run in process here: the import runs
    assert ObservationUpload.objects.get().status == "succeeded"


def test_the_beat_sweep_imports_pending_uploads():
    from earlywarning.celery import app

    entry = app.conf.beat_schedule["import-pending-uploads"]
    assert entry["task"] == "indicators.tasks.import_pending_uploads"
    submit_upload(name="a.csv", content=GOOD_CSV, uploaded_by=None)
    app.tasks[entry["task"]].apply()
    assert ObservationUpload.objects.get().status == "succeeded"

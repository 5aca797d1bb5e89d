"""Each bad input on every entry path: the web form, an upload (web and command line), the
API (one observation and a batch) and the admin. Each gets a clear error, never a 500, and
nothing is written.

The same rules hold everywhere because every path goes through ``record_observations``
(dates from ``OBSERVATIONS_FROM`` to today, written YYYY-MM-DD; no control characters);
files are bounded before they are read (size, rows, columns, an XLSX sheet's declared
dimensions), and a request body before it is read.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from countries.models import Country
from indicators.models import Indicator, Observation, ObservationUpload
from indicators.roles import Role
from indicators.uploads import import_pending_uploads
from tests.conftest import make_user
from tests.indicators.workbooks import declaring, xlsx_bomb, xlsx_bytes

pytestmark = pytest.mark.usefixtures("countries", "framework")

GOOD = {
    "country": "SDN",
    "indicator": "8.7",
    "observed_on": "2024-01-31",
    "value": 2,  # on the 0-3 scale; the API takes it as 2/3
    "source": "UN panel report",
    "note": "",
}
# Far more than a small upload takes, far less than reading a bomb would.
MEMORY_BOUND = 40 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    status: int
    text: str


def _api_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "value": round(row["value"] / 3, 4)}


def _csv(row: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["country", "indicator", "date", "value", "source", "note"])
    writer.writerow(
        [row[k] for k in ("country", "indicator", "observed_on", "value", "source")] + [row["note"]]
    )
    return out.getvalue().encode()


def through_form(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    response = client.post(
        reverse("observation-new"),
        {**row, "confidence": "medium", "source_url": ""},
    )
    return Outcome(response.status_code, response.content.decode())


def through_upload(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    response = client.post(
        reverse("observation-upload"), {"file": SimpleUploadedFile("a.csv", _csv(row))}
    )
    assert response.status_code == 302
    import_pending_uploads()
    page = client.get(response.url)
    assert ObservationUpload.objects.get().status == "failed"
    return Outcome(page.status_code, page.content.decode())


def through_command(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    path = tmp_path / "a.csv"
    path.write_bytes(_csv(row))
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_observations", str(path), stderr=err)
    return Outcome(400, f"{caught.value}\n{err.getvalue()}")


def through_api(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    response = api_client().post("/api/v1/observations/", _api_row(row), format="json")
    return Outcome(response.status_code, json.dumps(response.json()))


def through_api_batch(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    response = api_client().post(
        "/api/v1/observations/batch/", {"observations": [_api_row(row)]}, format="json"
    )
    return Outcome(response.status_code, json.dumps(response.json()))


def through_admin(client: Client, row: dict[str, Any], tmp_path: Path) -> Outcome:
    client.force_login(
        get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-unused-1")
    )
    response = client.post(
        reverse("admin:indicators_observation_add"),
        {
            **row,
            "country": Country.objects.get(iso3=row["country"]).pk,
            "indicator": Indicator.objects.get(code=row["indicator"]).pk,
            "value": round(row["value"] / 3, 4),
            "confidence": "medium",
            "source_url": "",
        },
    )
    return Outcome(response.status_code, response.content.decode())


ENTRY_PATHS: dict[str, Callable[[Client, dict[str, Any], Path], Outcome]] = {
    "form": through_form,
    "upload": through_upload,
    "command": through_command,
    "api": through_api,
    "api batch": through_api_batch,
    "admin": through_admin,
}


def api_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="ana"))
    return client


def escaped(text: str) -> list[str]:
    """``text`` as a page or a JSON body may write it."""
    return [text, text.replace("'", "&#x27;"), json.dumps(text)[1:-1]]


# (what is wrong, the row's change, what each path may say: any one of them)
BAD_ROWS = [
    (
        "a date without dashes",
        {"observed_on": "20240131"},
        ["'20240131' is not a date in the form YYYY-MM-DD"],
    ),
    (
        "the year 204 for 2024",
        {"observed_on": "0204-05-01"},
        ["0204-05-01 is before 1900-01-01: is the year right?"],
    ),
    ("the year 1800", {"observed_on": "1800-01-01"}, ["1800-01-01 is before 1900-01-01"]),
    ("a date in the future", {"observed_on": "2999-01-31"}, ["2999-01-31 is in the future"]),
    (
        "a NUL character in the source",
        {"source": "UN\x00 panel"},
        # Django's and DRF's own fields refuse a NUL before the service sees it.
        ["control character (U+0000) at character 3", "Null characters are not allowed"],
    ),
    (
        "a control character in the note",
        {"note": "radio \x07 broadcasts"},
        ["control character (U+0007) at character 7: remove it"],
    ),
    (
        "a NUL character in the note",
        {"note": "radio\x00"},
        ["control character (U+0000) at character 6", "Null characters are not allowed"],
    ),
]


@pytest.mark.parametrize("path", ENTRY_PATHS)
@pytest.mark.parametrize(("wrong", "change", "messages"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_a_bad_row_gets_a_clear_error_on_every_entry_path_and_nothing_is_written(
    client, analyst, tmp_path, path: str, wrong: str, change: dict[str, Any], messages: list[str]
):
    client.force_login(analyst)
    outcome = ENTRY_PATHS[path](client, {**GOOD, **change}, tmp_path)
    assert outcome.status in {200, 400}, outcome.text[:2000]
    assert any(form in outcome.text for m in messages for form in escaped(m)), outcome.text[:4000]
    assert not Observation.objects.exists()


@pytest.mark.parametrize("path", ENTRY_PATHS)
def test_the_good_row_goes_in_on_every_entry_path(client, analyst, tmp_path, path: str):
    # The control for the test above: only the change makes a row bad.
    client.force_login(analyst)
    if path in {"command"}:
        path_file = tmp_path / "a.csv"
        path_file.write_bytes(_csv(GOOD))
        call_command("import_observations", str(path_file), stdout=io.StringIO())
    elif path == "upload":
        client.post(
            reverse("observation-upload"), {"file": SimpleUploadedFile("a.csv", _csv(GOOD))}
        )
        import_pending_uploads()
    else:
        outcome = ENTRY_PATHS[path](client, GOOD, tmp_path)
        assert outcome.status in {200, 201, 302}, outcome.text[:2000]
    assert Observation.objects.get().observed_on.isoformat() == "2024-01-31"


def test_the_earliest_date_is_a_setting(client, analyst, settings, tmp_path):
    settings.OBSERVATIONS_FROM = (timezone.localdate() - timedelta(days=3650)).replace(day=1)
    client.force_login(analyst)
    too_early = (settings.OBSERVATIONS_FROM - timedelta(days=1)).isoformat()
    outcome = through_api(client, {**GOOD, "observed_on": too_early}, tmp_path)
    assert outcome.status == 400
    assert f"is before {settings.OBSERVATIONS_FROM.isoformat()}" in outcome.text


def test_the_form_offers_dates_in_range_only(client, analyst):
    client.force_login(analyst)
    page = client.get(reverse("observation-new")).content.decode()
    assert 'min="1900-01-01"' in page
    assert f'max="{timezone.localdate().isoformat()}"' in page


# --- Files beyond the limits -------------------------------------------------------------


def peak_memory(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.fixture
def bomb_file(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(xlsx_bomb())
    assert path.stat().st_size < 10_000  # tiny on disk: 1,048,576 x 16,384 cells declared
    return path


def test_an_xlsx_bomb_uploaded_on_the_web_is_refused_at_once_in_bounded_memory(
    client, analyst, bomb_file: Path
):
    client.force_login(analyst)
    responses = []

    def post() -> None:
        responses.append(
            client.post(
                reverse("observation-upload"),
                {"file": SimpleUploadedFile("bomb.xlsx", bomb_file.read_bytes())},
            )
        )

    assert peak_memory(post) < MEMORY_BOUND
    page = responses[0].content.decode()
    assert responses[0].status_code == 200
    assert "The sheet declares 1,048,576 rows and 16,384 columns (A1:XFD1048576)" in page
    assert not ObservationUpload.objects.exists()
    assert not Observation.objects.exists()


def test_an_xlsx_bomb_on_the_command_line_is_refused_in_bounded_memory(bomb_file: Path):
    def run() -> None:
        with pytest.raises(CommandError, match=r"declares 1,048,576 rows and 16,384 columns"):
            call_command("import_observations", str(bomb_file))

    assert peak_memory(run) < MEMORY_BOUND
    assert not Observation.objects.exists()


def test_an_xlsx_bomb_that_reached_a_worker_is_refused_by_it(analyst):
    # Stored before the limits existed, or by another path: the worker checks again.
    ObservationUpload.objects.create(
        file_name="bomb.xlsx",
        content=xlsx_bomb(),
        size=5000,
        sha256="",
        created_at=timezone.now(),
        uploaded_by=analyst,
    )
    assert peak_memory(import_pending_uploads) < MEMORY_BOUND
    stored = ObservationUpload.objects.get()
    assert stored.status == "failed"
    assert "declares 1,048,576 rows" in stored.error


FORMULA_ROWS = [
    ["country", "indicator", "date", "value", "source", "note"],
    ["SDN", "8.7", "2024-01-31", 2, "UN panel report", '=CONCAT("hate ", "radio")'],
]


def test_a_formula_cell_is_an_error_naming_the_cell_on_the_web(client, analyst):
    client.force_login(analyst)
    response = client.post(
        reverse("observation-upload"),
        {"file": SimpleUploadedFile("f.xlsx", xlsx_bytes(FORMULA_ROWS))},
    )
    import_pending_uploads()
    page = client.get(response.url).content.decode()
    assert "F2 holds a formula" in page
    assert "formulas are not read: save the values" in page
    assert not Observation.objects.exists()


def test_a_formula_cell_is_an_error_naming_the_cell_on_the_command_line(tmp_path: Path):
    path = tmp_path / "f.xlsx"
    path.write_bytes(xlsx_bytes(FORMULA_ROWS))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("import_observations", str(path), stderr=err)
    assert "row 2, note: F2 holds a formula" in err.getvalue()
    assert not Observation.objects.exists()


def rows_csv(count: int) -> bytes:
    lines = ["country,indicator,date,value,source"]
    lines += [f"SDN,8.7,2024-01-31,2,report {n}" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.UPLOAD_MAX_ROWS = 5
    settings.UPLOAD_MAX_BYTES = 8192


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("long.csv", rows_csv(6), "past row 6: at most 5 rows besides the header"),
        ("wide.csv", b"country" + b",x" * 60 + b"\nSDN\n", "at most 50 columns"),
        ("big.csv", b"country\n" + b"x" * 9000, "8.0 KB"),
        ("tall.xlsx", declaring(xlsx_bytes([["country"]]), "A1:E100"), "declares 100 rows"),
    ],
)
def test_a_file_beyond_the_limits_is_refused_on_the_web_and_the_command_line(
    client, analyst, tmp_path: Path, name: str, content: bytes, message: str
):
    client.force_login(analyst)
    response = client.post(
        reverse("observation-upload"), {"file": SimpleUploadedFile(name, content)}
    )
    if response.status_code == 302:  # found by the worker, as the rows are read
        import_pending_uploads()
        text = client.get(response.url).content.decode()
    else:
        text = response.content.decode()
    assert any(form in text for form in escaped(message)), text[:3000]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError) as caught:
        call_command("import_observations", str(path))
    assert message in str(caught.value)
    assert not Observation.objects.exists()


def test_a_json_body_beyond_the_limit_is_refused_before_it_is_read(analyst, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = APIClient()
    client.force_authenticate(analyst)
    rows = [_api_row({**GOOD, "source": f"report {n}"}) for n in range(20)]
    response = client.post("/api/v1/observations/batch/", {"observations": rows}, format="json")
    assert response.status_code == 413
    assert response.json() == {
        "detail": (
            "The request body is larger than the 1,000 bytes the API reads; send fewer rows "
            "at a time."
        )
    }
    assert not Observation.objects.exists()


def test_too_many_rows_in_a_batch_are_refused(analyst):
    client = APIClient()
    client.force_authenticate(analyst)
    rows = [_api_row(GOOD)] * 5001
    response = client.post("/api/v1/observations/batch/", {"observations": rows}, format="json")
    assert response.status_code == 400
    assert "5000" in json.dumps(response.json())
    assert not Observation.objects.exists()


# --- Other text a request carries --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/observations/?source=a%00b",
        "/api/v1/observations/?country=S%00N",
        "/api/v1/countries/?search=a%00b",
        "/admin/indicators/observation/?q=a%00b",
        "/admin/indicators/observationupload/?q=a%00b",
        "/?country=a%00b",
    ],
)
def test_a_nul_in_a_query_string_is_no_server_error(client, url: str):
    client.force_login(
        make_user("boss", Role.ADMINISTRATOR, Role.ANALYST, is_superuser=True, is_staff=True)
    )
    response = client.get(url)
    assert response.status_code < 500


def test_a_nul_in_an_uploaded_file_name_is_written_out(client, analyst):
    client.force_login(analyst)
    response = client.post(
        reverse("observation-upload"),
        {"file": SimpleUploadedFile("a\x00b.csv", _csv(GOOD))},
    )
    assert response.status_code in {200, 302}
    if response.status_code == 302:
        assert "\x00" not in ObservationUpload.objects.get().file_name

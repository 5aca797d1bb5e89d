"""The upload pages in a real browser (headless Chromium against a live server).

The live server runs tasks in process, as the one-machine default does: the upload is
imported before its page answers. Saves screenshots to artifacts/screenshots/ at laptop
and phone sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from indicators.models import ObservationUpload
from tests.browser.test_dashboard import LAPTOP, PHONE, Session
from tests.indicators.test_uploads import GOOD_CSV, MIXED_CSV

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("countries", "framework"),
]


@pytest.fixture
def waiting_upload(users: None) -> int:
    """An upload no worker has taken yet (made before the browser starts; the first upload
    through the page, run in process, imports it too)."""
    content = GOOD_CSV.replace(b"UN panel report", b"Other report").replace(b"Press", b"Radio")
    stored = ObservationUpload.objects.create(
        uploaded_by=get_user_model().objects.get(username="ana"),
        file_name="waiting-for-a-worker.csv",
        content=content,
        size=len(content),
        sha256="0" * 64,
        created_at=timezone.now(),
    )
    return stored.pk


def choose_file(session: Session, path: Path, *, dry_run: bool = False) -> None:
    page = session.page
    page.set_input_files("#id_file", str(path))
    if not dry_run:
        page.uncheck("#id_dry_run")


def test_an_analyst_uploads_files_and_follows_them(
    waiting_upload: int, browser: Any, live_server: Any, tmp_path: Path
):
    good = tmp_path / "assessments.csv"
    good.write_bytes(GOOD_CSV)
    mixed = tmp_path / "assessments-with-mistakes.csv"
    mixed.write_bytes(MIXED_CSV)
    session = Session(browser, live_server.url, LAPTOP)
    page = session.page
    session.log_in("ana")

    session.goto(f"/observations/uploads/{waiting_upload}/")
    assert "Waiting for a worker" in page.inner_text("#upload-status")
    session.shot("upload-waiting-1366")

    session.goto("/observations/upload/")
    session.shot("upload-form-1366")
    choose_file(session, good)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/observations/uploads/*/")
    status = page.inner_text("#upload-status")
    assert "3 created, 0 updated, 0 unchanged" in status
    assert "Scores recomputed for NOR, SDN" in status
    session.shot("upload-done-1366")

    session.goto("/observations/upload/")
    choose_file(session, mixed)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/observations/uploads/*/")
    assert "10 problems in the file; nothing was recorded" in page.inner_text("#upload-status")
    assert page.locator("#upload-problems tbody tr").count() == 10
    session.shot("upload-problems-1366")

    session.goto("/observations/upload/")
    listed = page.locator("#upload-list tbody tr")
    assert listed.count() == 3
    assert "Not imported" in listed.first.inner_text()
    session.shot("upload-list-1366")
    assert session.errors == []
    assert session.outside == []
    session.close()


def test_the_upload_pages_fit_a_phone(
    waiting_upload: int, browser: Any, live_server: Any, tmp_path: Path
):
    mixed = tmp_path / "assessments-with-mistakes.csv"
    mixed.write_bytes(MIXED_CSV)
    session = Session(browser, live_server.url, PHONE)
    page = session.page

    def fits() -> bool:
        return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    session.log_in("ana")
    session.goto(f"/observations/uploads/{waiting_upload}/")
    session.shot("upload-waiting-390")
    assert fits()
    session.goto("/observations/upload/")
    choose_file(session, mixed)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/observations/uploads/*/")
    session.shot("upload-problems-390")
    assert fits()
    session.goto("/observations/upload/")
    session.shot("upload-form-390")
    assert fits()
    assert session.errors == []
    session.close()


def test_the_page_refuses_a_file_over_the_limit_before_sending_it(
    users: None, browser: Any, live_server: Any, tmp_path: Path, settings: Any
):
    settings.UPLOAD_MAX_BYTES = 100
    large = tmp_path / "large.csv"
    large.write_bytes(GOOD_CSV)
    session = Session(browser, live_server.url, LAPTOP)
    page = session.page
    session.log_in("ana")
    session.goto("/observations/upload/")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method))
    choose_file(session, large)
    assert page.is_visible("#upload-size-error")
    page.click("#upload-form button[type=submit]")
    assert "The file is larger than 0.1 KB; split it" in page.inner_text("#upload-size-error")
    assert "POST" not in requests
    session.shot("upload-too-large-1366")
    assert session.errors == []
    session.close()

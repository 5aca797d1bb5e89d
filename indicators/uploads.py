"""Analysts' assessment files (CSV or XLSX): reading them, recording their rows, and the
queue of uploads that workers import.

One row per assessment, a header in the first row (names case-insensitive):

    country     ISO3 code                            required
    indicator   indicator code, e.g. 8.7             required (text: "8.10" is not 8.1)
    date        YYYY-MM-DD                           required
    value       0, 1, 2 or 3 (scale 0-3), or 0-1     required
    scale       "0-3" (default) or "0-1"             optional
    confidence  low, medium or high (default medium) optional
    source      who or what it rests on              required
    url         http(s) link to the source           optional
    note        free text                            optional
    override    yes: replaces the data-derived values of that country, indicator and
                date in the scores (default no)       optional

Problems are reported with the file's row numbers: the header is row 1, the first data
row is row 2. Nothing is written unless every row is good. A file is bounded before it
is read (``spreadsheets``, with the limits in settings): its size, its rows and columns,
and an XLSX sheet's declared dimensions; a formula cell is a problem naming the cell.

Uploads from the web are rows (``ObservationUpload``): the request stores the file and
answers at once; a worker claims the row with a conditional UPDATE and a lease (the task
queued on commit, or the beat sweep every minute) and imports it, all or nothing, and the
row keeps the outcome for the analyst's progress page.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from indicators import services, spreadsheets
from indicators.models import ObservationUpload
from indicators.services import ObservationBatchError, RecordResult, RowError
from indicators.spreadsheets import Formula

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("country", "indicator", "date", "value", "source")
OPTIONAL_COLUMNS = ("scale", "confidence", "url", "note", "override")
EXTENSIONS = spreadsheets.EXTENSIONS
SCALES = ("0-3", "0-1")
DEFAULT_SCALE = "0-3"
ANALYST_MAX = 3
# The service's field names, as the file calls them.
FILE_FIELD_NAMES = {"observed_on": "date", "source_url": "url", "overrides_data": "override"}
# The file's column of each field of a row read from it.
FILE_COLUMNS = {
    "country": "country",
    "indicator": "indicator",
    "observed_on": "date",
    "value": "value",
    "scale": "scale",
    "confidence": "confidence",
    "source": "source",
    "source_url": "url",
    "note": "note",
    "overrides_data": "override",
}

# The file as a whole cannot be read (type, size, shape, header, encoding).
UploadFormatError = spreadsheets.TableError


def upload_limits() -> spreadsheets.TableLimits:
    """How much of a file is read: the same on the web, in a worker and on the command line."""
    return spreadsheets.TableLimits(
        max_bytes=settings.UPLOAD_MAX_BYTES, max_rows=settings.UPLOAD_MAX_ROWS
    )


def check_observation_file(*, name: str, content: bytes) -> None:
    """What can be told at once, without reading the rows: the type and size of the file,
    a CSV's encoding, an XLSX file's unpacked size and declared dimensions. Raises
    ``UploadFormatError``."""
    spreadsheets.check_table(name=name, content=content, limits=upload_limits())


def read_observation_file(*, name: str, content: bytes) -> list[dict[str, Any]]:
    """The data rows of a CSV or XLSX assessment file, blank rows left out.

    Each row is a dict with the file's row number (``row``), ``scale`` and the keys of
    ``services.record_observations``: country, indicator, observed_on, value (as in the
    file, not yet converted), confidence, source, source_url, note. A formula cell's value
    is a ``spreadsheets.Formula`` (``to_unit_rows`` reports it). Raises
    ``UploadFormatError`` for an unknown extension, a file beyond the limits, an empty or
    unreadable file, or a missing required column.
    """
    table = spreadsheets.read_table(name=name, content=content, limits=upload_limits())
    header = next(table, None)
    if header is None or all(_is_blank(cell) for cell in header):
        raise UploadFormatError("The file is empty: the first row must name the columns.")
    columns = _columns(header)
    places = [(field, columns.get(column)) for field, column in FILE_COLUMNS.items()]
    rows: list[dict[str, Any]] = []
    for number, cells in enumerate(table, start=2):
        if all(_is_blank(cell) for cell in cells):
            continue
        width = len(cells)
        row: dict[str, Any] = {"row": number}
        for field, index in places:
            value = cells[index] if index is not None and index < width else None
            # Dates and values stay as the file has them (a date cell, a number).
            row[field] = value if field in ("observed_on", "value") else _text(value)
        # A spreadsheet number loses trailing zeros: 8.10 would arrive as 8.1.
        indicator = columns["indicator"]
        row["indicator_is_number"] = indicator < width and isinstance(cells[indicator], int | float)
        row["formulas"] = (
            {
                field: cells[index]
                for field, index in places
                if index is not None and index < width and isinstance(cells[index], Formula)
            }
            if Formula in map(type, cells)
            else {}
        )
        rows.append(row)
    if not rows:
        raise UploadFormatError("The file has a header but no data rows.")
    return rows


def to_unit_rows(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Rows with every value on the 0-1 scale, and the problems of values, scales and
    formula cells.

    A row with a bad value or scale still comes back (value 0), so that its other fields
    are checked too; its problem is in the second list, with the file's row number.
    """
    converted: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for row in rows:
        number = row["row"]
        formulas: Mapping[str, Formula] = row.get("formulas", {})
        for field, formula in formulas.items():
            errors.append(RowError(number, FILE_COLUMNS[field], str(formula)))
        scale = row["scale"] or DEFAULT_SCALE
        out = {
            key: "" if key in formulas else value
            for key, value in row.items()
            if key not in {"row", "scale", "indicator_is_number", "formulas"}
        }
        if row.get("indicator_is_number"):
            errors.append(
                RowError(
                    number,
                    "indicator",
                    "is a number in the spreadsheet, so 8.10 would read as 8.1: format the "
                    "indicator column as text",
                )
            )
        if "scale" in formulas or "value" in formulas:
            out["value"] = 0
        elif scale not in SCALES:
            errors.append(RowError(number, "scale", f"{scale!r} is not one of 0-3, 0-1"))
            out["value"] = 0
        elif scale == "0-3":
            value = _analyst_value(row["value"])
            if isinstance(value, str):
                errors.append(RowError(number, "value", value))
                out["value"] = 0
            else:
                out["value"] = value / ANALYST_MAX
        converted.append(out)
    return converted, errors


def import_observation_file(
    *,
    name: str,
    content: bytes,
    recorded_by: AbstractBaseUser | None = None,
    dry_run: bool = False,
) -> RecordResult:
    """Read a file and record its rows, all or nothing, in one transaction.

    Raises ``UploadFormatError`` if the file cannot be read, or ``ObservationBatchError``
    listing every problem (file row numbers, file column names); then nothing is
    written. A good file's countries are recomputed once it is committed.
    """
    rows = read_observation_file(name=name, content=content)
    return record_file_rows(rows=rows, recorded_by=recorded_by, dry_run=dry_run)


def record_file_rows(
    *,
    rows: Sequence[dict[str, Any]],
    recorded_by: AbstractBaseUser | None = None,
    dry_run: bool = False,
    recompute_reason: str = "observations recorded",
) -> RecordResult:
    """Record the rows ``read_observation_file`` returned, all or nothing (see
    ``import_observation_file``)."""
    unit_rows, errors = to_unit_rows(rows)
    file_rows = [row["row"] for row in rows]
    try:
        result = services.record_observations(
            rows=unit_rows,
            recorded_by=recorded_by,
            scale="unit",
            dry_run=dry_run or bool(errors),
            recompute_reason=recompute_reason,
        )
    except ObservationBatchError as error:
        # A formula's cell is reported once, not again as empty.
        reported = {(e.row, e.field) for e in errors}
        errors.extend(
            problem
            for problem in (_in_file_terms(p, file_rows) for p in error.errors)
            if (problem.row, problem.field) not in reported
        )
    if errors:
        raise ObservationBatchError(sorted(errors, key=lambda e: (e.row, e.field)))
    return result


# --- Uploads queued for a worker -------------------------------------------------------

# Longer than any import within the row limit takes; a worker that dies holding an upload
# leaves it to the next claim after this.
UPLOAD_LEASE = timedelta(minutes=15)
# Claims before an upload that keeps stopping its worker (killed, out of memory) fails.
MAX_ATTEMPTS = 3
# Problems kept on the row; the count says how many there were in all.
MAX_STORED_PROBLEMS = 1000


def submit_upload(
    *,
    name: str,
    content: bytes,
    uploaded_by: AbstractBaseUser | None,
    dry_run: bool = False,
) -> ObservationUpload:
    """Store a file for a worker to import, and queue the import once it is committed.

    Raises ``UploadFormatError`` (and stores nothing) for what can be told at once: the
    type and size of the file, its encoding, an XLSX file's declared dimensions. Every
    other problem is the import's, on the returned row.
    """
    check_observation_file(name=name, content=content)
    user = uploaded_by if uploaded_by is not None and uploaded_by.is_authenticated else None
    with transaction.atomic():
        upload = ObservationUpload.objects.create(
            uploaded_by=user,
            file_name=printable(name)[:255],
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            dry_run=dry_run,
            created_at=timezone.now(),
        )
        transaction.on_commit(_queue_upload_import, robust=True)
    return upload


def import_pending_uploads(*, now: datetime | None = None) -> int:
    """Claim waiting uploads one at a time and import each; returns how many were taken.

    An upload whose worker stopped (its lease ran out) is taken again, at most
    ``MAX_ATTEMPTS`` times in all. Each import is all or nothing, and its outcome is
    written in the same transaction as its observations, by the claim's holder only.
    """
    taken = 0
    while (claim := _claim_next_upload(now=now or timezone.now())) is not None:
        _import_claimed(claim)
        taken += 1
    return taken


@dataclass(frozen=True)
class _Claim:
    upload: ObservationUpload
    token: uuid.UUID

    def mine(self) -> QuerySet[ObservationUpload]:
        """The upload's row while this claim holds it (the fencing token)."""
        return ObservationUpload.objects.filter(pk=self.upload.pk, claim=self.token)


class _LostClaim(Exception):
    """Another worker took the upload over (this one outlived its lease)."""


def _claim_next_upload(*, now: datetime) -> _Claim | None:
    available = Q(status=ObservationUpload.Status.PENDING) | Q(
        status=ObservationUpload.Status.RUNNING, claimed_until__lt=now
    )
    candidates = (
        ObservationUpload.objects.filter(available)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:20]
    )
    for pk in list(candidates):
        token = uuid.uuid4()
        taken = ObservationUpload.objects.filter(available, pk=pk).update(
            status=ObservationUpload.Status.RUNNING,
            claim=token,
            claimed_until=now + UPLOAD_LEASE,
            started_at=now,
            step="Reading the file",
            attempts=F("attempts") + 1,
        )
        if taken:  # else another worker took it first
            return _Claim(ObservationUpload.objects.get(pk=pk), token)
    return None


def _import_claimed(claim: _Claim) -> None:
    upload = claim.upload
    if upload.attempts > MAX_ATTEMPTS:
        _finish(
            claim,
            ObservationUpload.Status.FAILED,
            error=(
                f"The import stopped {MAX_ATTEMPTS} times before it could finish (its worker "
                "was stopped or ran out of memory); nothing was recorded. Split the file "
                "and upload the parts."
            ),
        )
        return
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    try:
        rows = read_observation_file(name=upload.file_name, content=bytes(upload.content))
        seconds["read"] = time.perf_counter() - clock
        claim.mine().update(rows=len(rows), step=f"Checking and recording {len(rows):,} rows")
        clock = time.perf_counter()
        with transaction.atomic():
            result = record_file_rows(
                rows=rows,
                recorded_by=upload.uploaded_by,
                dry_run=upload.dry_run,
                recompute_reason=upload.recompute_reason,
            )
            seconds["record"] = time.perf_counter() - clock
            outcome = {
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "countries": sorted(result.countries),
                "seconds": _rounded(seconds),
            }
            if not _finish(claim, ObservationUpload.Status.SUCCEEDED, result=outcome):
                raise _LostClaim  # roll the observations back: the new holder records them
    except UploadFormatError as error:
        _finish(claim, ObservationUpload.Status.FAILED, error=printable(str(error)))
    except ObservationBatchError as error:
        _finish(
            claim,
            ObservationUpload.Status.FAILED,
            problems=[
                {"row": e.row, "field": e.field, "message": printable(e.message)}
                for e in error.errors[:MAX_STORED_PROBLEMS]
            ],
            result={"problem_count": len(error.errors), "seconds": _rounded(seconds)},
        )
    except _LostClaim:
        logger.warning("Upload %s was taken over by another worker", upload.pk)
    except Exception:
        # A fault of ours, not of the file: say so, and keep the details in the log. (If
        # even this write fails, the lease runs out and another worker tries again.)
        logger.exception("Upload %s failed", upload.pk)
        _finish(
            claim,
            ObservationUpload.Status.FAILED,
            error=(
                "The import stopped on an unexpected error (the worker's log has the "
                "details); nothing was recorded. Upload the file again later, or tell an "
                "administrator."
            ),
        )


def _finish(claim: _Claim, status: str, **fields: Any) -> bool:
    """Record the outcome if the claim still holds the upload; the file is let go."""
    return bool(
        claim.mine().update(
            status=status,
            finished_at=timezone.now(),
            claim=None,
            claimed_until=None,
            step="",
            content=b"",
            **fields,
        )
    )


def _rounded(seconds: Mapping[str, float]) -> dict[str, float]:
    return {step: round(value, 3) for step, value in seconds.items()}


def _queue_upload_import() -> None:
    from indicators import tasks  # tasks import this module

    try:
        tasks.import_pending_uploads.delay()
    except Exception:
        # The upload is committed: the beat sweep imports it once the broker is back.
        logger.exception("Could not run or queue the upload import after commit")


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with each control character written out (``\\x00``), for names and
    messages that are stored and shown (PostgreSQL text holds no NUL)."""
    return _CONTROL_CHARACTERS.sub(lambda m: repr(m.group())[1:-1], text)


# --- Reading the cells ------------------------------------------------------------------


def _in_file_terms(problem: RowError, file_rows: Sequence[int]) -> RowError:
    """A service problem (rows counted from 1 in the batch) with the file's row and column."""
    row = file_rows[problem.row - 1] if 1 <= problem.row <= len(file_rows) else problem.row
    message = problem.message
    if problem.field == "source" and message.startswith("repeats row "):
        batch_row = message.removeprefix("repeats row ").split(" ", 1)
        if batch_row[0].isdigit() and 1 <= int(batch_row[0]) <= len(file_rows):
            message = f"repeats row {file_rows[int(batch_row[0]) - 1]} {batch_row[1]}"
    return RowError(row, FILE_FIELD_NAMES.get(problem.field, problem.field), message)


def _analyst_value(raw: Any) -> float | str:
    """0, 1, 2 or 3, or an error message."""
    text = _text(raw)
    if not text:
        return "is required"
    try:
        number = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if not math.isfinite(number) or number not in (0, 1, 2, 3):
        return f"{text} is not 0, 1, 2 or 3 (the 0-3 scale; use scale 0-1 for fractions)"
    return number


def _columns(header: Sequence[Any]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        if isinstance(cell, Formula):
            raise UploadFormatError(f"The header's {cell}.")
        label = _text(cell).lower()
        if label in columns:
            raise UploadFormatError(f"The column {label!r} appears twice in the header.")
        if label:
            columns[label] = index
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise UploadFormatError(
            f"Missing required column(s): {', '.join(missing)}. The header row needs "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})."
        )
    return columns


def _is_blank(cell: Any) -> bool:
    return not isinstance(cell, Formula) and not _text(cell)


def _text(value: Any) -> str:
    if type(value) is str:  # nearly always: the fast path for 100,000-row files
        return value.strip()
    if value is None or isinstance(value, Formula):
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()

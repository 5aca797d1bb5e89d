"""Analysts' assessment files (CSV or XLSX): reading them and recording their rows.

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
row is row 2. Nothing is written unless every row is good.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from indicators import services
from indicators.services import ObservationBatchError, RecordResult, RowError

REQUIRED_COLUMNS = ("country", "indicator", "date", "value", "source")
OPTIONAL_COLUMNS = ("scale", "confidence", "url", "note", "override")
EXTENSIONS = (".csv", ".xlsx")
SCALES = ("0-3", "0-1")
DEFAULT_SCALE = "0-3"
ANALYST_MAX = 3
# The service's field names, as the file calls them.
FILE_FIELD_NAMES = {"observed_on": "date", "source_url": "url", "overrides_data": "override"}


class UploadFormatError(ValueError):
    """The file as a whole cannot be read (type, header, emptiness); the message says why."""


def read_observation_file(*, name: str, content: bytes) -> list[dict[str, Any]]:
    """The data rows of a CSV or XLSX assessment file, blank rows left out.

    Each row is a dict with the file's row number (``row``), ``scale`` and the keys of
    ``services.record_observations``: country, indicator, observed_on, value (as in the
    file, not yet converted), confidence, source, source_url, note. Raises
    ``UploadFormatError`` for an unknown extension, an empty or unreadable file, or a
    missing required column.
    """
    extension = PurePath(name).suffix.lower()
    if extension not in EXTENSIONS:
        raise UploadFormatError(
            f"{name!r} is neither a .csv nor a .xlsx file; save the sheet in one of those."
        )
    if not content:
        raise UploadFormatError("The file is empty.")
    table = _csv_rows(content) if extension == ".csv" else _xlsx_rows(content)
    header = next(table, None)
    if header is None or not any(_text(cell) for cell in header):
        raise UploadFormatError("The file is empty: the first row must name the columns.")
    columns = _columns(header)
    rows: list[dict[str, Any]] = []
    for number, cells in enumerate(table, start=2):
        if not any(_text(cell) for cell in cells):
            continue

        def cell(column: str, cells: Sequence[Any] = cells) -> Any:
            index = columns.get(column)
            return cells[index] if index is not None and index < len(cells) else None

        rows.append(
            {
                "row": number,
                "country": _text(cell("country")),
                "indicator": _text(cell("indicator")),
                # A spreadsheet number loses trailing zeros: 8.10 would arrive as 8.1.
                "indicator_is_number": isinstance(cell("indicator"), int | float),
                "observed_on": cell("date"),
                "value": cell("value"),
                "scale": _text(cell("scale")),
                "confidence": _text(cell("confidence")),
                "source": _text(cell("source")),
                "source_url": _text(cell("url")),
                "note": _text(cell("note")),
                "overrides_data": _text(cell("override")),
            }
        )
    if not rows:
        raise UploadFormatError("The file has a header but no data rows.")
    return rows


def to_unit_rows(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Rows with every value on the 0-1 scale, and the problems of values and scales.

    A row with a bad value or scale still comes back (value 0), so that its other fields
    are checked too; its problem is in the second list, with the file's row number.
    """
    converted: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for row in rows:
        number = row["row"]
        scale = row["scale"] or DEFAULT_SCALE
        out = {
            key: value
            for key, value in row.items()
            if key not in {"row", "scale", "indicator_is_number"}
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
        if scale not in SCALES:
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
    unit_rows, errors = to_unit_rows(rows)
    file_rows = [row["row"] for row in rows]
    try:
        result = services.record_observations(
            rows=unit_rows,
            recorded_by=recorded_by,
            scale="unit",
            dry_run=dry_run or bool(errors),
        )
    except ObservationBatchError as error:
        errors.extend(_in_file_terms(problem, file_rows) for problem in error.errors)
    if errors:
        raise ObservationBatchError(sorted(errors, key=lambda e: (e.row, e.field)))
    return result


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


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadFormatError(
            "The CSV file is not UTF-8 text; save it as 'CSV UTF-8' and try again."
        ) from exc
    try:
        return iter(list(csv.reader(io.StringIO(text, newline=""))))
    except csv.Error as exc:
        raise UploadFormatError(f"The CSV file cannot be read: {exc}.") from exc


def _xlsx_rows(content: bytes) -> Iterator[tuple[Any, ...]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UploadFormatError("The XLSX file cannot be read; is it an Excel workbook?") from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise UploadFormatError("The XLSX file has no worksheet.")
        rows = [tuple(_xlsx_cell(v) for v in row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return iter(rows)


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()

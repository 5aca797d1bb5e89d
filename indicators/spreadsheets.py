"""Reading a CSV or XLSX table within bounds: nothing beyond the limits is ever read.

Pure: no Django, no database, no clock. Each check comes before the reading it guards:
the size of the file first; for an XLSX workbook (a zip of XML parts), the size its
parts unpack to and the dimensions its sheet declares in its header (a file of a few
kilobytes can declare a million rows of 16,384 columns, which a reader that pads rows to
the declared size turns into gigabytes); then, as the rows stream by, their number and
width. The sheet is read in openpyxl's read-only (streaming) mode, one row at a time.

A formula cell is never read as a value, nor as a blank (a workbook may hold no computed
value for it): it comes back as a ``Formula`` naming the cell, for the caller to report.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

EXTENSIONS = (".csv", ".xlsx")
# An XLSX file's XML compresses about ten times; a bomb compresses a thousand times and more.
UNPACK_RATIO = 20
MEGABYTE = 1024 * 1024


class TableError(ValueError):
    """The file as a whole cannot be read (type, size, shape, encoding); the message says
    why, in words for the person who made the file."""


@dataclass(frozen=True)
class TableLimits:
    """How much of a file is read at most."""

    max_bytes: int
    max_rows: int
    """Rows besides the header."""
    max_columns: int = 50

    @property
    def max_unpacked_bytes(self) -> int:
        """What the parts of an XLSX file may unpack to, all together."""
        return self.max_bytes * UNPACK_RATIO


@dataclass(frozen=True)
class Formula:
    """A formula cell: its name (``D5``) and its text (``=TODAY()``)."""

    cell: str
    text: str

    def __str__(self) -> str:
        return (
            f"{self.cell} holds a formula ({self.text[:40]}); formulas are not read: save "
            "the values (copy the cells, then paste them as values)"
        )


def check_table(*, name: str, content: bytes, limits: TableLimits) -> None:
    """Everything that can be told without reading the rows: the type and size of the
    file, a CSV's encoding, an XLSX file's unpacked size and the sheet's declared
    dimensions. Raises ``TableError``."""
    extension = _check_name_and_size(name, len(content), limits)
    if extension == ".csv":
        _decode_csv(content)
    else:
        workbook, _sheet = _open_xlsx(content, limits)
        workbook.close()


def check_file_size(*, name: str, size: int, limits: TableLimits) -> None:
    """The type and size of a file not read yet (from its name and its size on disk)."""
    _check_name_and_size(name, size, limits)


def read_table(*, name: str, content: bytes, limits: TableLimits) -> Iterator[list[Any]]:
    """The rows of the file, the header first, as lists of cells, blank rows included.

    Cells are as the file has them: text for CSV; for XLSX text, numbers, dates (a
    ``date`` for a date cell), None for an empty cell, a ``Formula`` for a formula. Raises
    ``TableError``, also while iterating (a row too many, a row too wide, a malformed file).
    """
    extension = _check_name_and_size(name, len(content), limits)
    rows = _csv_rows(content) if extension == ".csv" else _xlsx_rows(content, limits)
    last_row = limits.max_rows + 1
    for number, cells in enumerate(rows, start=1):
        if number > last_row:
            raise TableError(
                f"The file goes on past row {last_row:,}: at most {limits.max_rows:,} rows "
                "besides the header are read. Split it into smaller files."
            )
        width = _width(cells)
        if width > limits.max_columns:
            raise TableError(
                f"Row {number:,} has a value in column {width:,} ({column_letter(width)}): at "
                f"most {limits.max_columns} columns are read. Delete the columns after the "
                "data."
            )
        yield list(cells[:width])


def column_letter(number: int) -> str:
    """1 -> A, 27 -> AA, 16384 -> XFD."""
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _check_name_and_size(name: str, size: int, limits: TableLimits) -> str:
    extension = PurePath(name).suffix.lower()
    if extension not in EXTENSIONS:
        raise TableError(
            f"{name!r} is neither a .csv nor a .xlsx file; save the sheet in one of those."
        )
    if size == 0:
        raise TableError("The file is empty.")
    if size > limits.max_bytes:
        raise TableError(
            f"The file is {human_size(size)}; at most {human_size(limits.max_bytes)} is read. "
            "Split it into smaller files."
        )
    return extension


def _width(cells: Sequence[Any]) -> int:
    """The number of the last column holding something (0 for a blank row)."""
    for index in range(len(cells) - 1, -1, -1):
        cell = cells[index]
        if cell is not None and cell != "":
            return index + 1
    return 0


def human_size(size: int) -> str:
    """A size for people: 640.0 KB, 2.5 MB, 10 MB."""
    if size < MEGABYTE:
        return f"{size / 1024:.1f} KB"
    return f"{size / MEGABYTE:.1f} MB" if size < 10 * MEGABYTE else f"{size // MEGABYTE} MB"


# --- CSV -------------------------------------------------------------------------------


def _decode_csv(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(
            "The CSV file is not UTF-8 text; save it as 'CSV UTF-8' and try again."
        ) from exc


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(_decode_csv(content), newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        raise TableError(f"The CSV file cannot be read at line {reader.line_num}: {exc}.") from exc


# --- XLSX ------------------------------------------------------------------------------


def _open_xlsx(content: bytes, limits: TableLimits) -> tuple[Any, Any]:
    """The workbook (read-only, formulas as written) and its first sheet, once the zip's
    unpacked size and the sheet's declared dimensions are known to be within the limits."""
    from openpyxl import load_workbook

    unreadable = "The XLSX file cannot be read; is it an Excel workbook?"
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            # The sizes the zip declares bound what is unpacked: reading a part stops at
            # its declared size (and fails its checksum if the data goes on).
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise TableError(unreadable) from exc
    if unpacked > limits.max_unpacked_bytes:
        raise TableError(
            f"The XLSX file unpacks to {human_size(unpacked)}, more than the "
            f"{human_size(limits.max_unpacked_bytes)} read from a file of at most "
            f"{human_size(limits.max_bytes)}. Save the sheet again, or as CSV."
        )
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a malformed workbook
        raise TableError(unreadable) from exc
    try:
        if not workbook.worksheets:
            raise TableError("The XLSX file has no worksheet.")
        sheet = workbook.worksheets[0]
        _check_declared_dimensions(sheet, limits)
        # Read the rows as they are, neither padded to the declared size nor cut to it.
        sheet.reset_dimensions()
    except BaseException:
        workbook.close()
        raise
    return workbook, sheet


def _check_declared_dimensions(sheet: Any, limits: TableLimits) -> None:
    """Refuse a sheet whose header (``<dimension ref="A1:XFD1048576"/>``) declares more
    rows or columns than are read; a sheet without one is bounded as it is read."""
    if sheet.max_row is None or sheet.max_column is None:
        return
    rows, columns = sheet.max_row, sheet.max_column
    if rows <= limits.max_rows + 1 and columns <= limits.max_columns:
        return
    declared = f"A1:{column_letter(columns)}{rows}"
    raise TableError(
        f"The sheet declares {rows:,} rows and {columns:,} columns ({declared}); at most "
        f"{limits.max_rows:,} rows besides the header and {limits.max_columns} columns are "
        "read. Split the file, or delete the empty rows and columns after the data and "
        "save it again."
    )


def _xlsx_rows(content: bytes, limits: TableLimits) -> Iterator[list[Any]]:
    workbook, sheet = _open_xlsx(content, limits)
    try:
        rows = sheet.iter_rows()
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except TableError:
                raise
            except Exception as exc:  # malformed XML or values inside the sheet
                raise TableError(
                    "The XLSX file cannot be read; save it again from the spreadsheet program."
                ) from exc
            yield [_xlsx_cell(cell) for cell in row]
    finally:
        workbook.close()


def _xlsx_cell(cell: Any) -> Any:
    value = cell.value
    if getattr(cell, "data_type", None) == "f":
        return Formula(cell.coordinate, str(getattr(value, "text", value)))
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

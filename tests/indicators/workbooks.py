"""Workbooks made by the tests themselves: ordinary ones, and ones a tool would not write."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    """An ordinary workbook, as a spreadsheet program saves it."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_sheet(content: bytes, change: Callable[[str], str]) -> bytes:
    """The workbook with its first sheet's XML passed through ``change``."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == SHEET:
                data = change(data.decode()).encode()
            target.writestr(member.filename, data)
    return buffer.getvalue()


def declaring(content: bytes, ref: str) -> bytes:
    """The workbook with its sheet's header declaring the dimensions ``ref``."""
    return rewrite_sheet(
        content, lambda xml: re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{ref}"', xml)
    )


def without_dimension(content: bytes) -> bytes:
    return rewrite_sheet(content, lambda xml: re.sub(r"<dimension [^>]*/>", "", xml))


def xlsx_bomb() -> bytes:
    """A few kilobytes declaring the largest sheet Excel allows: 1,048,576 x 16,384 cells."""
    return declaring(
        xlsx_bytes([["country", "indicator", "date", "value", "source"]]), "A1:XFD1048576"
    )


def with_rows_far_below(content: bytes, row: int) -> bytes:
    """The workbook with one more cell, far down the sheet (and no dimension to say so)."""

    def add(xml: str) -> str:
        cell = f'<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>x</t></is></c></row>'
        return re.sub(r"<dimension [^>]*/>", "", xml).replace("</sheetData>", cell + "</sheetData>")

    return rewrite_sheet(content, add)


def with_control_characters(content: bytes, text: str, escaped: str) -> bytes:
    """The workbook with ``text`` in a cell replaced by ``escaped`` (an XML escape such as
    ``_x0000_``, which is how a workbook writes a control character)."""
    return rewrite_sheet(content, lambda xml: xml.replace(text, escaped))

"""Reading tables within bounds (pure: no database)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from indicators.spreadsheets import (
    Formula,
    TableError,
    TableLimits,
    check_file_size,
    check_table,
    column_letter,
    read_table,
)
from tests.indicators.workbooks import (
    declaring,
    rewrite_sheet,
    with_rows_far_below,
    without_dimension,
    xlsx_bomb,
    xlsx_bytes,
)

LIMITS = TableLimits(max_bytes=1024 * 1024, max_rows=100, max_columns=10)
HEADER = ["country", "indicator", "date", "value", "source"]
# Far more than reading a small table takes, far less than reading a bomb would.
MEMORY_BOUND = 20 * 1024 * 1024


def read(name: str, content: bytes, limits: TableLimits = LIMITS) -> list[list[Any]]:
    return list(read_table(name=name, content=content, limits=limits))


def peak_memory(action: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of ``action`` (which may raise)."""
    tracemalloc.start()
    try:
        action()
    except TableError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_an_xlsx_bomb_is_refused_from_its_header_with_little_memory():
    bomb = xlsx_bomb()
    assert len(bomb) < 10_000  # tiny on disk
    with pytest.raises(TableError, match=r"declares 1,048,576 rows and 16,384 columns"):
        read("bomb.xlsx", bomb)
    with pytest.raises(TableError, match="A1:XFD1048576"):
        check_table(name="bomb.xlsx", content=bomb, limits=LIMITS)
    assert peak_memory(lambda: read("bomb.xlsx", bomb)) < MEMORY_BOUND


def test_a_sheet_declaring_too_many_columns_is_refused():
    content = declaring(xlsx_bytes([HEADER]), "A1:Z5")
    with pytest.raises(TableError, match="26 columns"):
        read("wide.xlsx", content)


def test_a_sheet_without_dimensions_is_bounded_as_it_is_read():
    content = with_rows_far_below(xlsx_bytes([HEADER]), row=1_048_576)
    with pytest.raises(TableError, match="goes on past row 101"):
        read("deep.xlsx", content)
    assert peak_memory(lambda: read("deep.xlsx", content)) < MEMORY_BOUND


def test_a_sheet_declaring_less_than_it_holds_is_read_whole():
    rows = [HEADER, *([["SDN", "8.7", "2024-01-31", 2, "r"]] * 5)]
    content = declaring(xlsx_bytes(rows), "A1:B2")
    assert len(read("small.xlsx", content)) == 6
    assert read("small.xlsx", content)[-1] == ["SDN", "8.7", "2024-01-31", 2, "r"]


def test_an_xlsx_whose_parts_unpack_beyond_the_limit_is_refused():
    padding = "<!-- " + "x" * 2_000_000 + " -->"
    content = rewrite_sheet(xlsx_bytes([HEADER]), lambda xml: xml + padding)
    assert len(content) < 50_000
    small = TableLimits(max_bytes=64 * 1024, max_rows=10)
    with pytest.raises(TableError, match="unpacks to"):
        read("padded.xlsx", content, small)


def test_a_formula_cell_comes_back_named_never_as_a_value_or_a_blank():
    rows = read(
        "f.xlsx",
        xlsx_bytes([HEADER, ["SDN", "8.7", "=TODAY()", "=1+1", "r"]]),
    )
    assert rows[1][2] == Formula("C2", "=TODAY()")
    assert rows[1][3] == Formula("D2", "=1+1")
    assert "C2 holds a formula (=TODAY()); formulas are not read: save the values" in str(
        rows[1][2]
    )


def test_xlsx_cells_keep_their_types():
    rows = read("t.xlsx", xlsx_bytes([HEADER, ["SDN", "8.10", date(2024, 1, 31), 2.0, None]]))
    assert rows[1] == ["SDN", "8.10", date(2024, 1, 31), 2]


def test_a_row_with_a_value_beyond_the_last_column_is_refused():
    content = b"a,b\n" + b"1," * 10 + b"2\n"
    with pytest.raises(TableError, match=r"Row 2 has a value in column 11 \(K\)"):
        read("wide.csv", content)
    # Empty cells after the data do not count.
    assert read("trailing.csv", b"a,b" + b"," * 500 + b"\n") == [["a", "b"]]


def test_a_csv_with_too_many_rows_is_refused_at_the_first_row_too_many():
    content = b"a\n" + b"1\n" * 101
    with pytest.raises(TableError, match="past row 101: at most 100 rows"):
        read("long.csv", content)
    assert len(read("full.csv", b"a\n" + b"1\n" * 100)) == 101


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", b"x", "neither a .csv nor a .xlsx"),
        ("a.csv", b"", "empty"),
        ("a.csv", b"x" * (1024 * 1024 + 1), r"The file is 1.0 MB; at most 1.0 MB is read"),
        ("a.csv", "é".encode("latin-1"), "not UTF-8"),
        ("a.csv", b'"a\n' + b"x" * 200_000, "cannot be read at line"),
        ("a.xlsx", b"not a workbook", "cannot be read"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(name: str, content: bytes, message: str):
    with pytest.raises(TableError, match=message):
        read(name, content)


def test_a_file_not_read_yet_is_bounded_by_its_size():
    with pytest.raises(TableError, match=r"at most 1\.0 MB"):
        check_file_size(name="big.csv", size=5 * 1024 * 1024, limits=LIMITS)
    check_file_size(name="ok.xlsx", size=1000, limits=LIMITS)


def test_a_sheet_without_dimensions_within_the_limits_is_read():
    rows = [HEADER, ["SDN", "8.7", "2024-01-31", 2, "r"]]
    assert read("nodim.xlsx", without_dimension(xlsx_bytes(rows))) == rows


@pytest.mark.parametrize(("number", "letters"), [(1, "A"), (26, "Z"), (27, "AA"), (16384, "XFD")])
def test_column_letters(number: int, letters: str):
    assert column_letter(number) == letters

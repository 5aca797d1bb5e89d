"""Bulk writes of whole frames: COPY on PostgreSQL, executemany elsewhere.

For the imports and score writes that move hundreds of thousands of rows, where building
a model instance per row would cost more than the database work itself. Callers run
these inside their own transaction; nothing here commits.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection


def insert_frame(table: str, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` (columns named as in the table).

    Dicts and lists are written as JSON, NaN and None as NULL. Returns the row count.
    """
    if frame.empty:
        return 0
    frame = _jsonable(frame)
    columns = ", ".join(connection.ops.quote_name(c) for c in frame.columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO()
            _constant_times_as_text(frame).to_csv(buffer, header=False, index=False, na_rep="\\N")
            buffer.seek(0)
            cursor.copy_expert(
                f"COPY {connection.ops.quote_name(table)} ({columns}) "
                "FROM STDIN WITH (FORMAT csv, NULL '\\N')",
                buffer,
            )
        else:
            marks = ", ".join(["%s"] * len(frame.columns))
            cursor.executemany(
                f"INSERT INTO {connection.ops.quote_name(table)} ({columns}) VALUES ({marks})",
                _rows(frame),
            )
    return len(frame)


def upsert_frame(
    table: str, frame: pd.DataFrame, *, keys: Sequence[str], update: Sequence[str]
) -> list[int]:
    """Insert the rows of ``frame``; a row whose ``keys`` exist updates ``update`` instead.

    Safe against a concurrent writer adding the same key meanwhile (ON CONFLICT).
    Returns the ids of the rows written, inserted or updated.
    """
    if frame.empty:
        return []
    frame = _jsonable(frame)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in frame.columns)
    conflict = (
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
        + " RETURNING id"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staging = f"{table}_bulk_upsert"
            cursor.execute(
                f"CREATE TEMPORARY TABLE {quote(staging)} ON COMMIT DROP AS "
                f"SELECT {columns} FROM {quote(table)} WITH NO DATA"
            )
            insert_frame(staging, frame)
            cursor.execute(
                f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {quote(staging)} "
                + conflict
            )
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"DROP TABLE {quote(staging)}")
            return ids
        marks = ", ".join(["%s"] * len(frame.columns))
        sql = f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks}) {conflict}"
        ids = []
        for row in _rows(frame):  # SQLite returns ids row by row
            cursor.execute(sql, row)
            ids.append(cursor.fetchone()[0])
        return ids


def update_from_frame(table: str, frame: pd.DataFrame, *, key: str = "id") -> int:
    """Set the other columns of ``frame`` on the rows of ``table`` whose ``key`` matches."""
    if frame.empty:
        return 0
    frame = _jsonable(frame)
    fields = [c for c in frame.columns if c != key]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staging = f"{table}_bulk_update"
            cursor.execute(
                f"CREATE TEMPORARY TABLE {quote(staging)} ON COMMIT DROP AS "
                f"SELECT {', '.join(quote(c) for c in frame.columns)} FROM {quote(table)} "
                "WITH NO DATA"
            )
            insert_frame(staging, frame)
            assignments = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in fields)
            cursor.execute(
                f"UPDATE {quote(table)} AS t SET {assignments} FROM {quote(staging)} AS s "
                f"WHERE t.{quote(key)} = s.{quote(key)}"
            )
            cursor.execute(f"DROP TABLE {quote(staging)}")
        else:
            assignments = ", ".join(f"{quote(c)} = %s" for c in fields)
            cursor.executemany(
                f"UPDATE {quote(table)} SET {assignments} WHERE {quote(key)} = %s",
                _rows(frame[[*fields, key]]),
            )
    return len(frame)


def delete_ids(table: str, ids: Sequence[int], *, chunk: int = 5000) -> int:
    """Delete the rows of ``table`` with these primary keys."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for start in range(0, len(ids), chunk):
            part = [int(i) for i in ids[start : start + chunk]]
            marks = ", ".join(["%s"] * len(part))
            cursor.execute(f"DELETE FROM {quote(table)} WHERE id IN ({marks})", part)
    return len(ids)


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_.\- ]+")


def json_objects(frame: pd.DataFrame, *, drop_zero: bool = False) -> list[str]:
    """Each row of a numeric ``frame`` as the text of a JSON object {column: value},
    values rounded to 4 decimals, NaN left out (and zeros too when ``drop_zero``).

    The same objects as building a dict per row and ``json.dumps`` would give, written
    by pandas' C encoder: about ten times faster for the 70,000 score rows of a refresh.
    Column names must be plain codes (letters, digits, ``_.- ``).
    """
    if frame.empty:
        return []
    bad = [c for c in frame.columns if not _SIMPLE_KEY.fullmatch(str(c))]
    if bad:
        raise ValueError(f"Column names must be plain codes for JSON objects: {bad}.")
    text = frame.round(4).to_json(orient="records", double_precision=4)
    left_out = r"(?:null|-?0\.0)" if drop_zero else "null"
    # Every entry after the first, then a first entry (only it can remain).
    text = re.sub(rf',"[^"]*":{left_out}(?=[,}}])', "", text)
    text = re.sub(rf'\{{"[^"]*":{left_out}(?=[,}}]),?', "{", text)
    return ["{" + row + "}" for row in text[2:-2].split("},{")]


def _constant_times_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A time column holding one value (a batch's created_at) as that one ISO text:
    formatting 100,000 equal timestamps for COPY cost most of a second."""
    constant = {
        c: frame[c].iloc[0].isoformat()
        for c in frame.columns
        if pd.api.types.is_datetime64_any_dtype(frame[c])
        and frame[c].notna().all()
        and frame[c].nunique() == 1
    }
    return frame.assign(**constant) if constant else frame


def _jsonable(frame: pd.DataFrame) -> pd.DataFrame:
    """Dict and list columns as JSON text. A column holds one kind of value, so its first
    value that is not None says which (scanning every cell of a 100,000-row upload's
    text columns cost about a second)."""
    nested = [
        c
        for c in frame.columns
        if frame[c].dtype == object and isinstance(_first_value(frame[c]), dict | list)
    ]
    if not nested:
        return frame
    return frame.assign(**{c: [json.dumps(v) for v in frame[c]] for c in nested})


def _first_value(column: pd.Series) -> Any:
    present = column.first_valid_index()
    return None if present is None else column.loc[present]


def _rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as the database driver takes them (dates and times adapted by the backend)."""
    return [tuple(_adapt(v) for v in row) for row in frame.itertuples(index=False, name=None)]


def _adapt(value: Any) -> Any:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, np.generic):
        return value.item()
    return value

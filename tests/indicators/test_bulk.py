"""Bulk-write helpers that need no database: rows as JSON object texts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from indicators.bulk import json_objects


def dicts_the_slow_way(frame: pd.DataFrame, *, drop_zero: bool) -> list[dict[str, float]]:
    return [
        {
            code: value
            for code, value in zip(frame.columns, row, strict=True)
            if value == value and not (drop_zero and value == 0)
        }
        for row in frame.round(4).to_numpy().tolist()
    ]


@pytest.mark.parametrize("drop_zero", [False, True])
def test_json_objects_leave_out_missing_values_and_zeros_when_asked(drop_zero):
    frame = pd.DataFrame(
        {
            "RF1": [np.nan, 0.0, 12.34567, np.nan, 0.00001],
            "RF2": [np.nan, 3.0, np.nan, 0.0, 100.0],
            "RF10": [np.nan, np.nan, 0.5, 7.25, 0.0],
        }
    )
    texts = json_objects(frame, drop_zero=drop_zero)
    assert [json.loads(text) for text in texts] == dicts_the_slow_way(frame, drop_zero=drop_zero)
    assert texts[0] == "{}"
    assert json.loads(texts[2]) == {"RF1": 12.3457, "RF10": 0.5}
    assert ("RF2" in json.loads(texts[3])) is not drop_zero


def test_json_objects_match_dicts_on_a_large_random_frame():
    rng = np.random.default_rng(7)
    values = rng.random((2_000, 14)) * 40
    values[rng.random(values.shape) < 0.3] = np.nan
    values[rng.random(values.shape) < 0.2] = 0.0
    frame = pd.DataFrame(values, columns=[f"RF{n}" for n in range(1, 15)])
    for drop_zero in (False, True):
        texts = json_objects(frame, drop_zero=drop_zero)
        assert [json.loads(t) for t in texts] == dicts_the_slow_way(frame, drop_zero=drop_zero)


def test_json_objects_refuse_column_names_that_would_need_escaping():
    with pytest.raises(ValueError, match="plain codes"):
        json_objects(pd.DataFrame({'a"b': [1.0]}))
    assert json_objects(pd.DataFrame({"RF1": []}, dtype=float)) == []

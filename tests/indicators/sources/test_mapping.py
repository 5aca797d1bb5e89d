"""The mapping file: its checks, and the transforms of raw values to severities."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from indicators.sources import READERS
from indicators.sources.mapping import (
    MAPPING_FILE,
    MappingError,
    apply_transform,
    load_mapping,
    parse_mapping,
    parse_transform,
)


def severities(transform: dict, raw: list) -> list:
    values, _ = apply_transform(parse_transform(transform), pd.Series(raw, dtype=object))
    return [None if pd.isna(v) else round(float(v), 4) for v in values]


def test_points_interpolate_linearly_and_stay_flat_beyond_the_ends():
    transform = {"points": [[0, 1.0], [4, 0.0]]}  # V-Dem CSO repression: 0 severe, 4 none
    assert severities(transform, [0, 1, 2, 4, 5, -1]) == [1.0, 0.75, 0.5, 0.0, 0.0, 1.0]


def test_log10p1_points_read_counts_in_orders_of_magnitude():
    transform = {"scale": "log10p1", "points": [[0, 0.0], [25, 0.4], [1000, 0.8], [10000, 1.0]]}
    assert severities(transform, [0, 25, 1000, 10000, 50000]) == [0.0, 0.4, 0.8, 1.0, 1.0]
    # 1,500 deaths: log10(1501) = 3.1764, a sixth of the way from 1,000 to 10,000 (log).
    low, high = 3.000434, 4.000043  # log10(1001), log10(10001)
    expected = 0.8 + 0.2 * (3.176381 - low) / (high - low)
    assert severities(transform, [1500]) == [round(expected, 4)]


def test_log10_points_refuse_non_positive_values():
    values, problems = apply_transform(
        parse_transform({"scale": "log10", "points": [[5, 0.0], [100, 1.0]]}),
        pd.Series([5.0, 0.0, 100.0]),
    )
    assert values.isna().tolist() == [False, True, False]
    assert problems.iloc[1].startswith("unexpected")


def test_categories_map_coded_values_skip_uninformative_ones_and_flag_others():
    transform = parse_transform({"categories": {0: 1.0, 2: 0.0}, "skip": [1]})
    values, problems = apply_transform(transform, pd.Series([0, 1, 2, 3, None]))
    assert [None if pd.isna(v) else v for v in values] == [1.0, None, 0.0, None, None]
    assert problems.tolist()[1:] == [
        "coded value says nothing about the indicator",
        "",
        "unexpected value 3 (expected one of 0, 2, 1)",
        "missing value",
    ]


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ({"points": [[0, 1.0]]}, "at least two"),
        ({"points": [[1, 0.0], [0, 1.0]]}, "must increase"),
        ({"points": [[0, 0.0], [1, 1.5]]}, "outside \\[0, 1\\]"),
        ({"scale": "log10", "points": [[0, 0.0], [1, 1.0]]}, "positive"),
        ({"scale": "cubic", "points": [[0, 0.0], [1, 1.0]]}, "unknown scale"),
        ({"categories": {0: 0.0}, "skip": [0]}, "both mapped and skipped"),
        ({"points": [[0, 0]], "categories": {0: 0}}, "either"),
    ],
)
def test_a_malformed_transform_is_refused(transform, message):
    with pytest.raises(MappingError, match=message):
        parse_transform(transform)


def test_the_shipped_mapping_is_valid_and_every_reader_and_rationale_is_there():
    mapping = load_mapping()
    assert {info.reader for info in mapping.datasets.values()} <= set(READERS)
    assert len(mapping.variables) >= 40
    assert all(item.rationale and item.label for item in mapping.variables)
    # Every data set has a licence, a citation and a download page for the methodology page.
    assert all(info.licence and info.citation and info.url for info in mapping.datasets.values())
    assert mapping.datasets["vdem"].share_alike


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["variables"][0].pop("rationale"), "lacks 'rationale'"),
        (lambda d: d["variables"][0].update(dataset="nope"), "unknown data set"),
        (lambda d: d["variables"].append(dict(d["variables"][0])), "twice"),
        (lambda d: d["datasets"]["vdem"].pop("licence"), "lacks licence"),
        (lambda d: d["universe"].update(dataset="nope"), "universe"),
        (lambda d: d["staleness_days"]["3.1"].update(days=0), "staleness_days"),
    ],
)
def test_a_malformed_mapping_is_refused_naming_the_problem(mutate, message):
    document = copy.deepcopy(yaml.safe_load(MAPPING_FILE.read_text()))
    mutate(document)
    with pytest.raises(MappingError, match=message):
        parse_mapping(document)

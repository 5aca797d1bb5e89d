"""The mapping file: which data set variable informs which indicator, and how.

``mapping.yaml`` beside this module is the one place that says it; this module reads and
checks it (``parse_mapping``) and applies its transforms (``apply_transform``). Pure: a
parsed document in, checked objects out; numbers in, severities in [0, 1] out.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

MAPPING_FILE = Path(__file__).resolve().parent / "mapping.yaml"
SCALES = ("linear", "log10", "log10p1")


class MappingError(ValueError):
    """The mapping file is malformed; the message says where."""


@dataclass(frozen=True)
class Transform:
    """Raw value to severity: piecewise-linear ``points`` or coded ``categories``."""

    points: tuple[tuple[float, float], ...] = ()
    scale: str = "linear"
    categories: Mapping[float, float] = field(default_factory=dict)
    skip: frozenset[float] = frozenset()

    def describe(self) -> str:
        """The transform in words, for the methodology page."""
        if self.categories:
            parts = [f"{_number(k)} → {v:g}" for k, v in sorted(self.categories.items())]
            if self.skip:
                parts.append(f"{', '.join(_number(s) for s in sorted(self.skip))} → no value")
            return "; ".join(parts)
        scale = {"log10": " (log scale)", "log10p1": " (log scale)"}.get(self.scale, "")
        return " · ".join(f"{_number(x)} → {y:g}" for x, y in self.points) + scale


@dataclass(frozen=True)
class VariableMapping:
    """One source variable informing one indicator."""

    dataset: str
    variable: str
    label: str
    indicator: str
    transform: Transform
    rationale: str


@dataclass(frozen=True)
class DatasetInfo:
    """Where a data set comes from, its terms, and which importer reads it."""

    key: str
    file: str
    reader: str
    name: str
    short: str
    version: str
    provider: str
    licence: str
    citation: str
    url: str
    share_alike: bool = False
    note: str = ""
    needs: tuple[str, ...] = ()

    @property
    def source_label(self) -> str:
        """How observations from this data set name their source."""
        return f"{self.short} {self.version}"


@dataclass(frozen=True)
class SourceMapping:
    """The whole mapping file, checked."""

    datasets: dict[str, DatasetInfo]
    variables: list[VariableMapping]
    universe_dataset: str
    universe_about: str
    not_used: dict[str, str]
    staleness_days: dict[str, tuple[int, str]]
    """Indicator code -> (days, reason): limits the import sets where none is set."""
    digest: str
    """SHA-256 of the parsed document: a change to the mapping changes it."""

    def variables_of(self, dataset: str) -> list[VariableMapping]:
        return [v for v in self.variables if v.dataset == dataset]

    def dataset_digest(self, dataset: str) -> str:
        """A digest of what the mapping says about one data set."""
        info = self.datasets[dataset]
        payload = {
            "dataset": info.__dict__,
            "variables": [repr(v) for v in self.variables_of(dataset)],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def published_mapping() -> SourceMapping:
    """The mapping file beside this module, read once per process (pages show it)."""
    return load_mapping()


def variable_labels(mapping: SourceMapping) -> dict[str, str]:
    """Each mapped variable -> what it measures."""
    return {item.variable: item.label for item in mapping.variables}


def load_mapping(path: Path | None = None) -> SourceMapping:
    """Read and check the mapping file (default: ``mapping.yaml`` beside this module)."""
    source = path or MAPPING_FILE
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{source.name} is not valid YAML: {exc}") from exc
    return parse_mapping(document)


DATASET_FIELDS = ("file", "reader", "name", "short", "version", "provider", "licence")


def parse_mapping(document: Any) -> SourceMapping:
    """Check a parsed mapping document; raises ``MappingError`` naming the first problem."""
    if not isinstance(document, dict):
        raise MappingError("The mapping file must be a mapping with 'datasets' and 'variables'.")
    raw_datasets = document.get("datasets")
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        raise MappingError("The mapping file needs a 'datasets' mapping.")
    datasets: dict[str, DatasetInfo] = {}
    for key, raw in raw_datasets.items():
        where = f"datasets.{key}"
        if not isinstance(raw, dict):
            raise MappingError(f"{where} must be a mapping.")
        missing = [name for name in DATASET_FIELDS if not str(raw.get(name) or "").strip()]
        if missing:
            raise MappingError(f"{where} lacks {', '.join(missing)}.")
        datasets[str(key)] = DatasetInfo(
            key=str(key),
            file=str(raw["file"]),
            reader=str(raw["reader"]),
            name=str(raw["name"]),
            short=str(raw["short"]),
            version=str(raw["version"]),
            provider=str(raw["provider"]),
            licence=str(raw["licence"]),
            citation=" ".join(str(raw.get("citation") or "").split()),
            url=str(raw.get("url") or ""),
            share_alike=bool(raw.get("share_alike", False)),
            note=" ".join(str(raw.get("note") or "").split()),
            needs=tuple(str(n) for n in raw.get("needs") or ()),
        )
    for info in datasets.values():
        for needed in info.needs:
            if needed not in datasets:
                raise MappingError(f"datasets.{info.key} needs unknown data set {needed!r}.")
    universe = document.get("universe") or {}
    if universe.get("dataset") not in datasets:
        raise MappingError("'universe.dataset' must name one of the data sets.")
    raw_variables = document.get("variables")
    if not isinstance(raw_variables, list) or not raw_variables:
        raise MappingError("The mapping file needs a 'variables' list.")
    variables = [_parse_variable(i, raw, datasets) for i, raw in enumerate(raw_variables, 1)]
    seen: set[tuple[str, str, str]] = set()
    for item in variables:
        key = (item.dataset, item.variable, item.indicator)
        if key in seen:
            raise MappingError(
                f"{item.dataset} {item.variable} maps to indicator {item.indicator} twice."
            )
        seen.add(key)
    staleness: dict[str, tuple[int, str]] = {}
    for code, raw in (document.get("staleness_days") or {}).items():
        days = raw.get("days") if isinstance(raw, dict) else None
        if not isinstance(days, int) or days <= 0 or not str(raw.get("reason") or "").strip():
            raise MappingError(f"staleness_days.{code} needs whole 'days' > 0 and a 'reason'.")
        staleness[str(code)] = (days, " ".join(str(raw["reason"]).split()))
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    return SourceMapping(
        datasets=datasets,
        variables=variables,
        universe_dataset=str(universe["dataset"]),
        universe_about=" ".join(str(universe.get("about") or "").split()),
        not_used={
            str(k): " ".join(str(v).split()) for k, v in (document.get("not_used") or {}).items()
        },
        staleness_days=staleness,
        digest=digest,
    )


def _parse_variable(number: int, raw: Any, datasets: Mapping[str, DatasetInfo]) -> VariableMapping:
    where = f"variables[{number}]"
    if not isinstance(raw, dict):
        raise MappingError(f"{where} must be a mapping.")
    for name in ("dataset", "variable", "label", "indicator", "rationale"):
        if not str(raw.get(name) or "").strip():
            raise MappingError(f"{where} lacks '{name}'.")
    if raw["dataset"] not in datasets:
        raise MappingError(f"{where}: unknown data set {raw['dataset']!r}.")
    where = f"{where} ({raw['dataset']} {raw['variable']} → {raw['indicator']})"
    return VariableMapping(
        dataset=str(raw["dataset"]),
        variable=str(raw["variable"]),
        label=" ".join(str(raw["label"]).split()),
        indicator=str(raw["indicator"]),
        transform=parse_transform(raw.get("transform"), where=where),
        rationale=" ".join(str(raw["rationale"]).split()),
    )


def parse_transform(raw: Any, *, where: str = "transform") -> Transform:
    """A checked ``Transform`` from its mapping-file form."""
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: 'transform' must be a mapping.")
    if ("points" in raw) == ("categories" in raw):
        raise MappingError(f"{where}: a transform has either 'points' or 'categories'.")
    if "categories" in raw:
        categories = raw["categories"]
        if not isinstance(categories, dict) or not categories:
            raise MappingError(f"{where}: 'categories' must map raw values to severities.")
        parsed = {_finite(k, where): _severity(v, where) for k, v in categories.items()}
        skip = frozenset(_finite(s, where) for s in raw.get("skip") or ())
        if skip & set(parsed):
            raise MappingError(f"{where}: a category is both mapped and skipped.")
        return Transform(categories=parsed, skip=skip)
    scale = str(raw.get("scale", "linear"))
    if scale not in SCALES:
        raise MappingError(f"{where}: unknown scale {scale!r} (one of {', '.join(SCALES)}).")
    points_raw = raw["points"]
    if not isinstance(points_raw, list) or len(points_raw) < 2:
        raise MappingError(f"{where}: 'points' needs at least two [raw, severity] pairs.")
    points: list[tuple[float, float]] = []
    for pair in points_raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise MappingError(f"{where}: each point is a [raw, severity] pair.")
        points.append((_finite(pair[0], where), _severity(pair[1], where)))
    xs = [x for x, _ in points]
    if any(b <= a for a, b in itertools.pairwise(xs)):
        raise MappingError(f"{where}: the raw values of 'points' must increase.")
    if scale == "log10" and xs[0] <= 0:
        raise MappingError(f"{where}: a log10 scale needs positive raw values.")
    if scale == "log10p1" and xs[0] < 0:
        raise MappingError(f"{where}: a log10p1 scale needs raw values of at least 0.")
    return Transform(points=tuple(points), scale=scale)


def apply_transform(transform: Transform, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(severity, problem) for each raw value.

    Severity is in [0, 1], NaN where the row gives no observation; ``problem`` says why
    ("missing value", "value 1 says nothing about the indicator", or, for an error, a
    message starting with "unexpected"), and is empty where a severity was given.
    """
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    problem = pd.Series("", index=raw.index, dtype=object)
    problem[values.isna()] = "missing value"
    if transform.categories:
        keys = np.array(sorted(transform.categories), dtype=float)
        mapped = values.map(lambda v: transform.categories.get(v, math.nan)).astype(float)
        skipped = values.isin(list(transform.skip))
        unknown = values.notna() & mapped.isna() & ~skipped
        problem[skipped] = "coded value says nothing about the indicator"
        problem[unknown] = [
            f"unexpected value {_number(v)} (expected one of "
            f"{', '.join(_number(k) for k in [*keys, *sorted(transform.skip)])})"
            for v in values[unknown]
        ]
        return mapped, problem
    xs = np.array([x for x, _ in transform.points], dtype=float)
    ys = np.array([y for _, y in transform.points], dtype=float)
    x = values.to_numpy(dtype=float)
    if transform.scale == "log10":
        bad = ~np.isnan(x) & (x <= 0)
        problem[bad] = "unexpected value: not positive on a log scale"
        with np.errstate(divide="ignore", invalid="ignore"):
            x, xs = np.where(bad, np.nan, np.log10(x)), np.log10(xs)
    elif transform.scale == "log10p1":
        bad = ~np.isnan(x) & (x < 0)
        problem[bad] = "unexpected value: a negative count"
        with np.errstate(invalid="ignore"):
            x, xs = np.where(bad, np.nan, np.log10(1 + x)), np.log10(1 + xs)
    severity = np.interp(x, xs, ys)
    severity[np.isnan(x)] = np.nan
    return pd.Series(severity, index=raw.index), problem


def _finite(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise MappingError(f"{where}: {value!r} is not a number.") from exc
    if not math.isfinite(number):
        raise MappingError(f"{where}: {value!r} is not a finite number.")
    return number


def _severity(value: Any, where: str) -> float:
    number = _finite(value, where)
    if not 0 <= number <= 1:
        raise MappingError(f"{where}: severity {value!r} is outside [0, 1].")
    return number


def _number(value: float) -> str:
    return f"{value:g}"


def indicator_codes(mapping: SourceMapping) -> Sequence[str]:
    """Every indicator code the mapping names, in file order, once each."""
    return list(dict.fromkeys(v.indicator for v in mapping.variables))

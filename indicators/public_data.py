"""Importing the public data sets onto the framework: read in place, map, write all or nothing.

``import_public_data`` reads the files named by the mapping file from the data folder
(``settings.PUBLIC_DATA_DIR`` unless told otherwise), turns each data set's variables
into observations of the indicators they inform, and writes every changed data set in
one transaction, then queues a full recompute. Nothing is copied into the repository.

Idempotent: each data set carries a fingerprint of its file, the files it depends on,
its part of the mapping and the importers' code; an unchanged data set is not read
again, and a changed one is written as a difference (new, changed and vanished
observations), so importing twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from countries.models import Country, MassKillingEpisode
from indicators import bulk, services
from indicators.models import DataSet, Indicator, Observation
from indicators.sources import COUNTRY_CODES_FILE, READERS, ReadContext, episodes, iccpr
from indicators.sources.base import (
    Panel,
    SourceFormatError,
    SourceTable,
    one_row_per_country_year,
)
from indicators.sources.codes import CountryCodes
from indicators.sources.mapping import DatasetInfo, SourceMapping, apply_transform, load_mapping

Progress = Callable[[str, int, int], None]
SOURCES_DIR = Path(__file__).resolve().parent / "sources"


class PublicDataError(ValueError):
    """The data folder, a file or the mapping cannot be used; nothing was written.

    ``problems`` lists every problem found, each naming the file or setting concerned.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class DatasetResult:
    """What one data set's import did."""

    key: str
    name: str
    status: str = "unchanged"
    """"imported" or "unchanged" (fingerprint as at the last import: not read again)."""
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    unmapped: list[str] = field(default_factory=list)
    unmapped_rows: int = 0
    episodes_created: int = 0
    episodes_updated: int = 0

    def as_report(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rows_read": self.rows_read,
            "observations": {
                "created": self.created,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "deleted": self.deleted,
            },
            "skipped": dict(self.skipped),
            "unmapped": self.unmapped,
            "unmapped_rows": self.unmapped_rows,
        }


@dataclass
class ImportResult:
    data_dir: Path
    datasets: list[DatasetResult]

    @property
    def changed(self) -> bool:
        return any(d.created or d.updated or d.deleted for d in self.datasets) or any(
            d.episodes_created or d.episodes_updated for d in self.datasets
        )


def default_data_dir() -> Path:
    return Path(settings.PUBLIC_DATA_DIR)


def import_public_data(
    *,
    data_dir: Path | None = None,
    only: Collection[str] | None = None,
    force: bool = False,
    today: date | None = None,
    progress: Progress | None = None,
    mapping: SourceMapping | None = None,
) -> ImportResult:
    """Import the data sets of the mapping file (or ``only`` these keys) from ``data_dir``.

    Raises ``PublicDataError`` (and writes nothing) when the folder or a file is
    missing, a file is malformed, a code is unknown, or the mapping names an indicator
    the framework lacks. ``force`` re-reads data sets whose fingerprint is unchanged.
    Once the transaction commits, a full recompute of the scores is queued if anything
    changed.
    """
    today = today or timezone.localdate()
    last_year = today.year - 1  # the last calendar year that is over
    mapping = mapping or load_mapping()
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    selected = _selected(mapping, only)
    _check_files(folder, mapping, selected)
    indicator_ids = _indicator_ids(mapping)
    report = progress or _no_progress

    fingerprints = {key: _fingerprint(folder, mapping, key, last_year) for key in selected}
    known = {d.key: d for d in DataSet.objects.filter(key__in=selected)}
    to_read = [
        key
        for key in selected
        if force or key not in known or known[key].fingerprint != fingerprints[key]
    ]
    results = {key: DatasetResult(key=key, name=mapping.datasets[key].name) for key in selected}
    if not to_read:
        return ImportResult(data_dir=folder, datasets=list(results.values()))

    steps = len(to_read) + 3
    report("country codes and the country-year panel", 0, steps)
    codes = _country_codes(folder)
    universe = mapping.datasets[mapping.universe_dataset]
    panel_table = _read(iccpr.read, folder / universe.file, codes=codes)
    panel = iccpr.panel(panel_table, last_year=last_year)

    tables: dict[str, SourceTable] = {}
    frames: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for done, key in enumerate(to_read, start=1):
        info = mapping.datasets[key]
        report(f"reading {info.name}", done, steps)
        for needed in info.needs:
            if needed not in tables:
                tables[needed] = _read_table(
                    folder, mapping.datasets[needed], codes, panel, last_year, tables
                )
        table = tables.get(key) or _read_table(folder, info, codes, panel, last_year, tables)
        tables[key] = table
        result = results[key]
        result.status = "imported"
        result.rows_read = table.rows_read
        result.skipped.update(table.skipped)
        result.unmapped = [str(u) for u in table.unmapped]
        result.unmapped_rows = sum(u.rows for u in table.unmapped)
        frame, dataset_problems = _observations(mapping, info, table, indicator_ids, today, result)
        frames[key] = frame
        problems.extend(dataset_problems)
    if problems:
        shown = problems[:20]
        if len(problems) > 20:
            shown.append(f"... and {len(problems) - 20} more")
        raise PublicDataError(shown)

    episode_file = None
    if "episodes" in to_read:
        episode_file = _read(
            episodes.read_episodes, folder / mapping.datasets["episodes"].file, codes=codes
        )

    report("writing observations", steps - 1, steps)
    with transaction.atomic():
        for key in to_read:
            info = mapping.datasets[key]
            dataset = _save_dataset(info, fingerprints[key], results[key])
            _write_observations(dataset, frames[key], results[key])
            dataset.report = results[key].as_report()
            dataset.save(update_fields=["report"])
        if episode_file is not None:
            _write_episodes(episode_file, mapping.datasets["episodes"], results["episodes"])
        result = ImportResult(data_dir=folder, datasets=list(results.values()))
        if result.changed:
            services.schedule_full_recompute(reason="public data imported")
    report("done", steps, steps)
    return result


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def _selected(mapping: SourceMapping, only: Collection[str] | None) -> list[str]:
    if not only:
        return list(mapping.datasets)
    unknown = sorted(set(only) - set(mapping.datasets))
    if unknown:
        raise PublicDataError(
            [
                f"Unknown data set(s): {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(mapping.datasets))}."
            ]
        )
    return [key for key in mapping.datasets if key in set(only)]


def _check_files(folder: Path, mapping: SourceMapping, selected: list[str]) -> None:
    if not folder.is_dir():
        raise PublicDataError(
            [
                f"The public data folder {folder} does not exist. Set PUBLIC_DATA_DIR (or pass "
                "--data-dir) to the folder holding the data sets; the data folder's README and "
                "the methodology page say where each comes from."
            ]
        )
    needed: dict[str, DatasetInfo | None] = {COUNTRY_CODES_FILE: None}
    universe = mapping.datasets[mapping.universe_dataset]
    needed[universe.file] = universe
    for key in selected:
        info = mapping.datasets[key]
        needed[info.file] = info
        for other in info.needs:
            needed[mapping.datasets[other].file] = mapping.datasets[other]
    missing = []
    for name, info in needed.items():
        if (folder / name).is_file():
            continue
        if info is None:
            missing.append(
                f"{folder / name} is missing: the country-code table that comes with the data "
                "folder (COW and GW codes paired with ISO 3166 codes)."
            )
        else:
            missing.append(
                f"{folder / name} is missing: {info.name} {info.version} from {info.provider}; "
                f"download it from {info.url}."
            )
    if missing:
        raise PublicDataError(missing)


def _indicator_ids(mapping: SourceMapping) -> dict[str, int]:
    ids = dict(Indicator.objects.values_list("code", "id"))
    named = {v.indicator for v in mapping.variables} | set(mapping.staleness_days)
    missing = sorted(named - set(ids), key=_code_order)
    if missing:
        raise PublicDataError(
            [
                f"The mapping file names indicator(s) the framework lacks: {', '.join(missing)}. "
                "Run `manage.py load_framework` first."
            ]
        )
    return ids


def _code_order(code: str) -> tuple[int, ...]:
    return tuple(int(part) for part in code.split(".") if part.isdigit())


def _fingerprint(folder: Path, mapping: SourceMapping, key: str, last_year: int) -> str:
    """What an import of ``key`` depends on: its file and those it needs, the country
    codes and panel, its part of the mapping, the importers' code and the last year."""
    info = mapping.datasets[key]
    digest = hashlib.sha256()
    files = [info.file, *(mapping.datasets[n].file for n in info.needs)]
    files += [mapping.datasets[mapping.universe_dataset].file, COUNTRY_CODES_FILE]
    for name in files:
        digest.update(name.encode())
        digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
    digest.update(mapping.dataset_digest(key).encode())
    for module in sorted(SOURCES_DIR.glob("*.py")):
        digest.update(module.read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(str(last_year).encode())
    return digest.hexdigest()


def _country_codes(folder: Path) -> CountryCodes:
    path = folder / COUNTRY_CODES_FILE
    try:
        table = pd.read_csv(path, dtype={"iso3": str, "name": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PublicDataError([f"{path} is not a readable CSV file: {exc}"]) from exc
    missing = [c for c in ("ccode", "gwcode", "iso3", "name") if c not in table.columns]
    if missing:
        raise PublicDataError([f"{path} lacks the column(s) {', '.join(missing)}."])
    return CountryCodes(table, ours=Country.objects.values_list("iso3", flat=True))


def _read(reader: Callable[..., Any], path: Path, **kwargs: Any) -> Any:
    try:
        return reader(path, **kwargs)
    except SourceFormatError as exc:
        raise PublicDataError([str(exc)]) from exc


def _read_table(
    folder: Path,
    info: DatasetInfo,
    codes: CountryCodes,
    panel: Panel,
    last_year: int,
    tables: Mapping[str, SourceTable],
) -> SourceTable:
    context = ReadContext(
        path=folder / info.file, codes=codes, panel=panel, last_year=last_year, needed=tables
    )
    try:
        table = READERS[info.reader](context)
    except SourceFormatError as exc:
        raise PublicDataError([str(exc)]) from exc
    return one_row_per_country_year(panel.restrict(table))


def _observations(
    mapping: SourceMapping,
    info: DatasetInfo,
    table: SourceTable,
    indicator_ids: Mapping[str, int],
    today: date,
    result: DatasetResult,
) -> tuple[pd.DataFrame, list[str]]:
    """Observations of every mapped variable of one data set, and any errors."""
    values = table.values
    problems: list[str] = []
    years = values["year"].astype(int)
    over = (years > today.year) | ((years == today.year) & (today < date(today.year, 12, 31)))
    if over.any():
        result.skipped["years not over yet"] += int(over.sum())
    # Observations are dated 31 December: the year's last day must not be before the
    # earliest date accepted on every entry path.
    early = years < settings.OBSERVATIONS_FROM.year
    if early.any():
        result.skipped[f"years before {settings.OBSERVATIONS_FROM.year}"] += int(early.sum())
    values = values[~over & ~early]
    parts = []
    for item in mapping.variables_of(info.key):
        if item.variable not in values.columns:
            produced = ", ".join(c for c in values.columns if c not in ("iso3", "year"))
            problems.append(
                f"The mapping names {info.key} variable {item.variable!r}, which its importer "
                f"does not produce (it produces {produced})."
            )
            continue
        severity, problem = apply_transform(item.transform, values[item.variable])
        unexpected = problem.str.startswith("unexpected")
        for (iso3, year), text in zip(
            values.loc[unexpected, ["iso3", "year"]].itertuples(index=False),
            problem[unexpected],
            strict=True,
        ):
            problems.append(f"{info.file}, {item.variable} for {iso3} in {year}: {text}.")
        for reason, count in problem[~unexpected & (problem != "")].value_counts().items():
            result.skipped[f"{item.variable} → {item.indicator}: {reason}"] += int(count)
        keep = severity.notna().to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "iso3": values["iso3"].to_numpy()[keep],
                    "indicator_id": indicator_ids[item.indicator],
                    "observed_on": [date(int(y), 12, 31) for y in values["year"].to_numpy()[keep]],
                    "value": np.round(severity.to_numpy()[keep], 6),
                    "raw_value": values[item.variable].to_numpy(dtype=float)[keep],
                    "variable": item.variable,
                    "source": f"{info.source_label}: {item.variable}",
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return frame, problems


def _save_dataset(info: DatasetInfo, fingerprint: str, result: DatasetResult) -> DataSet:
    dataset, _ = DataSet.objects.update_or_create(
        key=info.key,
        defaults={
            "name": info.name,
            "short": info.short,
            "version": info.version,
            "provider": info.provider,
            "licence": info.licence,
            "share_alike": info.share_alike,
            "citation": info.citation,
            "url": info.url,
            "file_name": info.file,
            "fingerprint": fingerprint,
            "imported_at": timezone.now(),
        },
    )
    return dataset


KEY = ["country_id", "indicator_id", "observed_on", "source"]


def _write_observations(dataset: DataSet, frame: pd.DataFrame, result: DatasetResult) -> None:
    """Make the data set's observations those of ``frame``: insert, update, delete."""
    existing = pd.DataFrame.from_records(
        list(
            Observation.objects.filter(dataset=dataset).values_list(
                "id", *KEY, "value", "raw_value"
            )
        ),
        columns=["id", *KEY, "value", "raw_value"],
    ).astype({"value": float, "raw_value": float})
    country_ids = dict(Country.objects.values_list("iso3", "id"))
    if frame.empty:
        wanted = pd.DataFrame(columns=[*KEY, "value", "raw_value", "variable"])
    else:
        wanted = frame.assign(country_id=frame["iso3"].map(country_ids)).drop(columns="iso3")
    merged = wanted.merge(existing, on=KEY, how="outer", suffixes=("", "_old"), indicator=True)
    fresh = merged[merged["_merge"] == "left_only"]
    gone = merged[merged["_merge"] == "right_only"]
    both = merged[merged["_merge"] == "both"]
    differs = ~np.isclose(
        both["value"].astype(float), both["value_old"].astype(float), rtol=0, atol=1e-9
    ) | ~np.isclose(
        both["raw_value"].astype(float),
        both["raw_value_old"].astype(float),
        rtol=0,
        atol=0,
        equal_nan=True,
    )
    changed = both[differs]
    now = timezone.now()
    table = Observation._meta.db_table
    bulk.insert_frame(
        table,
        pd.DataFrame(
            {
                "country_id": fresh["country_id"].astype(int),
                "indicator_id": fresh["indicator_id"].astype(int),
                "observed_on": fresh["observed_on"],
                "value": fresh["value"].astype(float),
                "confidence": Observation.Confidence.MEDIUM,
                "source": fresh["source"],
                "source_url": dataset.url,
                "note": "",
                "recorded_by_id": None,
                "created_at": now,
                "updated_at": now,
                "dataset_id": dataset.pk,
                "variable": fresh["variable"],
                "raw_value": fresh["raw_value"].astype(float),
                "overrides_data": False,
            }
        ),
    )
    bulk.update_from_frame(
        table,
        pd.DataFrame(
            {
                "id": changed["id"].astype(int),
                "value": changed["value"].astype(float),
                "raw_value": changed["raw_value"].astype(float),
                "updated_at": now,
            }
        ),
    )
    bulk.delete_ids(table, gone["id"].astype(int).tolist())
    result.created, result.updated, result.deleted = len(fresh), len(changed), len(gone)
    result.unchanged = len(both) - len(changed)


def _write_episodes(found: episodes.EpisodeFile, info: DatasetInfo, result: DatasetResult) -> None:
    """Upsert the file's episodes by event code; imported episodes no longer listed go."""
    countries = dict(Country.objects.values_list("iso3", "id"))
    existing = {
        e.event_code: e for e in MassKillingEpisode.objects.filter(event_code__isnull=False)
    }
    source = f"{info.name}, {info.short} {info.version}"
    created = updated = 0
    for episode in found.episodes:
        fields = {
            "country_id": countries[episode.iso3],
            "start_year": episode.start_year,
            "end_year": episode.end_year,
            "state_led": episode.state_led,
            "ethnic_groups_targeted": episode.ethnic_groups_targeted,
            "perpetrator": episode.name.split(" vs. ")[0].strip()[:200]
            if " vs. " in episode.name
            else "",
            "description": episode.name
            + (" (still under way when the list ends)" if episode.ongoing_at_end else ""),
            "source": source[:200],
            "source_url": info.url,
            "note": episode.location_note,
        }
        current = existing.pop(episode.code, None)
        if current is None:
            MassKillingEpisode.objects.create(event_code=episode.code, **fields)
            created += 1
        elif any(getattr(current, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(current, name, value)
            current.save()
            updated += 1
    # Episodes imported from an earlier edition that the newer file no longer lists.
    gone = [e.pk for e in existing.values()]
    MassKillingEpisode.objects.filter(pk__in=gone).delete()
    result.episodes_created, result.episodes_updated = created, updated + len(gone)

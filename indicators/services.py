"""Writes: loading the framework, recording observations, versioning weights, refreshing scores."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework.authtoken.models import Token

from countries.models import Country
from indicators import bulk, scoring, selectors, situations
from indicators import methodology as methodology_service
from indicators.models import (
    RISK_SCORE_NUMBER_FIELDS,
    CrimeGroup,
    Indicator,
    MethodologyVersion,
    Observation,
    RecomputeRequest,
    RiskFactor,
    RiskScore,
    ScoringRun,
)

logger = logging.getLogger(__name__)

# --- Framework -------------------------------------------------------------------------


class FrameworkError(ValueError):
    """The framework file is malformed; the message says where."""


@dataclass(frozen=True)
class FrameworkChange:
    """One field of an existing factor or indicator that a reload changed."""

    code: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FrameworkLoadResult:
    factors_created: int
    factors_updated: int
    indicators_created: int
    indicators_updated: int
    changes: list[FrameworkChange] = field(default_factory=list)
    """What changed in factors and indicators that existed before, field by field."""


def load_framework(*, path: Path | None = None) -> FrameworkLoadResult:
    """Create or update risk factors and indicators from the framework YAML file.

    Idempotent: codes are the keys, so reloading never duplicates. Texts, groups and
    verification status follow the file; weights and staleness limits belong to
    methodology versions, which a reload never touches. The result lists every field a
    reload changed. Raises ``FrameworkError`` (and writes nothing) if the file is
    malformed.
    """
    document = yaml.safe_load((path or settings.FRAMEWORK_FILE).read_text(encoding="utf-8"))
    factors = _parse_framework(document)
    counts = dict.fromkeys(("fc", "fu", "ic", "iu"), 0)
    changes: list[FrameworkChange] = []
    with transaction.atomic():
        existing_factors = {f.code: f for f in RiskFactor.objects.all()}
        existing_indicators = {i.code: i for i in Indicator.objects.all()}
        for spec in factors:
            fields = {k: spec[k] for k in ("number", "title", "group", "summary", "note")}
            factor = existing_factors.get(spec["code"])
            if factor is None:
                factor = RiskFactor.objects.create(code=spec["code"], **fields)
                counts["fc"] += 1
            elif found := _assign_changed(factor, fields):
                factor.save()
                counts["fu"] += 1
                changes.extend(FrameworkChange(spec["code"], *change) for change in found)
            for ind in spec["indicators"]:
                fields = {**ind, "factor": factor}
                code = fields.pop("code")
                indicator = existing_indicators.get(code)
                if indicator is None:
                    Indicator.objects.create(code=code, **fields)
                    counts["ic"] += 1
                elif found := _assign_changed(indicator, fields):
                    indicator.save()
                    counts["iu"] += 1
                    changes.extend(FrameworkChange(code, *change) for change in found)
    return FrameworkLoadResult(
        counts["fc"], counts["fu"], counts["ic"], counts["iu"], changes=changes
    )


def _assign_changed(instance: Any, fields: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Set the fields that differ; returns (field, old, new) for each."""
    changed = []
    for name, value in fields.items():
        old = getattr(instance, name)
        if old != value:
            setattr(instance, name, value)
            changed.append((name, getattr(old, "code", old), getattr(value, "code", value)))
    return changed


def _parse_framework(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("risk_factors"), list):
        raise FrameworkError("The framework file needs a 'risk_factors' list.")
    status_by_code, notes = _verification_by_code(document.get("verification") or {})
    groups = set(CrimeGroup.values)
    parsed: list[dict[str, Any]] = []
    seen_codes: set[str] = set()
    for position, raw in enumerate(document["risk_factors"], start=1):
        where = f"risk_factors[{position}]"
        try:
            code, number, group = str(raw["code"]), int(raw["number"]), str(raw["group"])
            title = str(raw["title"]).strip()
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameworkError(f"{where}: missing or malformed field {exc}.") from exc
        if group not in groups:
            raise FrameworkError(f"{where} ({code}): unknown group {group!r}.")
        indicators = []
        for raw_indicator in raw.get("indicators") or []:
            ind_code = str(raw_indicator.get("code", "")).strip()
            label = str(raw_indicator.get("label", "")).strip()
            if not re.fullmatch(rf"{number}\.\d+", ind_code) or not label:
                raise FrameworkError(
                    f"{where} ({code}): indicator {ind_code!r} needs a code '{number}.N' "
                    "and a label."
                )
            if ind_code in seen_codes:
                raise FrameworkError(f"{where} ({code}): duplicate indicator code {ind_code}.")
            seen_codes.add(ind_code)
            indicators.append(
                {
                    "code": ind_code,
                    "label": label,
                    "position": int(ind_code.split(".")[1]),
                    "verification": status_by_code.get(ind_code, Indicator.Verification.RECALLED),
                }
            )
        parsed.append(
            {
                "code": code,
                "number": number,
                "title": title,
                "group": group,
                "summary": str(raw.get("summary", "")).strip(),
                "note": notes.get(code, ""),
                "indicators": indicators,
            }
        )
    if len({f["code"] for f in parsed}) != len(parsed):
        raise FrameworkError("Risk factor codes must be unique.")
    return parsed


def _verification_by_code(
    verification: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, str]]:
    """Expand the file's ``by_factor`` code ranges ("7.1-7.10") into a status per code."""
    statuses: dict[str, str] = {}
    notes: dict[str, str] = {}
    keys = {
        "verified_codes": Indicator.Verification.VERIFIED,
        "partly_verified_codes": Indicator.Verification.PARTLY_VERIFIED,
        "recalled_codes": Indicator.Verification.RECALLED,
    }
    for factor_code, entry in (verification.get("by_factor") or {}).items():
        for key, status in keys.items():
            for code_range in entry.get(key) or []:
                for code in _expand_code_range(str(code_range)):
                    statuses[code] = status
        summary = f"Indicators: {entry.get('indicators', 'unknown')}."
        notes[str(factor_code)] = " ".join(filter(None, [summary, entry.get("note", "")])).strip()
    return statuses, notes


def _expand_code_range(code_range: str) -> list[str]:
    match = re.fullmatch(r"(\d+)\.(\d+)(?:-\1\.(\d+))?", code_range.strip())
    if not match:
        raise FrameworkError(f"Cannot read the indicator code range {code_range!r}.")
    factor, first, last = match.group(1), int(match.group(2)), int(match.group(3) or match[2])
    return [f"{factor}.{n}" for n in range(first, last + 1)]


# --- Observations ----------------------------------------------------------------------

Scale = Literal["unit", "analyst"]
OBSERVATION_KEY = ("country_id", "indicator_id", "observed_on", "source")
CONFIDENCES = frozenset(Observation.Confidence.values)
ANALYST_SCALE_MAX = 3
NOTE_MAX_LENGTH = 10_000
_url_validator = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class RowError:
    """One problem in one row of a batch; ``row`` counts from 1."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


class ObservationBatchError(ValueError):
    """A batch had bad rows; nothing was written. ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} problem(s), nothing recorded: {shown}{more}")


@dataclass(frozen=True)
class RecordResult:
    created: int
    updated: int
    unchanged: int
    countries: frozenset[str] = field(default_factory=frozenset)
    """ISO3 codes of the countries whose observations changed."""


@dataclass(frozen=True)
class _CleanRow:
    country: Country
    indicator_id: int
    observed_on: date
    value: float
    confidence: str
    source: str
    source_url: str
    note: str
    overrides_data: bool = False

    @property
    def key(self) -> tuple[int, int, date, str]:
        return (self.country.pk, self.indicator_id, self.observed_on, self.source)


def record_observations(
    *,
    rows: Iterable[Mapping[str, Any]],
    recorded_by: AbstractBaseUser | None = None,
    scale: Scale = "unit",
    today: date | None = None,
    dry_run: bool = False,
    recompute: bool = True,
    recompute_reason: str = "observations recorded",
    evaluate_alerts: bool = True,
) -> RecordResult:
    """Validate a batch of observations and upsert it, all or nothing.

    Each row maps: country (ISO3), indicator (code), observed_on (date or YYYY-MM-DD),
    value (in [0, 1], or 0-3 when ``scale="analyst"``), source; optionally confidence
    (low/medium/high, default medium), source_url, note and overrides_data (true: the
    scores use this assessment instead of the data-derived values of that date). Rows are keyed on
    (country, indicator, observed_on, source): a known key updates its row, so recording
    the same batch twice changes nothing.

    Raises ``ObservationBatchError`` listing every bad row and field; then nothing is
    written. Dates are YYYY-MM-DD, from ``settings.OBSERVATIONS_FROM`` to ``today``; text
    holds no control character (a note may hold line breaks and tabs). ``dry_run``
    validates and counts without writing. A successful write requests a recompute of the
    changed countries in the same transaction (``recompute``, as ``recompute_reason``),
    and queues the tasks in ``settings.OBSERVATIONS_RECORDED_TASKS`` once it commits (the
    red-flag alert rule; ``evaluate_alerts=False`` for bulk imports of history).
    """
    today = today or timezone.localdate()
    rows = list(rows)
    countries = {c.iso3: c for c in Country.objects.all()}
    indicators = dict(Indicator.objects.values_list("code", "id"))
    errors: list[RowError] = []
    clean: list[_CleanRow] = []
    seen: dict[tuple[int, int, date, str], int] = {}
    for number, row in enumerate(rows, start=1):
        row_errors, cleaned = _clean_row(number, row, countries, indicators, scale, today)
        errors.extend(row_errors)
        if cleaned is None:
            continue
        first = seen.setdefault(cleaned.key, number)
        if first != number:
            errors.append(
                RowError(
                    number,
                    "source",
                    f"repeats row {first} (same country, indicator, date and source)",
                )
            )
        clean.append(cleaned)
    if not rows:
        errors.append(RowError(0, "rows", "the batch is empty"))
    if errors:
        raise ObservationBatchError(errors)

    existing = _existing_observations(clean)
    fresh = [r for r in clean if r.key not in existing]
    changed = [r for r in clean if r.key in existing and existing[r.key] != _comparable(r)]
    result = RecordResult(
        created=len(fresh),
        updated=len(changed),
        unchanged=len(clean) - len(fresh) - len(changed),
        countries=frozenset(r.country.iso3 for r in (*fresh, *changed)),
    )
    if dry_run or not (fresh or changed):
        return result
    user = recorded_by if recorded_by is not None and recorded_by.is_authenticated else None
    now = timezone.now()
    written = [*fresh, *changed]
    frame = pd.DataFrame(
        {
            "country_id": [r.country.pk for r in written],
            "indicator_id": [r.indicator_id for r in written],
            "observed_on": [r.observed_on for r in written],
            "value": [r.value for r in written],
            "confidence": [r.confidence for r in written],
            "source": [r.source for r in written],
            "source_url": [r.source_url for r in written],
            "note": [r.note for r in written],
            "overrides_data": [r.overrides_data for r in written],
            "recorded_by_id": user.pk if user is not None else None,
            "variable": "",
            "created_at": now,
            "updated_at": now,
        }
    )
    with transaction.atomic():
        ids = bulk.upsert_frame(
            Observation._meta.db_table,
            frame,
            keys=OBSERVATION_KEY,
            update=[
                "value",
                "confidence",
                "source_url",
                "note",
                "overrides_data",
                "recorded_by_id",
                "updated_at",
            ],
        )
        if recompute:
            request_recompute(countries=result.countries, reason=recompute_reason)
        if evaluate_alerts:
            transaction.on_commit(
                partial(_queue_hook_tasks, settings.OBSERVATIONS_RECORDED_TASKS, sorted(ids)),
                robust=True,
            )
    return result


def delete_observations(*, ids: Collection[int]) -> frozenset[str]:
    """Delete the observations with these ids; returns the ISO3 codes of their countries.

    Each country's scores are recomputed once the transaction commits, as after
    ``record_observations``, so no score stays backed by a deleted observation.
    """
    with transaction.atomic():
        doomed = Observation.objects.filter(pk__in=list(ids))
        countries = frozenset(doomed.values_list("country__iso3", flat=True).distinct())
        doomed.delete()
        if countries:
            request_recompute(countries=countries, reason="observations deleted")
    return countries


# --- Recompute requests ----------------------------------------------------------------
# The one way a recompute is queued: a row written in the caller's transaction, drained
# once it commits (a task) and by the beat sweep, so a broker outage only delays it.

RECOMPUTE_LEASE = timedelta(minutes=30)


def request_recompute(*, countries: Collection[str] | None, reason: str) -> None:
    """Record that the scores of ``countries`` (ISO3; None: every country) must be
    recomputed, in the current transaction; a drain is queued once it commits."""
    now = timezone.now()
    if countries is None:
        RecomputeRequest.objects.create(country=None, reason=reason, requested_at=now)
    else:
        RecomputeRequest.objects.bulk_create(
            RecomputeRequest(country_id=country_id, reason=reason, requested_at=now)
            for country_id in Country.objects.filter(iso3__in=list(countries)).values_list(
                "id", flat=True
            )
        )
    transaction.on_commit(_queue_recompute_drain, robust=True)


def schedule_full_recompute(*, reason: str = "weights changed") -> None:
    """Request a recompute of every score (see ``request_recompute``)."""
    request_recompute(countries=None, reason=reason)


def drain_recompute_requests(*, now: datetime | None = None) -> ScoringRun | None:
    """Claim every pending recompute request, recompute once for all, mark them done.

    One full refresh if any request is for every country, else one refresh of the
    requested countries. Requests another worker holds (its lease not expired) are left
    to it. On failure the claimed requests are released for the next drain, and the
    error is raised. Returns the run, or None when nothing was pending.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    available = Q(done_at__isnull=True) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    pending = list(RecomputeRequest.objects.filter(available).values_list("id", flat=True))
    if not pending:
        return None
    RecomputeRequest.objects.filter(available, pk__in=pending).update(
        claim=token, claimed_until=now + RECOMPUTE_LEASE
    )
    mine = RecomputeRequest.objects.filter(claim=token)
    requested = list(mine.values_list("country__iso3", flat=True))
    if not requested:
        return None
    countries = None if None in requested else sorted(set(requested))
    try:
        run = refresh_scores(countries=countries)
    except Exception:
        mine.update(claim=None, claimed_until=None)
        raise
    mine.update(done_at=timezone.now(), run=run)
    return run


# After-commit callbacks. The data is committed when they run: a broker that is down, or
# a scoring run that fails when tasks run eagerly, must neither hide that nor skip the
# callbacks queued after it. So each one logs its failure and returns (and is registered
# ``robust`` besides); the scheduled jobs in the beat schedule redo whatever was missed.


def _queue_hook_tasks(task_names: Sequence[str], *args: Any) -> None:
    """Queue tasks of other apps, named by dotted path (they depend on us, not we on them)."""
    for name in task_names:
        try:
            import_string(name).delay(*args)
        except Exception:
            logger.exception("Could not run or queue %s%r after commit", name, args)


def _queue_recompute_drain() -> None:
    from indicators import tasks  # tasks import this module

    try:
        tasks.drain_recompute_requests.delay()
    except Exception:
        # The requests are committed: the beat sweep drains them once the broker is back.
        logger.exception("Could not run or queue the recompute drain after commit")


def _comparable(row: _CleanRow) -> tuple[float, str, str, str, bool]:
    return (row.value, row.confidence, row.source_url, row.note, row.overrides_data)


def _existing_observations(
    rows: Sequence[_CleanRow],
) -> dict[tuple[int, int, date, str], tuple[float, str, str, str, bool]]:
    if not rows:
        return {}
    queryset = Observation.objects.filter(
        country_id__in={r.country.pk for r in rows},
        indicator_id__in={r.indicator_id for r in rows},
        observed_on__range=(min(r.observed_on for r in rows), max(r.observed_on for r in rows)),
        source__in={r.source for r in rows},
    ).values_list(
        "country_id",
        "indicator_id",
        "observed_on",
        "source",
        "value",
        "confidence",
        "source_url",
        "note",
        "overrides_data",
    )
    return {tuple(v[:4]): tuple(v[4:]) for v in queryset.iterator(chunk_size=5000)}  # type: ignore[misc]


def _clean_row(
    number: int,
    row: Mapping[str, Any],
    countries: Mapping[str, Country],
    indicators: Mapping[str, int],
    scale: Scale,
    today: date,
) -> tuple[list[RowError], _CleanRow | None]:
    errors: list[RowError] = []

    def fail(field_name: str, message: str) -> None:
        errors.append(RowError(number, field_name, message))

    iso3 = _text(row.get("country")).upper()
    country = countries.get(iso3)
    if country is None:
        fail("country", f"unknown country code {iso3!r}" if iso3 else "is required")

    code = _text(row.get("indicator"))
    indicator_id = indicators.get(code)
    if indicator_id is None:
        fail("indicator", f"unknown indicator code {code!r}" if code else "is required")

    observed_on = parse_observation_date(row.get("observed_on"), today=today)
    if isinstance(observed_on, str):
        fail("observed_on", observed_on)

    value = _parse_value(row.get("value"), scale)
    if isinstance(value, str):
        fail("value", value)

    confidence = _text(row.get("confidence")).lower() or Observation.Confidence.MEDIUM
    if confidence not in CONFIDENCES:
        fail("confidence", f"{confidence!r} is not one of low, medium, high")

    source = _text(row.get("source"))
    if not source:
        fail("source", "is required")
    elif len(source) > 200:
        fail("source", "is longer than 200 characters")
    elif problem := _control_character_problem(source):
        fail("source", problem)

    source_url = _text(row.get("source_url"))
    if source_url:
        if problem := _control_character_problem(source_url):
            fail("source_url", problem)
        else:
            try:
                _url_validator(source_url)
            except ValidationError:
                fail("source_url", f"{source_url!r} is not a valid http(s) URL")
        if len(source_url) > 500:
            fail("source_url", "is longer than 500 characters")

    note = _text(row.get("note"))
    if len(note) > NOTE_MAX_LENGTH:
        fail("note", f"is longer than {NOTE_MAX_LENGTH:,} characters")
    elif problem := _control_character_problem(note, line_breaks=True):
        fail("note", problem)

    overrides_data = _parse_flag(row.get("overrides_data"))
    if overrides_data is None:
        fail("overrides_data", f"{_text(row.get('overrides_data'))!r} is not yes or no")

    if errors or country is None or indicator_id is None:
        return errors, None
    if isinstance(observed_on, str) or isinstance(value, str):  # reported above
        return errors, None
    return [], _CleanRow(
        country=country,
        indicator_id=indicator_id,
        observed_on=observed_on,
        value=value,
        confidence=confidence,
        source=source,
        source_url=source_url,
        note=note,
        overrides_data=bool(overrides_data),
    )


def _parse_flag(raw: Any) -> bool | None:
    """True, False (also for empty), or None when the text is neither yes nor no."""
    if isinstance(raw, bool):
        return raw
    text = _text(raw).lower()
    if text in ("", "0", "no", "false", "n"):
        return False
    if text in ("1", "yes", "true", "y"):
        return True
    return None


def _text(value: Any) -> str:
    if type(value) is str:  # nearly always: the fast path for 100,000-row uploads
        return value.strip()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_observation_date(raw: Any, *, today: date) -> date | str:
    """The date of an observation, or an error message: the one rule of every entry path.

    A date, or text in the form YYYY-MM-DD (nothing else: not 20240131, not 31/01/2024),
    from ``settings.OBSERVATIONS_FROM`` (1900-01-01 unless set) to ``today``.
    """
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date):
        parsed = raw
    else:
        text = _text(raw)
        if not text:
            return "is required"
        # fromisoformat alone also reads 20131231 and 2013-W01-1: the form must be explicit.
        if not _ISO_DATE.fullmatch(text):
            return f"{text!r} is not a date in the form YYYY-MM-DD"
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            return f"{text!r} is not a date in the form YYYY-MM-DD"
    earliest: date = settings.OBSERVATIONS_FROM
    if parsed < earliest:
        return f"{parsed.isoformat()} is before {earliest.isoformat()}: is the year right?"
    if parsed > today:
        return f"{parsed.isoformat()} is in the future"
    return parsed


# C0 and C1 control characters and DEL. A NUL cannot even be stored in PostgreSQL text;
# the others are invisible on every page and in every export.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")


def _control_character_problem(text: str, *, line_breaks: bool = False) -> str | None:
    """An error message if ``text`` holds a control character (besides tabs and line
    breaks, where ``line_breaks`` allows them), else None."""
    for match in _CONTROL_CHARACTER.finditer(text):
        if line_breaks and match.group() in _LINE_BREAKS_AND_TABS:
            continue
        return (
            f"holds a control character (U+{ord(match.group()):04X}) at character "
            f"{match.start() + 1}: remove it"
        )
    return None


def _parse_value(raw: Any, scale: Scale) -> float | str:
    """A value in [0, 1], or an error message."""
    text = _text(raw)
    if not text:
        return "is required"
    try:
        number = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if not math.isfinite(number):
        return f"{text!r} is not a finite number"
    if scale == "analyst":
        if number not in (0, 1, 2, 3):
            return f"{text} is not on the 0-3 scale (0 absent, 1 low, 2 moderate, 3 high)"
        return number / ANALYST_SCALE_MAX
    if not 0 <= number <= 1:
        return f"{text} is outside [0, 1]"
    return number


# --- Methodology versions --------------------------------------------------------------


# --- Scores ----------------------------------------------------------------------------

# Any constant will do, as long as nothing else takes the same advisory lock.
REFRESH_LOCK_ID = 0x45575352  # "EWSR"


def refresh_scores(
    *,
    countries: Collection[str] | None = None,
    periods: Collection[date] | None = None,
    today: date | None = None,
    methodology: MethodologyVersion | None = None,
) -> ScoringRun:
    """Recompute scores under ``methodology`` (default: the published version, which
    is created as v1 when there is none) and store them; returns the run.

    Scores every month end from the first observation (not before January of
    ``settings.SCORES_FROM_YEAR``) to the last complete month, never a month that has
    not ended, for the given ISO3 ``countries`` (default: all). ``periods`` limits which
    month ends are written; the engine still sees the whole history, so changes and z-scores stay
    right. A one-country refresh becomes a full refresh when the last full run was under
    another version, or when it would score a month end after that run's last one, so
    that every country is scored under the same weights and up to the same month. Scores
    are kept per version: a run writes its own version's rows and no other's.
    Scores that the observations no longer back are deleted, even when none are left.

    On PostgreSQL, refreshes take turns (a transaction-level advisory lock, taken before
    observations are read): a full run that started earlier cannot overwrite a newer
    one-country run with older data. The run row records the outcome; on failure nothing
    else is written and the error is re-raised.
    """
    today = today or timezone.localdate()
    methodology = methodology or methodology_service.initial_methodology()
    if countries is not None and not _may_score_alone(methodology, periods, today):
        countries = None
    country_ids = (
        None
        if countries is None
        else dict(Country.objects.filter(iso3__in=list(countries)).values_list("iso3", "id"))
    )
    run = ScoringRun.objects.create(
        methodology=methodology,
        countries=sorted(country_ids) if country_ids is not None else None,
        started_at=timezone.now(),
    )
    timings: dict[str, float] = {}
    try:
        with transaction.atomic():
            _wait_for_other_refreshes()
            _score_and_write(run, methodology, country_ids, periods, today, timings)
        run.status = ScoringRun.Status.SUCCEEDED
    except Exception as exc:
        run.status = ScoringRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"
        run.scores_written = 0
        logger.exception("Scoring run %s failed", run.pk)
        raise
    finally:
        run.timings = {k: round(v, 4) for k, v in timings.items()}
        run.finished_at = timezone.now()
        run.save()
    # After the run row says "succeeded": the alert rules read it.
    announce_finished_run(run)
    return run


def announce_finished_run(run: ScoringRun) -> None:
    """Queue what follows a finished scoring run (the alert rules) once the current
    transaction commits; again after a publication, whose run was a draft's when it
    finished and is evaluated only once its version is published."""
    transaction.on_commit(
        partial(_queue_hook_tasks, settings.SCORING_RUN_FINISHED_TASKS, run.pk), robust=True
    )


def _score_and_write(
    run: ScoringRun,
    methodology: MethodologyVersion,
    country_ids: Mapping[str, int] | None,
    periods: Collection[date] | None,
    today: date,
    timings: dict[str, float],
) -> None:
    clock = time.perf_counter()
    observations = selectors.observations_frame(
        country_ids=None if country_ids is None else list(country_ids.values())
    )
    factors, indicators = selectors.weights_frames(methodology)
    timings["read"] = time.perf_counter() - clock
    run.observations_read = len(observations)
    observations, run.error = _leave_out_misdated(observations, country_ids, today)
    if observations.empty:
        # Nothing to score, but scores of observations deleted since the last run go.
        _delete_stale_scores(run, country_ids, periods)
        run.scores_written = 0
        return
    all_periods = scoring_periods(observations["observed_on"].min(), today)
    if len(all_periods) == 0:
        # Every observation is dated in the current month: no month end to score yet.
        _delete_stale_scores(run, country_ids, periods)
        run.scores_written = 0
        return
    clock = time.perf_counter()
    result = scoring.compute_scores(
        observations,
        indicators=indicators,
        factors=factors,
        periods=all_periods,
        thresholds=scoring.Thresholds(**methodology.thresholds),
    )
    timings["score"] = time.perf_counter() - clock
    keep = (
        np.ones(len(result.scores), dtype=bool)
        if periods is None
        else result.scores["period"].isin(pd.to_datetime(list(periods))).to_numpy()
    )
    run.period_start = all_periods[0].date()
    run.period_end = all_periods[-1].date()
    run.period_count = len(all_periods) if periods is None else len(set(periods))
    clock = time.perf_counter()
    run.scores_written = _write_scores(run, result, keep, country_ids, periods)
    situations.score_situations(
        methodology=methodology,
        observations=observations,
        factors=factors,
        indicators=indicators,
        periods=all_periods,
        country_ids=None if country_ids is None else list(country_ids.values()),
    )
    timings["write"] = time.perf_counter() - clock


def _leave_out_misdated(
    observations: pd.DataFrame, country_ids: Mapping[str, int] | None, today: date
) -> tuple[pd.DataFrame, str]:
    """The observations dated from ``OBSERVATIONS_FROM`` to ``today``, and a note for the
    run's record naming any others (stored before dates were bounded), or "".

    One such row must not fail the run (pandas cannot hold the year 204), nor stretch it
    over centuries (1800).
    """
    earliest: date = settings.OBSERVATIONS_FROM
    inside = observations["observed_on"].between(pd.Timestamp(earliest), pd.Timestamp(today))
    if inside.all():
        return observations, ""
    misdated = Observation.objects.exclude(observed_on__range=(earliest, today))
    if country_ids is not None:
        misdated = misdated.filter(country_id__in=list(country_ids.values()))
    examples = ", ".join(
        f"{iso3} {code} {day.isoformat()}"
        for iso3, code, day in misdated.order_by("observed_on").values_list(
            "country__iso3", "indicator__code", "observed_on"
        )[:3]
    )
    count = int((~inside).sum())
    note = (
        f"Left out {count} observation{'s' if count != 1 else ''} dated outside "
        f"{earliest.isoformat()} to {today.isoformat()} (e.g. {examples}): correct or "
        "delete them."
    )
    logger.warning("Scoring run: %s", note)
    return observations[inside.to_numpy()], note


def scoring_periods(first_observation: date | pd.Timestamp, today: date) -> pd.DatetimeIndex:
    """The month ends scored: from the month of the first observation (but not before
    January of ``SCORES_FROM_YEAR``) to the last complete month; empty if none."""
    start = max(pd.Timestamp(first_observation), pd.Timestamp(settings.SCORES_FROM_YEAR, 1, 1))
    end = pd.Timestamp(scoring.last_complete_month_end(today))
    if start > end:
        return pd.DatetimeIndex([])
    return scoring.month_ends(start.date(), end.date())


def _wait_for_other_refreshes() -> None:
    """Hold the refresh lock until the current transaction ends (PostgreSQL only).

    SQLite lets one writer at a time anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK_ID])


def _may_score_alone(
    methodology: MethodologyVersion, periods: Collection[date] | None, today: date
) -> bool:
    """Can a one-country run keep to that country without leaving it out of step?"""
    latest = _latest_full_run(methodology)
    if latest is None:
        return False
    last_period = max(periods) if periods else scoring.last_complete_month_end(today)
    return latest.period_end is not None and last_period <= latest.period_end


def refresh_scores_if_stale(*, today: date | None = None) -> ScoringRun | None:
    """A full refresh, unless the last full run already scored today's data under
    today's weights up to the last complete month; returns the new run, or None."""
    today = today or timezone.localdate()
    version = methodology_service.initial_methodology()
    latest = _latest_full_run(version)
    if latest is not None:
        observations = Observation.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
        expected_end = scoring.last_complete_month_end(today)
        if (
            observations["n"] == latest.observations_read
            and (observations["changed"] is None or observations["changed"] < latest.started_at)
            and (latest.period_end == expected_end or observations["n"] == 0)
        ):
            return None
    return refresh_scores(today=today)


def latest_full_run() -> ScoringRun | None:
    """The latest successful full run of the published version: the scores users see."""
    version = selectors.published_methodology()
    return _latest_full_run(version) if version else None


def _latest_full_run(version: MethodologyVersion) -> ScoringRun | None:
    return (
        ScoringRun.objects.filter(
            status=ScoringRun.Status.SUCCEEDED, countries__isnull=True, methodology=version
        )
        .select_related("methodology")
        .order_by("-started_at")
        .first()
    )


def _write_scores(
    run: ScoringRun,
    result: scoring.ScoringResult,
    keep: np.ndarray,
    country_ids: Mapping[str, int] | None,
    periods: Collection[date] | None,
) -> int:
    scores = result.scores[keep]
    id_by_iso3 = dict(
        Country.objects.filter(iso3__in=scores["country"].unique().tolist()).values_list(
            "iso3", "id"
        )
    )
    table = scores[list(RISK_SCORE_NUMBER_FIELDS)].round(4)
    table.insert(0, "country_id", scores["country"].map(id_by_iso3))
    table.insert(1, "period", scores["period"].dt.date)
    table["methodology_id"] = run.methodology_id
    table["run_id"] = run.pk
    table["overall_crime"] = scores["overall_crime"]
    table["level"] = scores["level"]
    table["factor_scores"] = bulk.json_objects(result.factor_scores[keep])
    table["contributions"] = bulk.json_objects(result.contributions[keep], drop_zero=True)
    with transaction.atomic():
        # Replace the run's scope in one go: no row references a score, and a bulk insert
        # (COPY on PostgreSQL) is about twice as fast as an upsert; the old rows stay
        # visible to readers until commit.
        _scores_in_scope(run, country_ids, periods).delete()
        bulk.insert_frame(RiskScore._meta.db_table, table)
    return len(table)


def _scores_in_scope(
    run: ScoringRun, country_ids: Mapping[str, int] | None, periods: Collection[date] | None
) -> QuerySet[RiskScore]:
    """The stored scores of the run's methodology, countries and periods."""
    scores = RiskScore.objects.filter(methodology_id=run.methodology_id)
    if country_ids is not None:
        scores = scores.filter(country_id__in=list(country_ids.values()))
    if periods is not None:
        scores = scores.filter(period__in=list(periods))
    return scores


def _delete_stale_scores(
    run: ScoringRun, country_ids: Mapping[str, int] | None, periods: Collection[date] | None
) -> None:
    """Scores of this methodology and scope that ``run`` did not write (their data went)."""
    _scores_in_scope(run, country_ids, periods).exclude(run=run).delete()


# --- API tokens ------------------------------------------------------------------------


def regenerate_api_token(*, user: AbstractBaseUser) -> Token:
    """Give ``user`` a new API token; the previous key, if any, stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def revoke_api_token(*, user: AbstractBaseUser) -> bool:
    """Delete ``user``'s API token; True if there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)

"""The methodology as its own service: versions drafted, previewed, published, rolled back.

Every weight and threshold belongs to a ``MethodologyVersion``. A change is an explicit
draft, edited through ``edit_draft`` (by the draft editor page and the admin alike),
previewed against the published version by a worker, and published with a written
rationale: publishing recomputes every score under the draft, then makes it the one
analysts see and supersedes the old one (whose scores stay viewable). A rollback
publishes a copy of an earlier version with its own rationale. Every step is an event
in the audit log: who, when, why, what changed and, on publication, which countries moved.

Work a worker does (a preview, a publication, a calibration) is a ``MethodologyJob``
row, written in the caller's transaction and drained on commit and by the beat sweep
(``indicators.methodology_jobs`` runs them: it needs the scoring runs, which need this).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from indicators import scoring, selectors
from indicators.models import (
    DEFAULT_STALENESS_DAYS,
    Indicator,
    MethodologyEvent,
    MethodologyJob,
    MethodologyVersion,
    RiskFactor,
    RiskScore,
)
from indicators.sources.mapping import published_mapping

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "moderate_from": scoring.Thresholds().moderate_from,
    "high_from": scoring.Thresholds().high_from,
    "very_high_from": scoring.Thresholds().very_high_from,
    "min_coverage": scoring.Thresholds().min_coverage,
}
SECTIONS = ("factor_weights", "indicator_weights", "staleness_days", "thresholds")


class MethodologyError(ValueError):
    """A change the methodology's rules refuse; ``errors`` maps a field to its problems."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {key: list(value) for key, value in errors.items()}
        super().__init__(
            "; ".join(f"{key}: {' '.join(value)}" for key, value in self.errors.items())
        )


# --- Versions ----------------------------------------------------------------------------


def initial_methodology() -> MethodologyVersion:
    """The published version, created as v1 (equal weights) if there is none yet.

    v1 weighs every factor and indicator 1, uses the default thresholds, and gives each
    indicator the 730-day staleness limit but for those the public-data mapping marks
    as slow-moving. Concurrent callers get the same version.
    """
    found = selectors.published_methodology()
    if found is not None:
        return found
    staleness = {
        code: published_mapping().staleness_days.get(code, (DEFAULT_STALENESS_DAYS, ""))[0]
        for code in Indicator.objects.values_list("code", flat=True)
    }
    try:
        with transaction.atomic():
            version = _create_version(
                status=MethodologyVersion.Status.PUBLISHED,
                title="Equal weights",
                rationale=(
                    "Initial methodology: the Framework gives no basis for weighting, so every "
                    "factor and indicator weighs the same until evidence (the backtest, a "
                    "calibration) or a documented judgement says otherwise."
                ),
                factor_weights=dict.fromkeys(
                    RiskFactor.objects.values_list("code", flat=True), 1.0
                ),
                indicator_weights=dict.fromkeys(staleness, 1.0),
                staleness_days=staleness,
                thresholds=dict(DEFAULT_THRESHOLDS),
                by=None,
            )
            version.published_at = timezone.now()
            version.save(update_fields=["published_at"])
            _event(version, MethodologyEvent.Kind.PUBLISHED, None, note=version.rationale)
            return version
    except IntegrityError:
        # Another process published one meanwhile.
        found = selectors.published_methodology()
        if found is None:
            raise
        return found


def create_draft(
    *,
    by: AbstractBaseUser | None,
    based_on: MethodologyVersion | None = None,
    title: str = "",
    factor_weights: Mapping[str, float] | None = None,
    note: str = "",
) -> MethodologyVersion:
    """A new draft copying ``based_on`` (default: the published version), optionally
    with other factor weights (a calibration's suggestion)."""
    base = based_on or initial_methodology()
    with transaction.atomic():
        draft = _create_version(
            status=MethodologyVersion.Status.DRAFT,
            title=title or f"Draft from v{base.number}",
            rationale="",
            factor_weights=dict(base.factor_weights),
            indicator_weights=dict(base.indicator_weights),
            staleness_days=dict(base.staleness_days),
            thresholds=dict(base.thresholds),
            by=by,
            based_on=base,
        )
        _event(draft, MethodologyEvent.Kind.DRAFTED, by, note=note or f"From v{base.number}.")
        if factor_weights is not None:
            edit_draft(draft, by=by, factor_weights=factor_weights, note=note)
    return draft


def edit_draft(
    draft: MethodologyVersion,
    *,
    by: AbstractBaseUser | None,
    factor_weights: Mapping[str, Any] | None = None,
    indicator_weights: Mapping[str, Any] | None = None,
    staleness_days: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    title: str | None = None,
    rationale: str | None = None,
    note: str = "",
) -> dict[str, dict[str, list[Any]]]:
    """Change a draft's weights, limits, thresholds, title or rationale; the one way a
    version is edited. Values not given stay. Returns what changed, by section.

    Raises ``MethodologyError`` (changing nothing) when the version is not a draft, a
    code is unknown, a weight is negative or not a number, a staleness limit is not a
    whole number of days above 0, or the thresholds do not increase within (0, 100)
    with a coverage floor in [0, 1].
    """
    given = draft
    with transaction.atomic():
        draft = MethodologyVersion.objects.select_for_update().get(pk=draft.pk)
        if draft.status != MethodologyVersion.Status.DRAFT:
            raise MethodologyError({"version": [f"v{draft.number} is not a draft."]})
        errors: dict[str, list[str]] = {}
        proposed = {
            "factor_weights": _merged(
                draft.factor_weights, factor_weights, "factor_weights", _weight, errors
            ),
            "indicator_weights": _merged(
                draft.indicator_weights, indicator_weights, "indicator_weights", _weight, errors
            ),
            "staleness_days": _merged(
                draft.staleness_days, staleness_days, "staleness_days", _days, errors
            ),
            "thresholds": _merged(draft.thresholds, thresholds, "thresholds", _number, errors),
        }
        if not errors:
            try:
                scoring.Thresholds(**proposed["thresholds"])
            except (TypeError, ValueError) as exc:
                errors["thresholds"] = [str(exc)]
        if errors:
            raise MethodologyError(errors)
        changes = {
            section: _diff(getattr(draft, section), proposed[section]) for section in SECTIONS
        }
        changes = {section: diff for section, diff in changes.items() if diff}
        for section in SECTIONS:
            setattr(draft, section, proposed[section])
        if title is not None and title.strip() != draft.title:
            changes["title"] = {"title": [draft.title, title.strip()]}
            draft.title = title.strip()[:120]
        if rationale is not None and rationale.strip() != draft.rationale:
            changes["rationale"] = {"rationale": [draft.rationale, rationale.strip()]}
            draft.rationale = rationale.strip()
        if changes:
            draft.fingerprint = fingerprint_of(draft)
            draft.save()
            _event(draft, MethodologyEvent.Kind.EDITED, by, note=note, changes=changes)
    given.refresh_from_db()  # the caller's object shows the edit too
    return changes


def discard_draft(draft: MethodologyVersion, *, by: AbstractBaseUser | None, reason: str) -> None:
    """Set a draft aside for good (kept for the record, never published)."""
    with transaction.atomic():
        if draft.status != MethodologyVersion.Status.DRAFT:
            raise MethodologyError({"version": [f"v{draft.number} is not a draft."]})
        draft.status = MethodologyVersion.Status.DISCARDED
        draft.save(update_fields=["status", "updated_at"])
        _event(draft, MethodologyEvent.Kind.DISCARDED, by, note=reason)


def request_publication(
    draft: MethodologyVersion, *, by: AbstractBaseUser | None, rationale: str
) -> MethodologyJob:
    """Ask a worker to publish ``draft``; a written rationale is required."""
    rationale = rationale.strip()
    if not rationale:
        raise MethodologyError({"rationale": ["Say why: a publication needs a rationale."]})
    if draft.status != MethodologyVersion.Status.DRAFT:
        raise MethodologyError({"version": [f"v{draft.number} is not a draft."]})
    with transaction.atomic():
        edit_draft(draft, by=by, rationale=rationale)
        job = _request_job(draft, MethodologyJob.Kind.PUBLISH, by, note=rationale)
        _event(draft, MethodologyEvent.Kind.PUBLISH_REQUESTED, by, note=rationale)
    return job


def request_preview(draft: MethodologyVersion, *, by: AbstractBaseUser | None) -> MethodologyJob:
    """Ask a worker to compare ``draft`` with the published version."""
    if draft.status != MethodologyVersion.Status.DRAFT:
        raise MethodologyError({"version": [f"v{draft.number} is not a draft."]})
    with transaction.atomic():
        job = _request_job(draft, MethodologyJob.Kind.PREVIEW, by)
        _event(draft, MethodologyEvent.Kind.PREVIEW_REQUESTED, by)
    return job


def request_calibration(*, by: AbstractBaseUser | None) -> MethodologyJob:
    """Ask a worker to calibrate factor weights against history (see calibration.py)."""
    with transaction.atomic():
        return _request_job(initial_methodology(), MethodologyJob.Kind.CALIBRATE, by)


def roll_back(
    to: MethodologyVersion, *, by: AbstractBaseUser | None, rationale: str
) -> MethodologyJob:
    """Publish a copy of an earlier version ``to``, with its own rationale."""
    if to.status not in (MethodologyVersion.Status.SUPERSEDED, MethodologyVersion.Status.PUBLISHED):
        raise MethodologyError({"version": [f"v{to.number} was never published."]})
    if not rationale.strip():
        raise MethodologyError({"rationale": ["Say why: a rollback needs a rationale."]})
    with transaction.atomic():
        copy = create_draft(
            by=by, based_on=to, title=f"Rollback to v{to.number}", note=rationale.strip()
        )
        _event(to, MethodologyEvent.Kind.ROLLED_BACK, by, note=f"Copied into v{copy.number}.")
        return request_publication(copy, by=by, rationale=rationale)


def complete_publication(
    draft: MethodologyVersion, *, by: AbstractBaseUser | None, rationale: str
) -> MethodologyVersion:
    """Make ``draft``, whose scores have all been computed, the published version.

    The old published version is superseded (its scores stay). The audit log records
    what changed and which countries' latest score moved by a point or changed level.
    """
    rationale = rationale.strip() or draft.rationale
    if not rationale:
        raise MethodologyError({"rationale": ["Say why: a publication needs a rationale."]})
    with transaction.atomic():
        draft = MethodologyVersion.objects.select_for_update().get(pk=draft.pk)
        if draft.status != MethodologyVersion.Status.DRAFT:
            raise MethodologyError({"version": [f"v{draft.number} is not a draft."]})
        old = initial_methodology()
        now = timezone.now()
        MethodologyVersion.objects.filter(pk=old.pk).update(
            status=MethodologyVersion.Status.SUPERSEDED, superseded_at=now
        )
        MethodologyVersion.objects.filter(pk=draft.pk).update(
            status=MethodologyVersion.Status.PUBLISHED,
            published_at=now,
            published_by=by if by is not None and by.is_authenticated else None,
            rationale=rationale,
        )
        draft.refresh_from_db()
        _event(old, MethodologyEvent.Kind.SUPERSEDED, by, note=f"By v{draft.number}.")
        _event(
            draft,
            MethodologyEvent.Kind.PUBLISHED,
            by,
            note=rationale,
            changes=changes_between(old, draft),
            moved=countries_moved(before=old, after=draft),
        )
    return draft


def record_event(
    version: MethodologyVersion,
    kind: str,
    by: AbstractBaseUser | None,
    *,
    note: str = "",
) -> MethodologyEvent:
    """Add a step done outside this module (a preview, a failure) to the audit log."""
    return _event(version, kind, by, note=note)


def changes_between(
    before: MethodologyVersion, after: MethodologyVersion
) -> dict[str, dict[str, list[Any]]]:
    """What differs from ``before`` to ``after``: {section: {code: [old, new]}}."""
    found = {
        section: _diff(getattr(before, section), getattr(after, section)) for section in SECTIONS
    }
    return {section: diff for section, diff in found.items() if diff}


def countries_moved(
    *, before: MethodologyVersion, after: MethodologyVersion, min_points: float = 1.0
) -> list[dict[str, Any]]:
    """Countries whose latest overall score moved by ``min_points`` or changed level."""
    latest = RiskScore.objects.filter(methodology=after).aggregate(p=Max("period"))["p"]
    if latest is None:
        return []
    rows = {
        (iso3, methodology): (overall, level)
        for iso3, methodology, overall, level in RiskScore.objects.filter(
            methodology__in=[before, after], period=latest
        ).values_list("country__iso3", "methodology_id", "overall", "level")
    }
    moved = []
    for (iso3, methodology), (overall, level) in rows.items():
        if methodology != after.pk:
            continue
        old_overall, old_level = rows.get((iso3, before.pk), (None, None))
        change = None if old_overall is None or overall is None else overall - old_overall
        if (change is not None and abs(change) >= min_points) or old_level != level:
            moved.append(
                {
                    "country": iso3,
                    "before": old_overall,
                    "after": overall,
                    "level_before": old_level,
                    "level_after": level,
                    "change": None if change is None else round(change, 2),
                }
            )
    moved.sort(key=lambda m: -abs(m["change"] or 0.0))
    return moved


def fingerprint_of(version: MethodologyVersion) -> str:
    snapshot = {section: getattr(version, section) for section in SECTIONS}
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


# --- Jobs ------------------------------------------------------------------------------


def _request_job(
    version: MethodologyVersion, kind: str, by: AbstractBaseUser | None, note: str = ""
) -> MethodologyJob:
    job = MethodologyJob.objects.create(
        version=version,
        kind=kind,
        requested_by=by if by is not None and by.is_authenticated else None,
        requested_at=timezone.now(),
        note=note,
    )
    transaction.on_commit(_queue_jobs, robust=True)
    return job


def _queue_jobs() -> None:
    from indicators import tasks  # tasks import the services

    try:
        tasks.run_methodology_jobs.delay()
    except Exception:
        logger.exception("Could not run or queue the methodology jobs after commit")


# --- Helpers ---------------------------------------------------------------------------


def _create_version(
    *,
    status: str,
    by: AbstractBaseUser | None,
    based_on: MethodologyVersion | None = None,
    **fields: Any,
) -> MethodologyVersion:
    user = by if by is not None and by.is_authenticated else None
    for _attempt in range(3):
        try:
            with transaction.atomic():
                number = (MethodologyVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
                version = MethodologyVersion(
                    number=number, status=status, created_by=user, based_on=based_on, **fields
                )
                version.fingerprint = fingerprint_of(version)
                version.save()
                return version
        except IntegrityError:
            if status == MethodologyVersion.Status.PUBLISHED:
                raise
            continue  # another process took the number: try the next one
    raise RuntimeError("Could not number a new methodology version after three attempts.")


def _event(
    version: MethodologyVersion,
    kind: str,
    by: AbstractBaseUser | None,
    *,
    note: str = "",
    changes: dict[str, Any] | None = None,
    moved: list[dict[str, Any]] | None = None,
) -> MethodologyEvent:
    return MethodologyEvent.objects.create(
        version=version,
        kind=kind,
        actor=by if by is not None and by.is_authenticated else None,
        at=timezone.now(),
        note=note,
        changes=changes or {},
        moved=moved or [],
    )


def _merged(
    current: Mapping[str, Any],
    given: Mapping[str, Any] | None,
    section: str,
    check: Any,
    errors: dict[str, list[str]],
) -> dict[str, Any]:
    merged = dict(current)
    if not given:
        return merged
    for code, raw in given.items():
        if code not in current:
            errors.setdefault(section, []).append(f"{code}: unknown code.")
            continue
        value = check(raw)
        if isinstance(value, str):
            errors.setdefault(section, []).append(f"{code}: {value}")
        else:
            merged[code] = value
    return merged


def _number(raw: Any) -> float | str:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return f"{raw!r} is not a number."
    return value if value == value and abs(value) != float("inf") else f"{raw!r} is not finite."


def _weight(raw: Any) -> float | str:
    value = _number(raw)
    if isinstance(value, str):
        return value
    return value if value >= 0 else f"{raw!r} is negative: weights are 0 or more."


def _days(raw: Any) -> int | str:
    value = _number(raw)
    if isinstance(value, str):
        return value
    if value != int(value) or value <= 0:
        return f"{raw!r} is not a whole number of days above 0."
    return int(value)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {
        code: [before.get(code), after.get(code)]
        for code in sorted(set(before) | set(after))
        if before.get(code) != after.get(code)
    }

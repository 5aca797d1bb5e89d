"""The methodology work a worker does: publish a draft, preview it, calibrate weights.

Each is a ``MethodologyJob`` row (see ``indicators.methodology``), claimed here with a
conditional UPDATE and a lease, run, and closed with its figures or its error.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from indicators import history, methodology, selectors, services
from indicators.models import MethodologyEvent, MethodologyJob, MethodologyVersion

logger = logging.getLogger(__name__)

JOB_LEASE = timedelta(minutes=30)
PREVIEW_MOVERS = 15


def publish(
    draft: MethodologyVersion,
    *,
    by: AbstractBaseUser | None,
    rationale: str,
    today: date | None = None,
) -> MethodologyVersion:
    """Recompute every score under ``draft``, then publish it.

    The scores are written under the draft's own version, where no page shows them
    until the publication completes; a failed run leaves the draft a draft.
    """
    draft.refresh_from_db()  # weights as stored, whatever the caller's copy says
    if draft.status != MethodologyVersion.Status.DRAFT:
        raise methodology.MethodologyError({"version": [f"v{draft.number} is not a draft."]})
    if not (rationale.strip() or draft.rationale):
        raise methodology.MethodologyError(
            {"rationale": ["Say why: a publication needs a rationale."]}
        )
    run = services.refresh_scores(methodology=draft, today=today)
    published = methodology.complete_publication(draft, by=by, rationale=rationale)
    # Its run was a draft's when it finished, so the alert rules left it; now it counts
    # (a new version's first run only sets the baselines).
    services.announce_finished_run(run)
    logger.info("Methodology v%s published (run %s)", published.number, run.pk)
    return published


def preview(draft: MethodologyVersion) -> dict[str, Any]:
    """The draft beside the published version: the latest ranking side by side, the
    biggest rank and score changes, level changes, and both backtests."""
    published = methodology.initial_methodology()
    bounds = selectors.score_period_range(methodology=published)
    # The draft is scored for the month the published scores reach, to compare alike.
    period = bounds[1] if bounds else None
    before = history.latest_scores(published, period=period).set_index("country")
    after = history.latest_scores(draft, period=period).set_index("country")
    table = before.join(after, lsuffix="_published", rsuffix="_draft", how="outer")
    for side in ("published", "draft"):
        sufficient = table[f"level_{side}"] != "insufficient_data"
        key = (~sufficient).astype(float) * 1e6 - table[f"score_{side}"].fillna(-1e6)
        table[f"rank_{side}"] = key.rank(method="min")
    table["change"] = table["score_draft"] - table["score_published"]
    table["rank_change"] = table["rank_published"] - table["rank_draft"]
    rows = [
        {
            "country": iso3,
            "score_published": _num(row.score_published),
            "score_draft": _num(row.score_draft),
            "change": _num(row.change),
            "rank_published": _int(row.rank_published),
            "rank_draft": _int(row.rank_draft),
            "rank_change": _int(row.rank_change),
            "level_published": row.level_published if isinstance(row.level_published, str) else "",
            "level_draft": row.level_draft if isinstance(row.level_draft, str) else "",
        }
        for iso3, row in table.sort_values("rank_draft").iterrows()
    ]
    result: dict[str, Any] = {
        "published": published.number,
        "draft": draft.number,
        "period": period.isoformat() if period else None,
        "ranking": rows,
        "biggest_score_changes": sorted(
            (r for r in rows if r["change"] is not None),
            key=lambda r: -abs(r["change"]),
        )[:PREVIEW_MOVERS],
        "biggest_rank_changes": sorted(
            (r for r in rows if r["rank_change"] is not None),
            key=lambda r: -abs(r["rank_change"]),
        )[:PREVIEW_MOVERS],
        "level_changes": [r for r in rows if r["level_published"] != r["level_draft"]],
        "changes": methodology.changes_between(published, draft),
    }
    try:
        result["backtest"] = {
            "published": history.run_backtest(published).as_dict(),
            "draft": history.run_backtest(draft).as_dict(),
        }
    except ValueError as exc:  # no episode list, or no scores or onsets in its years
        result["backtest_error"] = str(exc)
    return result


def calibration() -> dict[str, Any]:
    """A calibration of factor weights, with the published version's figures beside."""
    result, baseline, version = history.run_calibration()
    suggestion = result.suggestion
    return {
        "published": version.number,
        "suggested_weights": suggestion.weights,
        "coefficients": suggestion.coefficients,
        "missingness": suggestion.missingness,
        "intercept": suggestion.intercept,
        "uncalibrated": suggestion.uncalibrated,
        "training_years": list(suggestion.training_years),
        "out_of_sample": result.out_of_sample.as_dict(),
        "published_backtest": baseline.as_dict(),
        "notes": result.notes,
    }


def run_methodology_jobs(*, now: datetime | None = None) -> list[MethodologyJob]:
    """Claim and run every pending methodology job, oldest first; returns them.

    A job another worker holds (its lease not expired) is left to it. A failure is kept
    on the job (and, for a publication, in the audit log); the others still run.
    """
    done = []
    while True:
        job = _claim_next(now or timezone.now())
        if job is None:
            return done
        try:
            if job.kind == MethodologyJob.Kind.PUBLISH:
                publish(job.version, by=job.requested_by, rationale=job.note)
                job.result = {"published": job.version.number}
            elif job.kind == MethodologyJob.Kind.PREVIEW:
                job.result = preview(job.version)
                methodology.record_event(
                    job.version, MethodologyEvent.Kind.PREVIEWED, job.requested_by
                )
            else:
                job.result = calibration()
                methodology.record_event(
                    job.version, MethodologyEvent.Kind.CALIBRATED, job.requested_by
                )
            job.status = MethodologyJob.Status.DONE
        except Exception as exc:
            logger.exception("Methodology job %s failed", job.pk)
            job.status = MethodologyJob.Status.FAILED
            job.error = f"{type(exc).__name__}: {exc}"
            if job.kind == MethodologyJob.Kind.PUBLISH:
                methodology.record_event(
                    job.version,
                    MethodologyEvent.Kind.PUBLISH_FAILED,
                    job.requested_by,
                    note=job.error,
                )
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "result", "error", "finished_at"])
        done.append(job)


def _claim_next(now: datetime) -> MethodologyJob | None:
    available = Q(status=MethodologyJob.Status.PENDING) | Q(
        status=MethodologyJob.Status.RUNNING, claimed_until__lt=now
    )
    for candidate in MethodologyJob.objects.filter(available).order_by("requested_at", "pk")[:5]:
        claimed = MethodologyJob.objects.filter(available, pk=candidate.pk).update(
            status=MethodologyJob.Status.RUNNING,
            claim=uuid.uuid4(),
            claimed_until=now + JOB_LEASE,
            started_at=now,
        )
        if claimed:
            return MethodologyJob.objects.select_related("version", "requested_by").get(
                pk=candidate.pk
            )
    return None


def _num(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 2)


def _int(value: Any) -> int | None:
    return None if value is None or value != value else int(value)

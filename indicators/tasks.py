"""Celery tasks: thin adapters that call one service each."""

from __future__ import annotations

from celery import shared_task

from indicators import methodology_jobs, services, uploads


@shared_task(ignore_result=True)
def recompute_all_scores() -> None:
    services.refresh_scores()


@shared_task(ignore_result=True)
def drain_recompute_requests() -> None:
    services.drain_recompute_requests()


@shared_task(ignore_result=True)
def run_methodology_jobs() -> None:
    methodology_jobs.run_methodology_jobs()


@shared_task(ignore_result=True)
def import_pending_uploads() -> None:
    uploads.import_pending_uploads()

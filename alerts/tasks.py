"""Celery tasks: thin adapters that call one alerts service each."""

from __future__ import annotations

from celery import shared_task

from alerts import services


@shared_task(ignore_result=True)
def evaluate_scoring_run(run_id: int) -> None:
    services.evaluate_scoring_run(run_id=run_id)


@shared_task(ignore_result=True)
def evaluate_red_flags(observation_ids: list[int]) -> None:
    services.evaluate_red_flags(observation_ids=observation_ids)


@shared_task(ignore_result=True)
def evaluate_missed() -> None:
    services.evaluate_missed()


@shared_task(ignore_result=True)
def dispatch_pending_notifications() -> None:
    services.dispatch_pending()


@shared_task(ignore_result=True)
def escalate_unacknowledged_alerts() -> None:
    services.escalate_unacknowledged()


@shared_task(ignore_result=True)
def send_daily_digests() -> None:
    services.send_daily_digests()


@shared_task(ignore_result=True)
def send_weekly_summaries() -> None:
    services.send_weekly_summaries()

"""Celery tasks: thin adapters that call one service each."""

from __future__ import annotations

from celery import shared_task

from indicators import services


@shared_task(ignore_result=True)
def recompute_all_scores() -> None:
    services.refresh_scores()


@shared_task(ignore_result=True)
def recompute_country_scores(iso3: str) -> None:
    services.refresh_scores(countries=[iso3])

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from indicators import services


class Command(BaseCommand):
    help = "Recompute risk scores now, for every country or the ones named (ISO3 codes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("countries", nargs="*", help="ISO3 codes; none means all.")

    def handle(self, *args: Any, **options: Any) -> None:
        run = services.refresh_scores(countries=options["countries"] or None)
        self.stdout.write(
            f"Scoring run {run.pk} ({run.methodology}): {run.status}, "
            f"{run.observations_read} observations read, {run.scores_written} scores written, "
            f"timings {run.timings}."
        )

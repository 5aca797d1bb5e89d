from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from indicators import services


class Command(BaseCommand):
    help = "Load the risk factors and indicators of the Framework of Analysis (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, help="Another framework YAML file to load.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = services.load_framework(path=options["file"])
        except (services.FrameworkError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Risk factors: {result.factors_created} created, {result.factors_updated} updated. "
            f"Indicators: {result.indicators_created} created, "
            f"{result.indicators_updated} updated."
        )

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
        for change in result.changes:
            self.stdout.write(
                f"  {change.code} {change.field}: {_short(change.old)} -> {_short(change.new)}"
            )
        if result.changes:
            self.stdout.write("Weights and staleness limits were left as they were.")


def _short(value: Any, limit: int = 70) -> str:
    text = " ".join(str(value).split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from countries.services import load_countries


class Command(BaseCommand):
    help = "Create or update the UN member and observer states from the checked-in M49 table."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = load_countries()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Countries: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged"
            )
        )

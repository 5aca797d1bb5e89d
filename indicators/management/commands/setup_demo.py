from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from indicators import services


class Command(BaseCommand):
    help = (
        "Prepare the one-machine demo: load countries and the framework, recompute scores, "
        "and (re)create the demo administrator with a fresh random password that is printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("load_countries", stdout=self.stdout)
        call_command("load_framework", stdout=self.stdout)
        run = services.refresh_scores()
        self.stdout.write(
            f"Scores: run {run.pk} {run.status}, {run.scores_written} scores from "
            f"{run.observations_read} observations."
        )
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=options["username"])
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDemo administrator -> username: {user.get_username()}  password: {password}\n"
            )
        )

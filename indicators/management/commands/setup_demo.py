from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

from indicators import services
from indicators.roles import Role

# One demo account per role: (user name, role, is_staff/superuser).
DEMO_USERS = [
    ("admin", Role.ADMINISTRATOR, True),
    ("analyst", Role.ANALYST, False),
    ("focal", Role.FOCAL_POINT, False),
]


class Command(BaseCommand):
    help = (
        "Prepare the one-machine demo: load countries and the framework, import the public "
        "data sets (only what changed), compute scores if they are out of date, and "
        "(re)create one demo user per role with fresh random passwords, printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("load_countries", stdout=self.stdout)
        call_command("load_framework", stdout=self.stdout)
        data_dir = Path(settings.PUBLIC_DATA_DIR)
        if data_dir.is_dir():
            # Reads only what changed since the last start; recomputes if anything did.
            call_command("import_public_data", stdout=self.stdout, stderr=self.stderr)
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"No public data folder at {data_dir}: the demo has no data. Set "
                    "PUBLIC_DATA_DIR to the folder holding the data sets (see the README)."
                )
            )
        run = services.refresh_scores_if_stale()
        latest = run or services.latest_full_run()
        if run is None and latest is not None:
            until = f" to {latest.period_end:%B %Y}" if latest.period_end else ""
            self.stdout.write(
                f"Scores are up to date: run {latest.pk}, {latest.scores_written} scores{until}."
            )
        elif latest is not None:
            self.stdout.write(
                f"Scores: run {latest.pk} {latest.status}, {latest.scores_written} scores from "
                f"{latest.observations_read} observations."
            )
        lines = ["", "Demo accounts (new passwords on every start):"]
        for username, role, is_admin in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            user, _ = get_user_model().objects.get_or_create(
                username=username, defaults={"email": f"{username}@localhost"}
            )
            user.is_staff = user.is_superuser = is_admin
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role.value))
            lines.append(f"  {role.value:<14} username: {username:<8} password: {password}")
        self.stdout.write(self.style.SUCCESS("\n".join(lines) + "\n"))

from __future__ import annotations

import secrets
from typing import Any

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
        "Prepare the one-machine demo: load countries and the framework, recompute scores, "
        "and (re)create one demo user per role with fresh random passwords, printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("load_countries", stdout=self.stdout)
        call_command("load_framework", stdout=self.stdout)
        run = services.refresh_scores()
        self.stdout.write(
            f"Scores: run {run.pk} {run.status}, {run.scores_written} scores from "
            f"{run.observations_read} observations."
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

"""The set-up the data benches share: a fresh PostgreSQL database with the reference data,
Django configured as the one-machine default (tasks in process)."""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alert_latency import create_database, drop_database  # noqa: E402


def start_on_fresh_database() -> str:
    """Recreate the database ``$DATABASE_URL`` names (PostgreSQL), set Django up with
    tasks in process, migrate and load the countries and the framework; returns the URL.
    The caller drops it at the end with ``drop_database``."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("Set DATABASE_URL=postgres://... (the bench needs PostgreSQL).")
    drop_database(url)
    create_database(url)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "earlywarning.settings", "DEBUG": "true"})
    os.environ.pop("CELERY_BROKER_URL", None)  # tasks in process: the one-machine default
    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_countries", stdout=io.StringIO())
    call_command("load_framework", stdout=io.StringIO())
    return url

"""The Celery app and the one periodic schedule of the project.

Wiring as in the Celery docs for Django: configuration comes from Django settings
under the ``CELERY_`` namespace, tasks are discovered in the installed apps.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "earlywarning.settings")

app = Celery("earlywarning")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic job of the project lives here, crontab only, each with an expiry so
# that a backlog after an outage does not run the same job many times over.
app.conf.beat_schedule = {
    # Nightly full recompute of every country and period under the current weights.
    "recompute-all-scores-nightly": {
        "task": "indicators.tasks.recompute_all_scores",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 6 * 60 * 60},
    },
}

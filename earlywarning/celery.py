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
    # Recompute the scores that observations or weight changes asked for (the request rows
    # are the queue; the on-commit task is only a shortcut).
    "drain-recompute-requests": {
        "task": "indicators.tasks.drain_recompute_requests",
        "schedule": crontab(),
        "options": {"expires": 55},
    },
    # Run methodology previews, publications and calibrations asked for (the job rows are
    # the queue; the on-commit task is only a shortcut).
    "run-methodology-jobs": {
        "task": "indicators.tasks.run_methodology_jobs",
        "schedule": crontab(),
        "options": {"expires": 55},
    },
    # Import the analysts' uploaded files still waiting, or whose worker stopped (the upload
    # rows are the queue; the on-commit task is only a shortcut).
    "import-pending-uploads": {
        "task": "indicators.tasks.import_pending_uploads",
        "schedule": crontab(),
        "options": {"expires": 55},
    },
    # Send due alert notifications and retry failed ones (the outbox; on-commit sends are
    # only a shortcut).
    "dispatch-alert-notifications": {
        "task": "alerts.tasks.dispatch_pending_notifications",
        "schedule": crontab(),
        "options": {"expires": 55},
    },
    # Safety net: evaluate scoring runs and red-flag observations the on-commit path missed.
    "evaluate-missed-alerts": {
        "task": "alerts.tasks.evaluate_missed",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    # Re-send critical alerts left unacknowledged and escalate them to administrators.
    "escalate-unacknowledged-alerts": {
        "task": "alerts.tasks.escalate_unacknowledged_alerts",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    # Yesterday's alerts for digest subscribers; hourly so a failed send is retried (each
    # digest goes out once).
    "send-daily-digests": {
        "task": "alerts.tasks.send_daily_digests",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    # Monday's weekly summary for every focal point (created on Mondays); hourly every
    # day so that one that failed is retried during the week (each goes out once).
    "send-weekly-summaries": {
        "task": "alerts.tasks.send_weekly_summaries",
        "schedule": crontab(minute=10),
        "options": {"expires": 50 * 60},
    },
}

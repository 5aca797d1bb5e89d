"""Benchmark: from a red-flag observation committed to its e-mail accepted by SMTP.

Real parts only: PostgreSQL at ``$DATABASE_URL``, a Celery worker process (prefork, 2
processes, as in docker-compose) on Redis at ``$REDIS_URL`` (default
redis://127.0.0.1:6379/0) consuming a queue of its own, and an aiosmtpd server on
loopback. ``N`` (default 10) red-flag observations (12.1 at high, dated today, one
country each, so each opens its own alert) are recorded one by one through
``record_observations``, exactly as the analyst form does: the country recompute and the
red-flag evaluation are queued on commit, the evaluation queues the dispatch. Each
observation waits for its e-mail before the next.

Run with ``make bench-alerts``. A database the bench creates is dropped at the end; in
an existing one, the rows it added are deleted and the countries rescored. Target from
DESIGN.md: under 5 s.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scoring import machine  # noqa: E402  (after the path is set)

COUNT = int(os.environ.get("N", "10"))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SOURCE = "BENCHMARK alert latency"
QUEUE = f"earlywarning-bench-{uuid.uuid4().hex[:8]}"


class SmtpSink:
    """An SMTP server on loopback noting when each message was accepted (monotonic)."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.accepted: dict[str, float] = {}
        self.arrived = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.accepted[str(message["Subject"]).strip()] = time.monotonic()
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, subject: str, timeout: float) -> float:
        """When the first e-mail whose subject starts with ``subject`` was accepted."""

        def found() -> str | None:
            return next((s for s in self.accepted if s.startswith(subject)), None)

        with self.arrived:
            if not self.arrived.wait_for(found, timeout=timeout):
                raise SystemExit(f"no e-mail {subject!r}... within {timeout:.0f} s")
            return self.accepted[found() or subject]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def admin_connection(url: str) -> Any:
    import psycopg2

    parts = urlsplit(url)
    connection = psycopg2.connect(
        dbname="postgres",
        user=parts.username or "postgres",
        password=parts.password or "",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
    )
    connection.autocommit = True
    return connection


def create_database(url: str) -> bool:
    """Create the database if missing; True when this run created it (and drops it)."""
    name = urlsplit(url).path.lstrip("/")
    connection = admin_connection(url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        created = cursor.fetchone() is None
        if created:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return created


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    connection = admin_connection(url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def start_worker(url: str, smtp_port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = ROOT / "artifacts" / f"celery-worker-{QUEUE}.log"
    log_path.parent.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "true",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "SITE_URL": "http://bench.invalid",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "earlywarning",
            "worker",
            "--concurrency=2",
            "--loglevel=INFO",
            "-Q",
            QUEUE,
            "-n",
            f"{QUEUE}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit(f"Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return worker, log_path


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def measure(sink: SmtpSink, user: Any, countries: list[Any]) -> list[float]:
    from datetime import UTC, datetime

    from django.db import transaction

    from indicators.services import record_observations

    today = datetime.now(tz=UTC).date().isoformat()
    latencies = []
    for country in countries:
        committed: list[float] = []
        with transaction.atomic():
            # Registered before record_observations' own hooks: runs first after commit.
            transaction.on_commit(lambda done=committed: done.append(time.monotonic()))
            record_observations(
                rows=[
                    {
                        "country": country.iso3,
                        "indicator": "12.1",
                        "observed_on": today,
                        "value": 1.0,
                        "source": SOURCE,
                    }
                ],
                recorded_by=user,
            )
        # One e-mail for the country: the red flag, with what the recompute it waits for
        # shows ("[Critical] Afghanistan: red flag on 12.1" or a crossing first).
        accepted = sink.wait_for(f"[Critical] {country.name}: ", timeout=60)
        latencies.append(accepted - committed[0])
        print(f"  {country.iso3}: {latencies[-1]:.3f} s", flush=True)
    return latencies


def remove_rows(user: Any, countries: list[Any]) -> None:
    """In a database the bench did not create: delete what it added, rescore the rest."""
    from alerts.models import Alert
    from earlywarning.celery import app
    from indicators.models import Observation
    from indicators.services import refresh_scores

    app.conf.task_always_eager = True  # the worker is gone: queue nothing for it
    Alert.objects.filter(observation__source=SOURCE).delete()
    Observation.objects.filter(source=SOURCE).delete()
    user.delete()  # and its subscription and notifications
    refresh_scores(countries=[c.iso3 for c in countries])


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("Set DATABASE_URL=postgres://... (the bench needs PostgreSQL).")
    created = create_database(url)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "earlywarning.settings",
            "DEBUG": "true",
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        }
    )
    import logging

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
    from django.core.management import call_command
    from django.db import connections

    from alerts.models import Subscription
    from alerts.services import save_subscription
    from countries.models import Country
    from indicators.roles import Role

    worker = sink = user = None
    countries: list[Any] = []
    try:
        call_command("migrate", verbosity=0)
        call_command("load_countries", verbosity=0, stdout=io.StringIO())
        call_command("load_framework", verbosity=0, stdout=io.StringIO())
        # Countries without an active red-flag alert, so each observation opens one.
        countries = list(
            Country.objects.exclude(
                alerts__rule="red_flag", alerts__status__in=["open", "acknowledged"]
            ).order_by("iso3")[:COUNT]
        )
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        user = get_user_model().objects.create_user(
            f"bench-{QUEUE[-8:]}", email=f"bench-{QUEUE[-8:]}@example.org"
        )
        user.groups.set(Group.objects.filter(name=Role.FOCAL_POINT.value))
        save_subscription(
            subscription=Subscription(user=user, min_severity="warning"), countries=countries
        )
        port = free_port()
        sink = SmtpSink(port)
        sink.controller.start()
        worker, log_path = start_worker(url, port)
        print(f"Red-flag observation committed -> e-mail accepted by SMTP, {COUNT} times:")
        latencies = measure(sink, user, countries)
        print(
            f"median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s "
            f"(target < 5 s) on {machine()}; worker: Celery prefork x2 on Redis; "
            f"PostgreSQL {connections['default'].pg_version // 10000}"
        )
    finally:
        if worker is not None:
            stop_worker(worker)
            log_path.unlink(missing_ok=True)
        if sink is not None:
            sink.controller.stop()
        if created:
            connections.close_all()
            drop_database(url)
        elif user is not None:
            remove_rows(user, countries)


if __name__ == "__main__":
    main()

"""Shared fixtures: the framework and countries as data, and real services for integration tests.

Integration tests (marked ``integration``) talk to a real PostgreSQL, Redis and Celery
worker. On a developer's machine without those services they are skipped with the
reason; with ``CI=true`` a missing service fails the test instead, and any skipped
integration test is reported as a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from countries.services import load_countries
from indicators.roles import Role
from indicators.services import load_framework

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def skip_or_fail(reason: str) -> None:
    """Skip locally, fail in CI: CI must never pass on tests that did not run."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("integration"):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped in CI: {report.longrepr}"


def make_user(username: str, *roles: Role, **fields: Any) -> Any:
    """A user holding ``roles`` (groups created by the roles migration)."""
    user = get_user_model().objects.create_user(
        username,
        email=fields.pop("email", f"{username}@example.org"),
        password=fields.pop("password", "a-long-test-password"),
        **fields,
    )
    user.groups.set(Group.objects.filter(name__in=[role.value for role in roles]))
    return user


def pending_recomputes() -> list[str]:
    """ISO3 codes of the recompute requests not yet done ("all" for a full one), sorted."""
    from indicators.models import RecomputeRequest

    pending = RecomputeRequest.objects.filter(done_at__isnull=True)
    return sorted(iso3 or "all" for iso3 in pending.values_list("country__iso3", flat=True))


def last_recompute_request() -> int:
    """The id of the newest recompute request (0 if none): a mark to count from."""
    from indicators.models import RecomputeRequest

    return RecomputeRequest.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def recomputes_requested_after(mark: int) -> list[str]:
    """ISO3 codes ("all" for a full one) of the recompute requests made after ``mark``."""
    from indicators.models import RecomputeRequest

    made = RecomputeRequest.objects.filter(pk__gt=mark)
    return sorted(iso3 or "all" for iso3 in made.values_list("country__iso3", flat=True))


def publish_methodology(
    *,
    factor_weights: dict[str, float] | None = None,
    indicator_weights: dict[str, float] | None = None,
    staleness_days: dict[str, int] | None = None,
    thresholds: dict[str, float] | None = None,
    rationale: str = "Weights for this test.",
    today: Any = None,
) -> Any:
    """Draft a version from the published one with these changes and publish it now,
    as an administrator would (every score is recomputed under it); returns it."""
    from indicators import methodology, methodology_jobs

    draft = methodology.create_draft(by=None)
    methodology.edit_draft(
        draft,
        by=None,
        factor_weights=factor_weights,
        indicator_weights=indicator_weights,
        staleness_days=staleness_days,
        thresholds=thresholds,
    )
    return methodology_jobs.publish(draft, by=None, rationale=rationale, today=today)


@pytest.fixture
def analyst(db: None) -> Any:
    return make_user("ana", Role.ANALYST)


@pytest.fixture
def focal_point(db: None) -> Any:
    return make_user("fay", Role.FOCAL_POINT)


@pytest.fixture
def administrator(db: None) -> Any:
    return make_user("ada", Role.ADMINISTRATOR, is_staff=True)


@pytest.fixture
def no_role_user(db: None) -> Any:
    return make_user("nobody")


@pytest.fixture
def countries(db: None) -> None:
    load_countries()


@pytest.fixture
def framework(db: None) -> None:
    load_framework()


@pytest.fixture
def postgres(db: None) -> None:
    if connection.vendor != "postgresql":
        skip_or_fail("this test needs PostgreSQL (set DATABASE_URL=postgres://...)")


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _switch_broker(app: Any, **conf: Any) -> None:
    """Point our Celery app at another broker for this process.

    Other code (Celery's own CLI parsing, in the deployment tests) can leave a different
    app current, and shared tasks publish through the current app; the broker connection
    pools are cached on first use. So: make ours current and drop its pools, as Celery
    itself does after a fork.
    """
    app.set_current()
    app.conf.update(conf)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the worker process; a test module may override this fixture."""
    return {}


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[float, Any]] = []
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((time.monotonic(), message))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def celery_worker(
    transactional_db: None, settings: Any, celery_worker_env: dict[str, str]
) -> Iterator[str]:
    """A real ``celery worker`` process consuming a queue of its own on Redis.

    The worker reads and writes the test database; this process sends tasks through the
    broker instead of running them in process. Yields the queue name.
    """
    if connection.vendor != "postgresql":
        skip_or_fail("the Celery worker test needs PostgreSQL shared with the worker")
    if not _redis_answers():
        skip_or_fail(f"Redis does not answer at {REDIS_URL}")

    from earlywarning.celery import app

    queue = f"earlywarning-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DEBUG": "true",
        **celery_worker_env,
    }
    log_path = ROOT / "artifacts" / f"celery-worker-{queue}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "earlywarning",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")}
    _switch_broker(app, broker_url=REDIS_URL, task_always_eager=False, task_default_queue=queue)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Celery worker did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield queue
    finally:
        _switch_broker(app, **previous)
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()

"""Fault drills on the real services: PostgreSQL, Redis, a Celery worker, gunicorn.

1. The broker stops while an analyst records a red-flag assessment: a second
   redis-server, started by the test, is the broker of the worker and of the app; it is
   stopped during the write (before the commit) and started again afterwards. The queue
   is in the database, so once beat sends its sweeps through the restarted broker the
   country's scores are recomputed and the red-flag alert is raised.
2. An upload whose import takes longer than the request may (gunicorn with a timeout of
   a few seconds): the request answers with the upload's page at once; the page follows
   the import, done by the worker, and the recompute of the upload's countries.

Nothing here measures time: waits are guards against hanging, never assertions.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from django.utils import timezone

from alerts.models import Alert
from earlywarning.celery import app
from indicators.models import Indicator, Observation, ObservationUpload, RiskScore, ScoringRun
from indicators.services import record_observations
from tests.conftest import (
    ROOT,
    _free_port,
    _switch_broker,
    make_user,
    pending_recomputes,
    skip_or_fail,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("countries", "framework")]


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = 120.0) -> Any:
    """A guard against hanging, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class RedisServer:
    """A redis-server of the test's own, on a free port, with nothing kept on disk (a
    stop loses every queued message, as a crash would)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, what="redis-server to start", timeout=20)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=20)
        self.process = None
        assert not self.answers()

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def second_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        skip_or_fail("the broker drill needs the redis-server program")
    server = RedisServer()
    server.start()
    yield server
    if server.process is not None:
        server.stop()


# --- 1. The broker stops during a write ----------------------------------------------------


@pytest.fixture
def celery_worker_env(second_redis: RedisServer) -> dict[str, str]:
    # Every worker of this module uses the test's own redis-server as its broker (see
    # tests/conftest.py).
    return {"CELERY_BROKER_URL": second_redis.url}


def test_a_broker_outage_during_a_write_delays_the_recompute_and_the_red_flag_alert(
    second_redis: RedisServer, celery_worker: str, caplog: pytest.LogCaptureFixture
):
    _switch_broker(
        app, broker_url=second_redis.url, task_always_eager=False, task_default_queue=celery_worker
    )
    today = timezone.localdate()
    with transaction.atomic():
        record_observations(
            rows=[
                # Intent to destroy a group, at the top of the scale: a red flag.
                {
                    "country": "SDN",
                    "indicator": "10.1",
                    "observed_on": today.isoformat(),
                    "value": 1.0,
                    "source": "Field report",
                },
                {
                    "country": "SDN",
                    "indicator": "1.1",
                    "observed_on": "2024-12-31",
                    "value": 1.0,
                    "source": "UCDP",
                },
            ]
        )
        second_redis.stop()  # the broker goes down during the write, before it commits

    # The analyst's write stands; sending the recompute and the red-flag check failed.
    assert Observation.objects.filter(country__iso3="SDN").count() == 2
    assert pending_recomputes() == ["SDN"]
    assert "Could not run or queue" in caplog.text
    assert not Alert.objects.exists()

    second_redis.start()
    _switch_broker(app, broker_url=second_redis.url)  # a fresh connection, as after a restart
    # Beat's sweeps, sent as beat sends them at its next ticks (every minute for the
    # recompute requests, every five for missed alerts).
    for entry in ("drain-recompute-requests", "evaluate-missed-alerts"):
        app.send_task(app.conf.beat_schedule[entry]["task"])

    wait_for(lambda: not pending_recomputes(), what="the recompute")
    run = ScoringRun.objects.get()
    assert run.status == ScoringRun.Status.SUCCEEDED
    assert RiskScore.objects.filter(run=run, country__iso3="SDN").exists()
    alert = wait_for(
        lambda: Alert.objects.filter(country__iso3="SDN", rule="red_flag").first(),
        what="the red-flag alert",
    )
    assert alert.severity == "critical"


# --- 2. An upload longer than the request may take -----------------------------------------

# Gunicorn kills a request that runs longer than this (its default is 30 s; the drill keeps
# the import well above it with 100,000 rows).
REQUEST_TIMEOUT_SECONDS = 2
UPLOAD_ROWS = 100_000


def large_upload() -> bytes:
    """100,000 distinct SYNTHETIC assessments of 40 countries, as a CSV."""
    from countries.models import Country

    countries = list(Country.objects.order_by("iso3").values_list("iso3", flat=True)[:40])
    indicators = list(Indicator.objects.values_list("code", flat=True))
    rng = random.Random(11)
    seen: set[tuple[str, str, str]] = set()
    lines = ["country,indicator,date,value,source"]
    while len(seen) < UPLOAD_ROWS:
        key = (
            rng.choice(countries),
            rng.choice(indicators),
            f"{rng.randint(1995, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        )
        if key not in seen:
            seen.add(key)
            lines.append(f"{key[0]},{key[1]},{key[2]},{rng.randint(0, 3)},SYNTHETIC drill")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def web(celery_worker: str, second_redis: RedisServer) -> Iterator[str]:
    """gunicorn serving the app on loopback with a short request timeout, sending tasks to
    the test's worker (through the module's redis-server); yields its base URL."""
    db = connection.settings_dict
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": second_redis.url,
        "CELERY_TASK_DEFAULT_QUEUE": celery_worker,
        "DEBUG": "true",
        "SECRET_KEY": settings.SECRET_KEY,  # the session below is signed with it
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    log_path = ROOT / "artifacts" / f"gunicorn-{celery_worker}.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "earlywarning.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            str(REQUEST_TIMEOUT_SECONDS),
            "--preload",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if server.poll() is not None:
            pytest.fail(f"gunicorn stopped:\n{log_path.read_text()}")
        try:
            return requests.get(f"{base}/accounts/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(answers, what="gunicorn to start", timeout=60)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def signed_in(user: Any) -> requests.Session:
    """A browser session of ``user`` (a session row, as signing in makes)."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    browser = requests.Session()
    browser.cookies.set("sessionid", store.session_key)
    return browser


def test_an_upload_longer_than_the_request_timeout_answers_at_once_and_is_imported(
    web: str, celery_worker: str
):
    from django.contrib.auth.models import Group

    from indicators.roles import Role

    # An earlier transactional test's flush removes the groups the roles migration made.
    Group.objects.get_or_create(name=Role.ANALYST.value)
    analyst = make_user("ana", Role.ANALYST)
    browser = signed_in(analyst)
    form = browser.get(f"{web}/observations/upload/", timeout=10)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    content = large_upload()

    response = browser.post(
        f"{web}/observations/upload/",
        data={"csrfmiddlewaretoken": token},
        files={"file": ("assessments.csv", content, "text/csv")},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:2000]
    progress_url = f"{web}{response.headers['Location']}"
    page = browser.get(progress_url, timeout=10).text
    assert "You can leave this page" in page or "created" in page
    assert 'http-equiv="refresh"' in page

    def recomputed() -> str | None:
        text = browser.get(progress_url, timeout=10).text
        return text if "Scores recomputed for" in text else None

    page = wait_for(recomputed, what="the import and the recompute", timeout=300)
    stored = ObservationUpload.objects.get()
    assert stored.status == "succeeded"
    assert (stored.rows, stored.result["created"]) == (UPLOAD_ROWS, UPLOAD_ROWS)
    assert f"{UPLOAD_ROWS} created, 0 updated, 0 unchanged" in page
    assert Observation.objects.filter(source="SYNTHETIC drill").count() == UPLOAD_ROWS
    assert not pending_recomputes()
    run = ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).latest("started_at")
    assert set(stored.result["countries"]) <= set(
        RiskScore.objects.filter(run=run).values_list("country__iso3", flat=True)
    )
    # For the record (not asserted): how long the import took in the worker.
    print(f"upload import in the worker: {stored.result['seconds']} s")

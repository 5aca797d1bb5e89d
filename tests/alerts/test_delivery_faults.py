"""Fault drills for the outbox on real services: PostgreSQL and an SMTP server on loopback.

Two dispatchers racing over a relay slower than the lease, and a dispatcher killed in the
middle of a send: either way each e-mail is accepted exactly once per Message-ID.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from alerts import services
from alerts.models import Notification
from indicators.roles import Role
from tests.alerts.conftest import red_flags, subscribe
from tests.conftest import ROOT, SmtpSink, make_user

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("scoring")]

# Short leases keep the drills quick; the relay is slower than the lease on purpose.
LEASE = timedelta(seconds=2)
RELAY_DELAY = 3.0  # seconds the slow relay takes to accept each message


class SlowRelay(SmtpSink):
    """Accepts every message, each only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class StallingRelay(SmtpSink):
    """Accepts every message but the ``stall``-th, which it keeps waiting, then refuses."""

    def __init__(self, stall: int) -> None:
        super().__init__()
        self.stall = stall
        self.received = 0
        self.stalling = threading.Event()
        self.released = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        if self.received != self.stall:
            return await super().handle_DATA(server, session, envelope)
        self.stalling.set()
        while not self.released.is_set():
            await asyncio.sleep(0.05)
        return "451 4.3.0 Not accepted, try again later"

    def stop(self) -> None:
        self.released.set()
        super().stop()


def accepted_ids(relay: SmtpSink) -> Counter[str]:
    return Counter(message["Message-ID"] for _, message in relay.messages)


def wait_until(condition: Callable[[], Any], *, what: str, timeout: float = 60.0) -> None:
    """A guard against hanging, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def outbox(transactional_db: None, postgres: None, settings: Any, monkeypatch) -> list[str]:
    """Six pending e-mails (two focal points, three red flags), committed for every
    process to see; nothing is dispatched on commit, the drills do it."""
    monkeypatch.setattr(services, "_queue_dispatch", lambda: None)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "alerts@earlywarning.test"
    for name in ("fay", "fil"):
        subscribe(make_user(name, Role.FOCAL_POINT), countries=("MMR", "SDN", "SYR"))
    red_flags("MMR", "SDN", "SYR")
    ids = list(Notification.objects.values_list("message_id", flat=True))
    assert len(ids) == 6
    return ids


@pytest.fixture
def slow_relay(settings: Any) -> Iterator[SlowRelay]:
    relay = SlowRelay(RELAY_DELAY)
    relay.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", relay.port
    yield relay
    relay.stop()


@pytest.fixture
def stalling_relay(settings: Any) -> Iterator[StallingRelay]:
    relay = StallingRelay(stall=2)
    relay.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", relay.port
    yield relay
    relay.stop()


def test_two_dispatchers_over_a_relay_slower_than_the_lease_send_each_email_once(
    outbox, slow_relay
):
    assert LEASE.total_seconds() < RELAY_DELAY  # every single send outlasts its lease
    results: dict[str, list[services.DispatchResult]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    deadline = time.monotonic() + 120

    def dispatcher(name: str) -> None:
        try:
            while Notification.objects.filter(sent_at__isnull=True).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the outbox did not drain")
                result = services.dispatch_pending(lease=LEASE)
                results[name].append(result)
                if not result.sent:
                    time.sleep(0.1)  # the other one holds the rest
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert accepted_ids(slow_relay) == Counter(outbox)  # each once, none missing
    sent_by = {name: sum(r.sent for r in runs) for name, runs in results.items()}
    assert sum(sent_by.values()) == 6
    assert all(sent_by.values()), f"the dispatchers did not run side by side: {sent_by}"
    # Nobody ever claimed a row another dispatcher was still sending.
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}
    assert not Notification.objects.filter(sent_at__isnull=True).exists()


DISPATCHER = """
import sys
from datetime import timedelta

import django

django.setup()
from alerts import services

services.dispatch_pending(lease=timedelta(seconds=float(sys.argv[1])))
"""


def test_rows_held_by_a_killed_dispatcher_are_sent_once_after_its_lease_runs_out(
    outbox, stalling_relay
):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "earlywarning.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(stalling_relay.port),
        "DEFAULT_FROM_EMAIL": "alerts@earlywarning.test",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, str(LEASE.total_seconds())], cwd=ROOT, env=env
    )
    try:
        wait_until(
            lambda: stalling_relay.stalling.is_set() or worker.poll() is not None,
            what="the dispatcher to reach the second e-mail",
        )
        assert worker.poll() is None, "the dispatcher ended before the relay stalled"
    finally:
        worker.kill()  # SIGKILL: no clean-up of any kind
        worker.wait()

    unsent = Notification.objects.filter(sent_at__isnull=True)
    (held,) = unsent.filter(claimed_until__isnull=False)
    assert held.claimed_until > held.next_attempt_at
    assert unsent.count() == 5  # one was accepted before the stall
    # Until its lease runs out, the dead dispatcher's row is left alone; the rest go.
    before = services.dispatch_pending(lease=LEASE, clock=lambda: held.claimed_until)
    assert before.sent == 4
    assert list(unsent.values_list("pk", flat=True)) == [held.pk]

    stalling_relay.released.set()
    wait_until(lambda: timezone.now() > held.claimed_until, what="the lease to run out")
    after = services.dispatch_pending(lease=LEASE)
    assert after.sent == 1
    assert accepted_ids(stalling_relay) == Counter(outbox)  # each once, none missing
    held.refresh_from_db()
    assert (held.attempts, held.last_error) == (2, "")
    assert not unsent.exists()

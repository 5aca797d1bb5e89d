"""Leases on outbox rows: taken at claim time, renewed while the send runs, fenced."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from alerts import leases, services
from alerts.models import Notification
from alerts.transports import TRANSPORTS
from tests.alerts.conftest import red_flags, subscribe

pytestmark = pytest.mark.usefixtures("scoring")
NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)


class SteppingClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


def unsent() -> Any:
    return Notification.objects.filter(sent_at__isnull=True)


def test_a_batch_longer_than_the_lease_leases_each_row_from_its_own_claim(focal_point, monkeypatch):
    # The failure: each send takes 2 minutes, so the third row is claimed 4
    # minutes into a batch with a 5-minute lease. A second dispatcher starting 6
    # minutes in must leave that row alone (it is being sent) and take only the rest.
    subscribe(focal_point, countries=("MMR", "SDN", "SYR", "AFG"))
    red_flags("MMR", "SDN", "SYR", "AFG")
    first_ids = list(unsent().order_by("next_attempt_at", "pk").values_list("pk", flat=True))
    clock = SteppingClock(NOW)
    accepted: list[str] = []
    second: list[services.DispatchResult] = []

    class SlowRelay:
        def send(self, notification: Notification) -> None:
            clock.advance(timedelta(minutes=2))
            if notification.pk == first_ids[2] and not second:
                second.append(services.DispatchResult(0, 0, 0))  # once, not recursively
                second[0] = services.dispatch_pending(now=NOW, clock=clock)
            accepted.append(notification.message_id)

    monkeypatch.setitem(TRANSPORTS, "email", SlowRelay)
    first = services.dispatch_pending(now=NOW, clock=clock)
    assert (first.sent, second[0].sent) == (3, 1)
    assert Counter(accepted) == Counter(Notification.objects.values_list("message_id", flat=True))
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}
    assert not unsent().exists()


def test_a_lease_taken_over_after_it_ran_out_fences_off_its_old_holder(focal_point):
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR")
    pk = Notification.objects.get().pk
    old = leases.claim(unsent(), pk=pk, length=timedelta(minutes=5), clock=lambda: NOW)
    assert old is not None
    assert leases.claim(unsent(), pk=pk, length=timedelta(minutes=5), clock=lambda: NOW) is None
    later = NOW + timedelta(minutes=6)  # the old holder stopped renewing
    new = leases.claim(unsent(), pk=pk, length=timedelta(minutes=5), clock=lambda: later)
    assert new is not None
    assert not old.renew()
    assert not old.release(sent_at=NOW)
    assert Notification.objects.get().claimed_until == later + timedelta(minutes=5)
    assert new.release(sent_at=later)
    assert Notification.objects.get().sent_at == later


def test_a_dispatcher_whose_lease_was_taken_over_still_records_what_it_sent(
    focal_point, monkeypatch, caplog
):
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR")

    class TakenOverMidSend:
        def send(self, notification: Notification) -> None:
            # Another dispatcher claims the row as if the lease had run out.
            Notification.objects.filter(pk=notification.pk).update(
                claimed_until=NOW + timedelta(days=1)
            )

    monkeypatch.setitem(TRANSPORTS, "email", TakenOverMidSend)
    assert services.dispatch_pending(now=NOW).sent == 1
    notification = Notification.objects.get()
    assert (notification.sent_at, notification.claimed_until) == (NOW, None)
    assert "sent after its lease was lost" in caplog.text


def test_a_failure_after_the_lease_was_taken_over_leaves_the_row_to_its_new_holder(
    focal_point, monkeypatch
):
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR")
    taken = NOW + timedelta(days=1)

    class TakenOverThenFails:
        def send(self, notification: Notification) -> None:
            Notification.objects.filter(pk=notification.pk).update(claimed_until=taken)
            raise ConnectionError("relay went away")

    monkeypatch.setitem(TRANSPORTS, "email", TakenOverThenFails)
    result = services.dispatch_pending(now=NOW)
    assert (result.sent, result.retrying, result.failed) == (0, 0, 0)
    notification = Notification.objects.get()
    assert (notification.claimed_until, notification.last_error) == (taken, "")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_held_lease_is_renewed_while_the_work_runs_so_nobody_else_claims_the_row(
    postgres, focal_point, monkeypatch
):
    monkeypatch.setattr(services, "_queue_dispatch", lambda: None)  # no dispatch on commit
    subscribe(focal_point, countries=("MMR",))
    red_flags("MMR")
    pk = Notification.objects.get().pk
    length = timedelta(seconds=1.5)
    held = leases.claim(unsent(), pk=pk, length=length, clock=timezone.now)
    assert held is not None
    first_end = held.until
    with held.kept():
        # Work on past the end of the first lease: the renewals keep the row ours.
        deadline = time.monotonic() + 60
        while timezone.now() <= first_end + length and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Notification.objects.get().claimed_until > first_end + length
        assert leases.claim(unsent(), pk=pk, length=length, clock=timezone.now) is None
    assert held.release(sent_at=NOW)
    assert Notification.objects.get().claimed_until is None

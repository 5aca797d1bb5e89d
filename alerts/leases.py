"""Leases on outbox rows: a worker holds a row while it sends it, and keeps holding it.

A lease is the row's ``claimed_until`` timestamp. It is taken with a conditional UPDATE
(only a row nobody holds, or whose lease has run out, is claimed) and set from the clock
*at that moment*, never from when the batch began, so the rows a long batch reaches late
are leased as fully as its first. While the row is being sent, a background thread pushes
the lease forward every third of its length: a send slower than the lease (a crawling
relay) is never mistaken for a dead worker. Only a worker that stops renewing (killed, or
cut off from the database) loses its row, to the next dispatcher, once the lease has run
out.

The value of ``claimed_until`` is also the holder's token: a renewal or the final update
matches the value this holder last wrote, so a worker whose lease was taken over never
writes over the new holder's claim.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Model, Q, QuerySet

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def unclaimed(moment: datetime) -> Q:
    """Rows nobody holds at ``moment``: never claimed, released, or their lease ran out."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=moment)


class Lease:
    """One worker's hold on one row, from ``claim`` until ``release``."""

    def __init__(
        self, model: type[Model], pk: Any, until: datetime, length: timedelta, clock: Clock
    ) -> None:
        self.model = model
        self.pk = pk
        self.until = until
        self.length = length
        self.clock = clock

    def _held(self) -> QuerySet[Any]:
        return self.model._default_manager.filter(pk=self.pk, claimed_until=self.until)

    def renew(self) -> bool:
        """Push the lease to one full length from now; False if it is no longer ours."""
        until = self.clock() + self.length
        if not self._held().update(claimed_until=until):
            return False
        self.until = until
        return True

    def release(self, **fields: Any) -> bool:
        """Write ``fields`` and give the row up, only while it is still ours.

        Returns False (and writes nothing) when another worker took the row over.
        """
        return bool(self._held().update(claimed_until=None, **fields))

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        """Renew the lease every third of its length for as long as the block runs.

        The renewing thread touches the database only when the block outlasts a third of
        the lease, so a quick send costs no query. ``release`` after the block.
        """
        stop = threading.Event()
        thread = threading.Thread(
            target=self._keep, args=(stop,), name=f"lease-{self.model.__name__}-{self.pk}"
        )
        thread.daemon = True  # a dying worker must not wait for it
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def _keep(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.length.total_seconds() / 3):
                try:
                    if not self.renew():
                        logger.warning(
                            "%s %s: lease lost while sending (another worker took it over)",
                            self.model.__name__,
                            self.pk,
                        )
                        return
                except Exception:
                    # The database may be back before the lease runs out: try again at
                    # the next tick rather than give the row up.
                    logger.exception("%s %s: lease not renewed", self.model.__name__, self.pk)
        finally:
            connections.close_all()  # this thread's own connections only


def claim(
    rows: QuerySet[Any], *, pk: Any, length: timedelta, clock: Clock, **fields: Any
) -> Lease | None:
    """Claim row ``pk`` of ``rows`` for ``length`` from now, writing ``fields`` with it.

    ``rows`` says which rows may be claimed at all (e.g. unsent and due); a row held by a
    live lease is never claimed. Returns the lease, or None if another worker has the row
    (or it is no longer among ``rows``).
    """
    moment = clock()
    until = moment + length
    claimed = rows.filter(pk=pk).filter(unclaimed(moment)).update(claimed_until=until, **fields)
    return Lease(rows.model, pk, until, length, clock) if claimed else None

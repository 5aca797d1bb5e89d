"""A small brake on password guessing: failed sign-ins counted per user name and address.

After ``MAX_FAILURES`` failed attempts for one user name from one address within
``WINDOW_SECONDS``, sign-in is refused for that pair (on the dashboard's sign-in page and
the admin's alike) until the oldest of those failures is ``WINDOW_SECONDS`` old, even with
the right password.

The failures live in Django's default cache, which the settings make one cache shared by
every process (Redis, or the database on the one-machine default): a count kept per
process would let each web worker allow its own ``MAX_FAILURES``.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def _slots(username: str, address: str) -> list[str]:
    """One cache key per failure that can count, ``MAX_FAILURES`` of them."""
    # Hashed so that arbitrary user input never becomes part of a cache key.
    digest = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()
    return [f"login-failures:{digest}:{slot}" for slot in range(MAX_FAILURES)]


def failures(*, username: str, address: str) -> int:
    """Failed attempts for this user name from this address within the window (capped)."""
    return len(cache.get_many(_slots(username, address)))


def is_locked_out(*, username: str, address: str) -> bool:
    """True when this user name has failed too often from this address lately."""
    return failures(username=username, address=address) >= MAX_FAILURES


def record_failure(*, username: str, address: str) -> int:
    """Count one failed attempt; returns the count within the window.

    Each failure takes a free slot with ``cache.add``, which is atomic in every shared
    backend (SET NX in Redis, an insert under a unique key in the database): failures
    arriving at the same moment from several workers are all counted, where a read, add
    one, write counter would lose some.
    """
    slots = _slots(username, address)
    for slot in slots:
        if cache.add(slot, 1, WINDOW_SECONDS):
            break
    return len(cache.get_many(slots))


def clear_failures(*, username: str, address: str) -> None:
    """Forget the failures after a successful sign-in."""
    cache.delete_many(_slots(username, address))

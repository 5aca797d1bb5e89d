"""A small brake on password guessing: failed sign-ins counted per user name and address.

After ``MAX_FAILURES`` failed attempts for one user name from one address within
``WINDOW_SECONDS``, sign-in is refused for that pair until the window ends, even with
the right password. The counts live in Django's cache: with the default local-memory
cache each server process counts on its own, so configure a shared cache (Redis) in
production for an exact limit.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def _key(username: str, address: str) -> str:
    # Hashed so that arbitrary user input never becomes part of a cache key.
    digest = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()
    return f"login-failures:{digest}"


def is_locked_out(*, username: str, address: str) -> bool:
    """True when this user name has failed too often from this address lately."""
    return int(cache.get(_key(username, address), 0)) >= MAX_FAILURES


def record_failure(*, username: str, address: str) -> int:
    """Count one failed attempt; returns the count within the current window."""
    key = _key(username, address)
    # The window starts at the first failure: add() sets the expiry only once.
    cache.add(key, 0, WINDOW_SECONDS)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, WINDOW_SECONDS)
        return 1


def clear_failures(*, username: str, address: str) -> None:
    """Forget the failures after a successful sign-in."""
    cache.delete(_key(username, address))

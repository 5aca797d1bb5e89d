"""Strict readers for configuration from environment variables.

Each helper either returns a well-typed value or raises ``ImproperlyConfigured``
naming the variable, so a typo in a deployment fails at start-up instead of
silently falling back to a default.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    """The variable's value, or ``default``; raises if unset and no default is given."""
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no), not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None


def env_date(name: str, default: date) -> date:
    """A date written YYYY-MM-DD (``fromisoformat`` alone would also take 19000101)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a date YYYY-MM-DD, not {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Used only with DEBUG when no SECRET_KEY is set; refused without DEBUG.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-true"
# Keys that are public (examples, placeholders): each is as good as no key at all.
KNOWN_PLACEHOLDER_KEYS = {DEVELOPMENT_SECRET_KEY, "change-me-to-a-long-random-string"}
MIN_SECRET_KEY_LENGTH = 50  # Django's own deployment check asks for this much


def check_secret_key(key: str) -> None:
    """Raise ``ImproperlyConfigured`` unless ``key`` can sign sessions and links in
    production: set, not a published placeholder, long and varied enough."""
    advice = "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if not key:
        raise ImproperlyConfigured(f"SECRET_KEY must be set unless DEBUG is true ({advice}).")
    # "change-me..." as in .env.example; "django-insecure-..." as startproject writes it.
    if key in KNOWN_PLACEHOLDER_KEYS or "change-me" in key or key.startswith("django-insecure"):
        raise ImproperlyConfigured(
            f"SECRET_KEY is a placeholder (such as the example in .env.example): set a long "
            f"random value ({advice})."
        )
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too short or too plain: use at least {MIN_SECRET_KEY_LENGTH} "
            f"random characters ({advice})."
        )


# The one-machine default cache: a table in the database (``manage.py createcachetable``).
DATABASE_CACHE_TABLE = "earlywarning_cache"


def parse_cache_url(url: str) -> dict[str, Any]:
    """Turn ``redis://host:port/db`` (or ``rediss://``, ``unix://``) into a CACHES entry for
    Django's Redis cache; an empty URL gives the database cache.
    """
    if not url:
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DATABASE_CACHE_TABLE,
            # Counts of many clients (one per address for the API throttle) must not be
            # culled at Django's default of 300 entries.
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    if urlsplit(url).scheme in {"redis", "rediss", "unix"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(
        f"CACHE_URL must start with redis://, rediss:// or unix://, or be empty, not {url!r}."
    )


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn ``sqlite:///path`` or ``postgres://user:pass@host:port/name`` into a DATABASES entry.

    A relative SQLite path is taken from ``base_dir``.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///db.sqlite3 -> "db.sqlite3"; sqlite:////abs/path -> "/abs/path"
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no SQLite file.")
        name = Path(path) if Path(path).is_absolute() else base_dir / path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(name)}
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        name = parts.path.lstrip("/")
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database.")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(name),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:// or postgres://, not {parts.scheme or url!r}."
    )

"""The strict environment helpers that every setting is read through."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from earlywarning.env import (
    DEVELOPMENT_SECRET_KEY,
    check_secret_key,
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_cache_url,
    parse_database_url,
)

ROOT = Path(__file__).resolve().parent.parent


def test_env_str_requires_a_value_when_there_is_no_default(monkeypatch):
    monkeypatch.delenv("EW_TEST", raising=False)
    with pytest.raises(ImproperlyConfigured, match="EW_TEST must be set"):
        env_str("EW_TEST")
    assert env_str("EW_TEST", "fallback") == "fallback"


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("no", False), ("0", False), ("off", False)]
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw: str, expected: bool):
    monkeypatch.setenv("EW_TEST", raw)
    assert env_bool("EW_TEST", not expected) is expected


def test_env_bool_and_int_refuse_garbage(monkeypatch):
    monkeypatch.setenv("EW_TEST", "maybe")
    with pytest.raises(ImproperlyConfigured, match="boolean"):
        env_bool("EW_TEST", False)
    with pytest.raises(ImproperlyConfigured, match="integer"):
        env_int("EW_TEST", 1)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("EW_TEST", "a.org, b.org,,")
    assert env_list("EW_TEST", []) == ["a.org", "b.org"]


def test_database_urls():
    base = Path("/srv/app")
    assert (
        parse_database_url("sqlite:///db.sqlite3", base_dir=base)["NAME"] == "/srv/app/db.sqlite3"
    )
    assert parse_database_url("sqlite:////tmp/x.db", base_dir=base)["NAME"] == "/tmp/x.db"
    pg = parse_database_url("postgres://u:p%40ss@db.local:5433/ew", base_dir=base)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "ew",
        "u",
        "p@ss",
        "db.local",
        "5433",
    )
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        parse_database_url("mysql://x/y", base_dir=base)


def test_cache_urls():
    assert parse_cache_url("") == {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "earlywarning_cache",
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    }
    assert parse_cache_url("redis://redis:6379/1") == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://redis:6379/1",
    }
    assert parse_cache_url("rediss://:pw@cache.example.org:6380/0")["BACKEND"].endswith(
        "RedisCache"
    )
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL"):
        parse_cache_url("memcached://x:11211")


def example_secret_key() -> str:
    (line,) = [
        line
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith("SECRET_KEY=")
    ]
    return line.partition("=")[2]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must be set"),
        ("example", "placeholder"),  # replaced by .env.example's value below
        ("change-me-" + "x" * 60, "placeholder"),
        (DEVELOPMENT_SECRET_KEY, "placeholder"),
        ("django-insecure-" + "k3y" * 20, "placeholder"),
        ("a-short-but-random-key-Q9v", "too short"),
        ("ab" * 40, "too short or too plain"),
    ],
)
def test_production_refuses_missing_placeholder_and_weak_secret_keys(key: str, message: str):
    with pytest.raises(ImproperlyConfigured, match=message):
        check_secret_key(example_secret_key() if key == "example" else key)


def test_a_long_random_secret_key_is_accepted():
    check_secret_key(secrets.token_urlsafe(50))


def run_settings(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with only ``env`` (the settings read it at import)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = run_settings("import earlywarning.settings", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_refuse_to_start_with_the_example_key():
    result = run_settings(
        "import earlywarning.settings", DEBUG="false", SECRET_KEY=example_secret_key()
    )
    assert result.returncode != 0
    assert "SECRET_KEY is a placeholder" in result.stderr


SHOW_SECURITY = (
    "from earlywarning import settings as s; "
    "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
    "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.CACHES['default']['BACKEND'])"
)


def test_production_defaults_are_the_safe_ones():
    shown = run_settings(
        SHOW_SECURITY,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        CACHE_URL="redis://redis:6379/1",
    )
    redirect, hsts, subdomains, session, csrf, cache = shown.stdout.split()
    assert (redirect, hsts, subdomains, session, csrf) == (
        "True",
        "31536000",
        "True",
        "True",
        "True",
    )
    assert cache == "django.core.cache.backends.redis.RedisCache"


def test_debug_relaxes_them_for_plain_http_on_one_machine():
    shown = run_settings(SHOW_SECURITY, DEBUG="true")
    redirect, hsts, subdomains, session, csrf, cache = shown.stdout.split()
    assert (redirect, hsts, subdomains, session, csrf) == ("False", "0", "False", "False", "False")
    assert cache == "django.core.cache.backends.db.DatabaseCache"


def test_env_date_reads_only_the_iso_form(monkeypatch):
    from datetime import date

    from earlywarning.env import env_date

    monkeypatch.setenv("EW_TEST", "1950-06-30")
    assert env_date("EW_TEST", date(1900, 1, 1)) == date(1950, 6, 30)
    for raw in ("19500630", "30/06/1950", "1950-02-30"):
        monkeypatch.setenv("EW_TEST", raw)
        with pytest.raises(ImproperlyConfigured, match="EW_TEST must be a date YYYY-MM-DD"):
            env_date("EW_TEST", date(1900, 1, 1))
    monkeypatch.delenv("EW_TEST")
    assert env_date("EW_TEST", date(1900, 1, 1)) == date(1900, 1, 1)

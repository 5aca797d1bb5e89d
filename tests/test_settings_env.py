"""The strict environment helpers that every setting is read through."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from earlywarning.env import (
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_cache_url,
    parse_database_url,
)


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


def test_production_settings_refuse_to_start_without_a_secret_key():
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; from django.conf import settings; import earlywarning.settings",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "DEBUG": "false"},
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr

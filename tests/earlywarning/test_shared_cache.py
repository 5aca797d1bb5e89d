"""One cache shared by every process: the login lockout (dashboard and admin) and the API
throttles count each client once, however many web workers serve it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from earlywarning.env import DATABASE_CACHE_TABLE
from indicators import login_throttle
from tests.conftest import REDIS_URL, ROOT, skip_or_fail

ADDRESS = "127.0.0.1"  # the test client's REMOTE_ADDR
PASSWORD = "a-long-test-password"


@pytest.fixture(autouse=True)
def _empty_cache(db: None) -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def sign_in(client: Any, url: str, username: str, password: str) -> Any:
    return client.post(url, {"username": username, "password": password})


def test_the_default_cache_is_a_table_in_the_database():
    assert settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")
    assert settings.CACHES["default"]["LOCATION"] == DATABASE_CACHE_TABLE
    assert DATABASE_CACHE_TABLE in connection.introspection.table_names()


def test_the_admin_sign_in_locks_out_after_too_many_wrong_passwords(client, administrator):
    url = reverse("admin:login")
    for _ in range(login_throttle.MAX_FAILURES):
        response = sign_in(client, url, "ada", "wrong")
        assert "Please enter the correct username and password" in response.content.decode()
    refused = sign_in(client, url, "ada", PASSWORD)  # even the right password
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # The same lockout: the dashboard's sign-in refuses too.
    assert sign_in(client, reverse("login"), "ada", PASSWORD).status_code == 429


def test_dashboard_failures_count_towards_the_admin_lockout_and_success_clears_them(
    client, administrator
):
    for _ in range(login_throttle.MAX_FAILURES - 1):
        sign_in(client, reverse("login"), "ada", "wrong")
    assert login_throttle.failures(username="ada", address=ADDRESS) == 4
    response = sign_in(client, reverse("admin:login"), "ada", PASSWORD)
    assert response.status_code == 302  # signed in: the fifth attempt was right
    assert login_throttle.failures(username="ada", address=ADDRESS) == 0


def test_a_right_password_on_a_non_staff_account_is_not_a_failure(client, analyst):
    response = sign_in(client, reverse("admin:login"), "ana", PASSWORD)
    assert "Please enter the correct username and password" in response.content.decode()
    assert login_throttle.failures(username="ana", address=ADDRESS) == 0


def test_failures_arriving_together_are_all_counted():
    # Two web workers read the same count at once: a read-add-write counter would count
    # one of these; each failure takes its own slot instead.
    for _ in range(3):
        login_throttle.record_failure(username="ada", address=ADDRESS)
    assert login_throttle.failures(username="ada", address=ADDRESS) == 3
    for _ in range(5):
        login_throttle.record_failure(username="ada", address=ADDRESS)
    assert login_throttle.is_locked_out(username="ada", address=ADDRESS)
    assert not login_throttle.is_locked_out(username="ada", address="192.0.2.7")


# --- across processes ------------------------------------------------------------------

# Another process, as another gunicorn worker would be: it records the failures.
FAIL_IN_ANOTHER_PROCESS = """
import sys

import django

django.setup()
from indicators import login_throttle

for _ in range(login_throttle.MAX_FAILURES):
    login_throttle.record_failure(username=sys.argv[1], address=sys.argv[2])
print(login_throttle.failures(username=sys.argv[1], address=sys.argv[2]))
"""

# ... or it makes anonymous API requests, under a rate of 2 a minute.
REQUEST_IN_ANOTHER_PROCESS = """
import django

django.setup()
from django.test import Client

codes = [Client(HTTP_HOST="localhost").get("/api/v1/countries/").status_code for _ in range(2)]
print(codes)
"""


def run_elsewhere(script: str, *args: str, **env: str) -> str:
    db = connection.settings_dict
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "earlywarning.settings",
            "DEBUG": "true",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@"
            f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def redis_cache(settings: Any) -> Iterator[str]:
    """This process on the Redis cache a CACHE_URL gives; yields the URL for the other."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        skip_or_fail(f"Redis does not answer at {REDIS_URL}")
    url = REDIS_URL.rsplit("/", 1)[0] + "/3"  # a database of its own, not the broker's
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    yield url
    cache.clear()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_failures_counted_by_another_process_lock_out_the_admin_sign_in(
    request, postgres, client, administrator, backend: str
):
    env = {}
    if backend == "redis":
        env["CACHE_URL"] = request.getfixturevalue("redis_cache")
    username = "ada"
    printed = run_elsewhere(FAIL_IN_ANOTHER_PROCESS, username, ADDRESS, **env)
    assert printed == str(login_throttle.MAX_FAILURES)
    assert login_throttle.is_locked_out(username=username, address=ADDRESS)
    refused = sign_in(client, reverse("admin:login"), username, PASSWORD)
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_the_api_throttle_counts_requests_served_by_another_process(
    request, postgres, monkeypatch, backend: str
):
    env = {"API_THROTTLE_ANON": "2/min"}
    if backend == "redis":
        env["CACHE_URL"] = request.getfixturevalue("redis_cache")
    assert run_elsewhere(REQUEST_IN_ANOTHER_PROCESS, **env) == "[401, 401]"
    # DRF reads the rates once, at import: give this process the other one's.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": None})
    response = APIClient(HTTP_HOST="localhost").get("/api/v1/countries/")
    assert response.status_code == 429

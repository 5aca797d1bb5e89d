"""Benchmark: server time of the dashboard's overview and country pages.

The data is SYNTHETIC (public data sets are not available yet): the reference volume
of ``bench/scoring.py``, 195 countries x every framework indicator x 30 years of
observations (about 1 million), scored monthly (360 month ends, about 70,000 scores).
Pages are served by gunicorn with 2 sync workers on 127.0.0.1, against PostgreSQL,
with production settings (DEBUG off, collected static files). Each page is requested
a bounded number of times, one request at a time, by a signed-in analyst; the figures
are the client-side times on loopback, an upper bound of the server time.

Run with ``make bench-pages`` (PostgreSQL at ``$DATABASE_URL``; the database is created
if missing). Targets from DESIGN.md / issue 5: country page median < 150 ms,
overview median < 250 ms.
"""

from __future__ import annotations

import http.client
import io
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "earlywarning.settings")

import scoring as scoring_bench  # noqa: E402  (bench/scoring.py: data set-up helpers)

REQUESTS = 200
WARM_UP = 10
HOST = "127.0.0.1"
PAGES = [
    ("overview", "/", 250),
    ("country page (30 years)", "/countries/SYR/", 150),
    ("country page, chosen months", "/countries/SDN/?from=2000-01&to=2024-06", 150),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def prepare_data() -> None:
    """Synthetic observations (kept if already loaded) and one full scoring run."""
    from django.core.management import call_command

    from indicators import selectors, services
    from indicators.models import Observation, RiskScore

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    call_command("load_countries", verbosity=0, stdout=io.StringIO())
    call_command("load_framework", verbosity=0, stdout=io.StringIO())
    loaded = Observation.objects.filter(source=scoring_bench.SOURCE).count()
    if loaded < 900_000 or Observation.objects.exclude(source=scoring_bench.SOURCE).exists():
        start = time.perf_counter()
        n = scoring_bench.load_synthetic_observations()
        print(f"Set-up: {n:,} SYNTHETIC observations loaded in {time.perf_counter() - start:.0f} s")
    else:
        print(f"Set-up: reusing {loaded:,} SYNTHETIC observations already loaded")
    methodology = selectors.published_methodology()
    if methodology is None or not RiskScore.objects.filter(methodology=methodology).exists():
        start = time.perf_counter()
        services.refresh_scores(today=scoring_bench.TODAY)
        print(f"Set-up: full scoring run in {time.perf_counter() - start:.1f} s")
    methodology = selectors.published_methodology()
    count = RiskScore.objects.filter(methodology=methodology).count()
    print(f"Volume: {count:,} published scores (methodology v{methodology.number})")


def analyst_session() -> str:
    """A session key for a signed-in analyst, made directly (no password round trip)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore

    from indicators.roles import Role

    user, _ = User.objects.get_or_create(username="bench-analyst")
    user.groups.add(Group.objects.get(name=Role.ANALYST.value))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def start_gunicorn(port: int, static_root: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": HOST,
        "SECURE_COOKIES": "false",
        # Plain http on loopback, no TLS proxy: no redirect to https, no HSTS.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_ROOT": static_root,
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "earlywarning.wsgi:application",
            "--workers=2",
            f"--bind={HOST}:{port}",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def fetch(port: int, path: str, cookie: str) -> tuple[int, float, int]:
    """(status, seconds, bytes) of one GET on a fresh connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    start = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie, "Host": HOST})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    connection.close()
    return response.status, elapsed, len(body)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (make bench-pages does).")
    scoring_bench.ensure_database(url)
    os.environ.setdefault("DEBUG", "true")  # for the set-up in this process only
    # One signing key for this process and the server, so the session made here is valid.
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(40)

    import django

    django.setup()
    print(f"Machine: {scoring_bench.machine()}")
    print("Data: SYNTHETIC, at the reference volume (make bench-import measures the real data)")
    prepare_data()
    cookie = f"sessionid={analyst_session()}"

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-static-") as static_root:
        server = start_gunicorn(port, static_root)
        try:
            print(f"Server: gunicorn, 2 sync workers, {HOST}:{port}, DEBUG off")
            missed = []
            for label, path, target_ms in PAGES:
                for _ in range(WARM_UP):
                    status, _seconds, _size = fetch(port, path, cookie)
                    if status != 200:
                        sys.exit(f"{path} answered {status}")
                times = []
                size = 0
                for _ in range(REQUESTS):
                    status, seconds, size = fetch(port, path, cookie)
                    assert status == 200, f"{path} answered {status}"
                    times.append(seconds * 1000)
                median = statistics.median(times)
                print(
                    f"{label:<28} {path:<42} median {median:6.1f} ms   "
                    f"p95 {percentile(times, 0.95):6.1f} ms   ({REQUESTS} requests, "
                    f"{size / 1024:.0f} KiB)   target median < {target_ms} ms"
                )
                if median >= target_ms:
                    missed.append(label)
            print("All targets met." if not missed else f"Targets MISSED: {', '.join(missed)}")
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()

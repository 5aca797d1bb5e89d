"""The first load of the overview and a country page on a cold browser cache, served as
in production: gunicorn, DEBUG off, static files collected by whitenoise's compressed
manifest storage, and the public data sets' volume (~170 countries from 1960) when the
data folder is there (else a few synthetic countries).

It measures, and records in ``artifacts/first-load.json``: the time to the page's load
event and to its charts drawn, and the bytes transferred. No assertion is about time
(the figures are for the report); the assertions are about what makes the load fast:
only our own partial Plotly bundle, compressed on the wire, cached for a year under a
hashed name, fetched once and then read from the cache.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from indicators.services import refresh_scores
from tests.browser.test_dashboard import (  # noqa: F401  (fixtures)
    LAPTOP,
    PASSWORD,
    browser,
    build_scores,
    users,
)
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("countries", "framework"),
]

REPORT = ROOT / "artifacts" / "first-load.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def volume(users: None) -> str:  # noqa: F811
    """The public data sets, imported and scored, if the data folder is there."""
    if Path(settings.PUBLIC_DATA_DIR).is_dir():
        call_command("import_public_data", stdout=io.StringIO(), stderr=io.StringIO())
        refresh_scores()
        return "public data sets"
    build_scores()
    return "three synthetic countries (no public data folder)"


@pytest.fixture
def production_server(volume: str, tmp_path: Path) -> Iterator[str]:
    """gunicorn with production settings over the test database; yields its base URL."""
    db = connection.settings_dict
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SITE_URL": f"http://127.0.0.1:{port}",
        # Plain http on loopback: no proxy in front to terminate TLS.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "PUBLIC_DATA_DIR": str(settings.PUBLIC_DATA_DIR),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=300,
    )
    log = (ROOT / "artifacts" / "first-load-gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "earlywarning.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start: see artifacts/first-load-gunicorn.log")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def sign_in(page: Any, server: str) -> None:
    page.goto(server + "/accounts/login/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")


def load(page: Any, url: str, chart: str) -> dict[str, Any]:
    """Navigate, wait for the charts, and read the browser's own timings and sizes."""
    page.goto(url)
    page.wait_for_selector(f"{chart} .main-svg", timeout=30_000)
    charts_drawn = page.evaluate("performance.now()")
    page.wait_for_load_state("load")
    return page.evaluate(
        """(chartsDrawn) => {
            const nav = performance.getEntriesByType("navigation")[0];
            const resources = performance.getEntriesByType("resource");
            const plotly = resources.find((r) => r.name.includes("plotly-dashboard"));
            const sum = (key) => resources.reduce((t, r) => t + (r[key] || 0), nav[key] || 0);
            return {
                html_ms: Math.round(nav.responseEnd),
                html_transferred_kb: Math.round(nav.transferSize / 1024),
                html_decoded_kb: Math.round(nav.decodedBodySize / 1024),
                dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd),
                load_event_ms: Math.round(nav.loadEventEnd),
                charts_drawn_ms: Math.round(chartsDrawn),
                requests: resources.length + 1,
                transferred_kb: Math.round(sum("transferSize") / 1024),
                decoded_kb: Math.round(sum("decodedBodySize") / 1024),
                plotly_transferred_kb: plotly ? Math.round(plotly.transferSize / 1024) : null,
                plotly_decoded_kb: plotly ? Math.round(plotly.decodedBodySize / 1024) : null,
            };
        }""",
        charts_drawn,
    )


def test_first_load_of_the_overview_and_a_country_page(
    production_server: str,
    volume: str,
    browser: Any,  # noqa: F811
):
    figures: dict[str, Any] = {"volume": volume, "server": "gunicorn, 2 workers, DEBUG off"}
    pages = (
        ("overview", "/", "[data-figure=map-figure]"),
        ("country page", "/countries/SDN/", "[data-figure=trend-figure]"),
    )
    # The server's own first requests (imports, database caches) are not the browser's
    # cold cache: warm both workers up first, in a profile of its own.
    warm_up = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(warm_up, production_server)
    for _name, path, chart in pages * 2:
        load(warm_up, production_server + path, chart)
    warm_up.context.close()
    for name, path, chart in pages:
        context = browser.new_context(viewport=LAPTOP)  # a new profile: a cold cache
        page = context.new_page()
        plotly_headers: list[dict[str, str]] = []
        page.on(
            "response",
            lambda r, seen=plotly_headers: (
                seen.append(r.all_headers()) if "plotly" in r.url else None
            ),
        )
        outside: list[str] = []
        page.on(
            "request",
            lambda r, seen=outside: (
                seen.append(r.url) if not r.url.startswith(production_server) else None
            ),
        )
        sign_in(page, production_server)
        # Signing in fetched the stylesheet: empty the cache so the page starts cold.
        page.context.new_cdp_session(page).send("Network.clearBrowserCache")
        cold = load(page, production_server + path, chart)
        warm = load(page, production_server + path, chart)
        figures[name] = {"cold": cold, "warm": warm}

        # The page itself is compressed on the wire.
        assert cold["html_transferred_kb"] < cold["html_decoded_kb"] / 2
        # Our own partial bundle, compressed and cached for a year under a hashed name.
        (first, *_rest) = plotly_headers
        assert first.get("content-encoding") in {"gzip", "br"}, first
        cache = first.get("cache-control", "")
        assert "immutable" in cache or "max-age=31536000" in cache or "315360000" in cache
        assert cold["plotly_transferred_kb"] < 700
        assert cold["plotly_decoded_kb"] < 2000  # the full plotly.min.js is 4,700 KB
        # Read from the cache the second time (nothing transferred).
        assert warm["plotly_transferred_kb"] == 0
        assert outside == []
        context.close()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")
    print("\nfirst load:", json.dumps(figures, indent=2))

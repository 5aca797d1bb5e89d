"""Benchmark: the scoring engine and ``refresh_scores`` at the reference volume.

The data is SYNTHETIC, generated here with a fixed seed and labelled as such in the
``source`` column: 195 countries x 143 indicators x 36 observations each over 30 years
(about 1 million observations), scored monthly (360 month ends). The framework file has
113 indicators; the reference volume has the full Framework's 143, so the bench database
(and only it) gets 30 more, coded S.1 to S.30, labelled "SYNTHETIC benchmark indicator"
and spread over the 14 factors.

Run with ``make bench`` (PostgreSQL at ``$DATABASE_URL``; the database is created if
missing and its observations and scores are replaced). Prints the figures and the
machine they were measured on; targets from DESIGN.md: engine < 1 s, full refresh
< 5 s (its write < 2 s), one-country refresh < 100 ms.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "earlywarning.settings")
os.environ.setdefault("DEBUG", "true")

REFERENCE_INDICATORS = 143
OBSERVATIONS_PER_SERIES = 36  # 195 x 143 x 36 = 1,003,860 observations
YEARS = 30
FIRST_DAY = date(1995, 1, 1)
TODAY = date(2024, 12, 31)
SOURCE = "SYNTHETIC benchmark data"
SYNTHETIC_LABEL = "SYNTHETIC benchmark indicator"


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(
        dbname="postgres",
        user=parts.username or "postgres",
        password=parts.password or "",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def add_synthetic_indicators() -> int:
    """Top the framework up to the reference count with labelled synthetic indicators.

    Idempotent. Returns how many synthetic indicators the database holds.
    """
    from indicators.models import Indicator, RiskFactor

    framework = Indicator.objects.exclude(label=SYNTHETIC_LABEL).count()
    factors = list(RiskFactor.objects.order_by("number"))
    missing = REFERENCE_INDICATORS - framework
    for n in range(1, missing + 1):
        Indicator.objects.update_or_create(
            code=f"S.{n}",
            defaults={
                "factor": factors[(n - 1) % len(factors)],
                "label": SYNTHETIC_LABEL,
                "position": 100 + n,
            },
        )
    Indicator.objects.filter(label=SYNTHETIC_LABEL, position__gt=100 + missing).delete()
    return Indicator.objects.filter(label=SYNTHETIC_LABEL).count()


def load_synthetic_observations() -> int:
    """Replace all observations with the synthetic set, through COPY (set-up, not measured)."""
    import numpy as np
    from django.db import connection

    from alerts.models import Alert
    from countries.models import Country
    from indicators import methodology
    from indicators.models import (
        Indicator,
        MethodologyVersion,
        Observation,
        RiskScore,
        ScoringRun,
    )

    # Scoring runs raise alerts (in process here), and an alert keeps its run.
    Alert.objects.all().delete()
    RiskScore.objects.all().delete()
    ScoringRun.objects.all().delete()
    MethodologyVersion.objects.all().delete()
    Observation.objects.all().delete()
    add_synthetic_indicators()
    methodology.initial_methodology()  # v1, equal weights, with the synthetic indicators
    country_ids = np.array(Country.objects.values_list("id", flat=True))
    indicator_ids = np.array(Indicator.objects.values_list("id", flat=True))
    rng = np.random.default_rng(20241231)
    series = len(country_ids) * len(indicator_ids)
    n = series * OBSERVATIONS_PER_SERIES
    countries = np.repeat(country_ids, len(indicator_ids) * OBSERVATIONS_PER_SERIES)
    indicators = np.tile(np.repeat(indicator_ids, OBSERVATIONS_PER_SERIES), len(country_ids))
    # Distinct days per series: a random subset of the 30 years, so keys never collide.
    span = YEARS * 365
    offsets = np.concatenate(
        [rng.choice(span, OBSERVATIONS_PER_SERIES, replace=False) for _ in range(series)]
    )
    days = np.datetime64(FIRST_DAY) + offsets.astype("timedelta64[D]")
    values = np.round(rng.beta(2, 5, n), 4)
    buffer = io.StringIO()
    for country, indicator, day, value in zip(
        countries, indicators, days.astype(str), values, strict=True
    ):
        buffer.write(
            f"{country}\t{indicator}\t{day}\t{value}\tmedium\t{SOURCE}\t\t\tnow\tnow\t\tf\n"
        )
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY indicators_observation (country_id, indicator_id, observed_on, value, "
            "confidence, source, source_url, note, created_at, updated_at, variable, "
            "overrides_data) FROM STDIN",
            buffer,
        )
        # Reclaim what the deletes above left (autovacuum would, but perhaps in the
        # middle of the measured runs), so that a rerun measures what a first run does.
        for table in ("indicators_observation", "indicators_riskscore"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return n


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (make bench does).")
    ensure_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from indicators import scoring, selectors, services
    from indicators.models import RiskScore

    call_command("migrate", verbosity=0)
    call_command("load_countries", verbosity=0, stdout=io.StringIO())
    call_command("load_framework", verbosity=0, stdout=io.StringIO())
    print(f"Machine: {machine()}")
    start = time.perf_counter()
    n = load_synthetic_observations()
    print(f"Set-up: {n:,} SYNTHETIC observations loaded in {time.perf_counter() - start:.1f} s")

    observations = selectors.observations_frame()
    factors, indicators = selectors.weights_frames(selectors.published_methodology())
    periods = services.scoring_periods(observations["observed_on"].min(), TODAY)
    print(
        f"Volume: {observations['country'].nunique()} countries x {len(indicators)} "
        f"indicators x {len(periods)} month ends"
    )

    def engine() -> None:
        scoring.compute_scores(
            observations, indicators=indicators, factors=factors, periods=periods
        )

    engine_times = timed(engine, 5)
    full_times = timed(lambda: services.refresh_scores(today=TODAY), 3)
    run = services.refresh_scores(today=TODAY)
    one_times = timed(lambda: services.refresh_scores(countries=["SYR"], today=TODAY), 10)
    scores = RiskScore.objects.filter(methodology=run.methodology).count()

    print(
        f"Pure engine:            median {statistics.median(engine_times):.3f} s "
        f"(min {min(engine_times):.3f}, 5 runs)   target < 1 s"
    )
    print(
        f"Full refresh_scores:    median {statistics.median(full_times):.3f} s "
        f"(min {min(full_times):.3f}, 3 runs; {scores:,} scores)   target < 5 s"
    )
    print(f"  last full run steps:  {run.timings}   target: write < 2 s")
    print(
        f"One-country refresh:    median {statistics.median(one_times) * 1000:.0f} ms "
        f"(min {min(one_times) * 1000:.0f}, 10 runs)   target < 100 ms"
    )


if __name__ == "__main__":
    main()

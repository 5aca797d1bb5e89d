"""Checks on the shape of the project: pure modules, one schedule, migrations, system checks."""

from __future__ import annotations

import ast
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
PURE_MODULES = [
    "indicators/scoring.py",
    "indicators/charts.py",
    "indicators/backtest.py",
    "indicators/backtest_charts.py",
    "indicators/calibration.py",
    "indicators/spreadsheets.py",
    "alerts/rules.py",
]
# Pure modules may use each other, by their full dotted name.
PURE_MODULE_NAMES = {path.removesuffix(".py").replace("/", ".") for path in PURE_MODULES}
ALLOWED_PURE_IMPORTS = {
    "__future__",
    "collections",
    "enum",
    "dataclasses",
    "datetime",
    "math",
    "typing",
    "numpy",
    "pandas",
    "plotly",
    "json",
    "glum",  # the calibration's model fit: a maintained GLM library
    # Reading tables from bytes in memory (spreadsheets.py): no file or network access.
    "csv",
    "io",
    "zipfile",
    "pathlib",  # PurePath only: a file name's extension
    "openpyxl",
}


def imported_roots(path: Path) -> set[str]:
    """The top-level packages a module imports (another pure module counts as allowed)."""
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level and node.module in PURE_MODULE_NAMES:
                continue
            roots.add("." if node.level else (node.module or "").split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_nothing_from_django_celery_or_the_apps(module: str):
    roots = imported_roots(ROOT / module)
    assert roots <= ALLOWED_PURE_IMPORTS, f"{module} imports {sorted(roots - ALLOWED_PURE_IMPORTS)}"


def test_the_import_check_would_catch_a_django_import(tmp_path: Path):
    impure = tmp_path / "impure.py"
    impure.write_text("from django.db import models\nimport indicators.models\n")
    assert imported_roots(impure) - ALLOWED_PURE_IMPORTS == {"django", "indicators"}


def test_every_beat_schedule_entry_names_a_registered_task_with_an_expiry():
    from celery.schedules import crontab

    from earlywarning.celery import app

    app.loader.import_default_modules()
    assert app.conf.beat_schedule, "the schedule is empty"
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in app.tasks, f"{name} names an unregistered task {entry['task']}"
        assert isinstance(entry["schedule"], crontab), f"{name} is not a crontab"
        assert entry.get("options", {}).get("expires"), f"{name} has no expiry"


@pytest.mark.django_db
def test_migrations_are_up_to_date():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:  # makemigrations --check exits 1 when something is missing
        pytest.fail(f"missing migrations (exit {exit_.code}):\n{out.getvalue()}")


def test_system_checks_pass(settings):
    # Tests run with DEBUG off: a deployment's SITE_URL, as every deployment sets it.
    settings.SITE_URL = "https://early-warning.example.org"
    call_command("check", fail_level="WARNING")


def test_the_engine_is_importable_without_django_configured():
    code = "import sys; import indicators.scoring; assert 'django' not in sys.modules"
    import subprocess

    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )

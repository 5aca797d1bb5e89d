from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from indicators import public_data


class Command(BaseCommand):
    help = (
        "Import the public data sets (V-Dem, UCDP, World Bank, ...) from the data folder onto "
        "the framework's indicators, as the mapping file says; then recompute the scores. "
        "Idempotent: data sets unchanged since the last import are not read again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data-dir",
            type=Path,
            help="The folder holding the data sets (default: the PUBLIC_DATA_DIR setting).",
        )
        parser.add_argument(
            "--only",
            action="append",
            metavar="NAME",
            help="Import only this data set (repeatable), e.g. --only vdem --only ucdp_brd.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Read every data set again, changed or not."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        try:
            result = public_data.import_public_data(
                data_dir=options["data_dir"],
                only=options["only"],
                force=options["force"],
                progress=ProgressBar(self.stderr),
            )
        except public_data.PublicDataError as exc:
            raise CommandError("Nothing was imported:\n  " + "\n  ".join(exc.problems)) from exc
        verbose = options["verbosity"] >= 2
        for dataset in result.datasets:
            self.stdout.write(self._summary(dataset, verbose=verbose))
        elapsed = time.perf_counter() - started
        if result.changed:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported from {result.data_dir} in {elapsed:.1f} s; scores recomputed "
                    "(or queued, with a worker)."
                )
            )
        else:
            self.stdout.write(f"Nothing changed in {result.data_dir} ({elapsed:.1f} s).")

    def _summary(self, dataset: public_data.DatasetResult, *, verbose: bool) -> str:
        if dataset.status == "unchanged":
            return f"{dataset.name}: unchanged since the last import."
        lines = [
            f"{dataset.name}: {dataset.rows_read} rows read; observations "
            f"{dataset.created} new, {dataset.updated} updated, {dataset.unchanged} unchanged, "
            f"{dataset.deleted} removed; {sum(dataset.skipped.values())} skipped, "
            f"{dataset.unmapped_rows} rows unmapped."
        ]
        if dataset.episodes_created or dataset.episodes_updated:
            lines.append(
                f"  episodes: {dataset.episodes_created} new, {dataset.episodes_updated} "
                "updated or removed"
            )
        if not verbose:
            if dataset.skipped or dataset.unmapped:
                reasons, codes = len(dataset.skipped), len(dataset.unmapped)
                lines.append(
                    f"  ({reasons} reason{'s' if reasons != 1 else ''} for skipping, {codes} "
                    f"code{'s' if codes != 1 else ''} not mapped to our countries: -v 2 lists "
                    "them; so does the methodology page)"
                )
            return "\n".join(lines)
        for reason, count in sorted(dataset.skipped.items()):
            lines.append(f"  skipped {count}: {reason}")
        for item in dataset.unmapped:
            lines.append(f"  unmapped {item}")
        return "\n".join(lines)


class ProgressBar:
    """A one-line progress bar on a terminal; one line per step elsewhere (logs, CI)."""

    WIDTH = 30

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(getattr(stream, "_out", stream), "isatty", lambda: False)())

    def __call__(self, step: str, done: int, total: int) -> None:
        filled = int(self.WIDTH * done / max(total, 1))
        bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} {step}"
        if self.tty:
            self.stream.write(f"\r{bar:<100}", ending="")
            if done >= total:
                self.stream.write("")
            sys.stderr.flush()
        else:
            self.stream.write(bar)

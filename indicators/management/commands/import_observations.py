from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from indicators import uploads
from indicators.services import ObservationBatchError
from indicators.spreadsheets import check_file_size


class Command(BaseCommand):
    help = (
        "Record the assessments of a CSV or XLSX file (see README, 'Uploading assessments'), "
        "all or nothing, here and now (no worker), within the same limits as an upload."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The .csv or .xlsx file.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and count; write nothing."
        )
        parser.add_argument("--user", help="User name to record the assessments under.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        try:
            # Bounded like an upload on the web, before a byte of the file is read.
            check_file_size(
                name=path.name, size=path.stat().st_size, limits=uploads.upload_limits()
            )
            content = path.read_bytes()
            result = uploads.import_observation_file(
                name=path.name, content=content, recorded_by=user, dry_run=options["dry_run"]
            )
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        except uploads.UploadFormatError as exc:
            raise CommandError(f"{path.name}: {uploads.printable(str(exc))}") from exc
        except ObservationBatchError as exc:
            for problem in exc.errors:
                self.stderr.write(uploads.printable(str(problem)))
            raise CommandError(
                f"{len(exc.errors)} problem(s) in {path.name}; nothing was recorded."
            ) from exc
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run, nothing written: would create {result.created}, "
                f"update {result.updated}; {result.unchanged} unchanged."
            )
        else:
            self.stdout.write(
                f"Created {result.created}, updated {result.updated}, "
                f"unchanged {result.unchanged}. Countries recomputed: "
                f"{', '.join(sorted(result.countries)) or 'none'}."
            )

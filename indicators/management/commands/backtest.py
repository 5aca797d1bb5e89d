from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from indicators import history, selectors
from indicators.backtest import BacktestResult


class Command(BaseCommand):
    help = (
        "Backtest a methodology version: rank every country's December score of each base "
        "year against mass-killing onsets in the next two years (the episode list of the "
        "public data folder, or --episodes). Prints AUC, recall and precision in the top "
        "10/20/30 with bootstrap ranges, per-year figures and each onset's earlier ranks."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # ``--version`` names a methodology version here, not Django's version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--version", type=int, help="Methodology version number (default: published)."
        )
        parser.add_argument(
            "--episodes",
            type=Path,
            help="A newer episode list with the same columns as the shared one, read in place.",
        )
        parser.add_argument("--from", dest="first", type=int, help="First base year (1994).")
        parser.add_argument(
            "--to", dest="last", type=int, help="Last base year (the last the list covers)."
        )
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        number = options["version"]
        version = selectors.version_for_viewing(
            str(number) if number is not None else None, administrator=True
        )
        if version is None:
            raise CommandError(
                f"No methodology version {number}." if number else "Nothing is published yet."
            )
        try:
            result = history.run_backtest(
                version,
                episodes=options["episodes"],
                first_year=options["first"],
                last_year=options["last"],
            )
        except (history.HistoryError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"version": version.number, **result.as_dict()}, indent=2))
            return
        self.stdout.write(self._text(version.number, result))

    def _text(self, number: int, result: BacktestResult) -> str:
        lines = [
            f"Methodology v{number}, base years {result.first_year}-{result.last_year}: "
            f"{result.onsets} onsets, {result.positives} of {result.country_years} "
            "country-years followed by one within two years.",
            f"AUC {result.auc.value:.3f} (95 % range {result.auc.low:.3f}-{result.auc.high:.3f})",
        ]
        for k, recall in result.recall_at.items():
            precision = result.precision_at[k]
            lines.append(
                f"Top {k}: recall {recall.value:.1%} ({recall.low:.1%}-{recall.high:.1%}), "
                f"precision {precision.value:.1%} ({precision.low:.1%}-{precision.high:.1%})"
            )
        lines.append("\nYear  ranked  onsets  top10  top20  top30  AUC")
        for y in result.years:
            auc = f"{y.auc:.2f}" if y.auc is not None else "  -"
            hits = "  ".join(f"{y.hits.get(k, 0):5d}" for k in (10, 20, 30))
            lines.append(f"{y.base_year}  {y.countries:6d}  {y.onsets:6d}  {hits}  {auc}")
        lines.append("\nOnset  country  rank 1 year before  rank 2 years before")
        for o in result.onset_ranks:
            one = (
                f"{o.rank_one_year_before}/{o.ranked_one_year_before}"
                if o.rank_one_year_before
                else "-"
            )
            two = (
                f"{o.rank_two_years_before}/{o.ranked_two_years_before}"
                if o.rank_two_years_before
                else "-"
            )
            lines.append(f"{o.year}   {o.country}      {one:>10}          {two:>10}")
        lines.extend(result.notes)
        return "\n".join(lines)

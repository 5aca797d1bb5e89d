from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from indicators import selectors


class Command(BaseCommand):
    help = (
        "Print how much data feeds each risk factor and indicator: observations, countries, "
        "years and sources, and which indicators have no data."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = selectors.coverage_report()
        self.stdout.write(
            f"{report.observations} observations on {report.countries} countries; "
            f"{len(report.indicators_without_data)} indicators without data."
        )
        for factor in report.factors:
            self.stdout.write(
                f"\n{factor.code} {factor.title}: {factor.indicators_with_data}/"
                f"{len(factor.indicators)} indicators with data, {factor.countries} countries"
            )
            for indicator in factor.indicators:
                if not indicator.has_data:
                    self.stdout.write(f"  {indicator.code:>6}  no data")
                    continue
                years = (
                    f"{indicator.first_year}-{indicator.last_year}"
                    if indicator.first_year != indicator.last_year
                    else str(indicator.first_year)
                )
                self.stdout.write(
                    f"  {indicator.code:>6}  {indicator.observations} observations, "
                    f"{indicator.countries} countries, {indicator.years} years ({years}); "
                    f"sources: {', '.join(indicator.sources)}"
                )

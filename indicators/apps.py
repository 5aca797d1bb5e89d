from django.apps import AppConfig


class IndicatorsConfig(AppConfig):
    name = "indicators"
    verbose_name = "Indicators and scores"

    def ready(self) -> None:
        from indicators import api_admin  # noqa: F401  # tokens in the admin, keys hidden

"""Routes of the REST API, version 1 (mounted at /api/v1/)."""

from __future__ import annotations

from django.urls import path, re_path

from indicators import api

app_name = "api"

# Codes in paths are matched strictly, so that nothing odd reaches a query.
ISO3 = r"(?P<iso3>[A-Za-z]{3})"

urlpatterns = [
    path("countries/", api.CountryListView.as_view(), name="country-list"),
    re_path(rf"^countries/{ISO3}/$", api.CountryDetailView.as_view(), name="country-detail"),
    re_path(
        rf"^countries/{ISO3}/scores/$",
        api.CountryScoreHistoryView.as_view(),
        name="country-scores",
    ),
    path("rankings/", api.RankingListView.as_view(), name="ranking-list"),
    path("risk-factors/", api.RiskFactorListView.as_view(), name="riskfactor-list"),
    re_path(
        r"^risk-factors/(?P<code>[Rr][Ff][0-9]{1,2})/$",
        api.RiskFactorDetailView.as_view(),
        name="riskfactor-detail",
    ),
    path("indicators/", api.IndicatorListView.as_view(), name="indicator-list"),
    re_path(
        r"^indicators/(?P<code>[0-9]{1,2}\.[0-9]{1,3})/$",
        api.IndicatorDetailView.as_view(),
        name="indicator-detail",
    ),
    path("observations/", api.ObservationListView.as_view(), name="observation-list"),
    path("observations/batch/", api.ObservationBatchView.as_view(), name="observation-batch"),
    path("observations/<int:pk>/", api.ObservationDetailView.as_view(), name="observation-detail"),
    path("scoring-runs/", api.ScoringRunListView.as_view(), name="scoringrun-list"),
    path("scoring-runs/<int:pk>/", api.ScoringRunDetailView.as_view(), name="scoringrun-detail"),
    path(
        "methodology-versions/",
        api.MethodologyVersionListView.as_view(),
        name="methodologyversion-list",
    ),
    path(
        "methodology-versions/<int:number>/",
        api.MethodologyVersionDetailView.as_view(),
        name="methodologyversion-detail",
    ),
    path(
        "methodology-versions/<int:number>/backtest/",
        api.MethodologyBacktestView.as_view(),
        name="methodologyversion-backtest",
    ),
    path("schema/", api.ApiSchemaView.as_view(), name="schema"),
    path("docs/", api.ApiDocsView.as_view(), name="docs"),
]

from __future__ import annotations

from django.urls import path

from indicators import methodology_views, upload_views, views

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("countries/<str:iso3>/", views.CountryView.as_view(), name="country"),
    path(
        "countries/<str:iso3>/scores.csv",
        views.CountryScoresCsvView.as_view(),
        name="country-scores-csv",
    ),
    path(
        "countries/<str:iso3>/observations.csv",
        views.CountryObservationsCsvView.as_view(),
        name="country-observations-csv",
    ),
    path(
        "countries/<str:iso3>/episodes.csv",
        views.CountryEpisodesCsvView.as_view(),
        name="country-episodes-csv",
    ),
    path("compare/", views.CompareView.as_view(), name="compare"),
    path("factors/<str:code>/", views.FactorView.as_view(), name="factor"),
    path("methodology/", views.MethodologyView.as_view(), name="methodology"),
    path(
        "methodology/versions/",
        methodology_views.VersionListView.as_view(),
        name="methodology-versions",
    ),
    path(
        "methodology/versions/<int:number>/",
        methodology_views.VersionDetailView.as_view(),
        name="methodology-version",
    ),
    path(
        "methodology/backtest/",
        methodology_views.BacktestView.as_view(),
        name="methodology-backtest",
    ),
    path(
        "methodology/calibration/",
        methodology_views.CalibrationView.as_view(),
        name="methodology-calibration",
    ),
    path("observations/new/", views.ObservationCreateView.as_view(), name="observation-new"),
    path(
        "observations/upload/",
        upload_views.ObservationUploadView.as_view(),
        name="observation-upload",
    ),
    path(
        "observations/uploads/<int:pk>/",
        upload_views.ObservationUploadDetailView.as_view(),
        name="observation-upload-detail",
    ),
]

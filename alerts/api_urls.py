"""Alert routes of the REST API, version 1 (mounted at /api/v1/ beside indicators.api_urls)."""

from __future__ import annotations

from django.urls import path

from alerts import api

app_name = "alerts_api"

urlpatterns = [
    path("alerts/", api.AlertListView.as_view(), name="alert-list"),
    path("alerts/<int:pk>/", api.AlertDetailView.as_view(), name="alert-detail"),
    path(
        "alerts/<int:pk>/acknowledge/", api.AlertAcknowledgeView.as_view(), name="alert-acknowledge"
    ),
    path("alerts/<int:pk>/resolve/", api.AlertResolveView.as_view(), name="alert-resolve"),
    path("alerts/<int:pk>/dismiss/", api.AlertDismissView.as_view(), name="alert-dismiss"),
    path("subscriptions/", api.SubscriptionListView.as_view(), name="subscription-list"),
    path(
        "subscriptions/<int:pk>/", api.SubscriptionDetailView.as_view(), name="subscription-detail"
    ),
]

from __future__ import annotations

from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.InboxView.as_view(), name="inbox"),
    path("acknowledge/", views.BulkAcknowledgeView.as_view(), name="acknowledge_many"),
    path("<int:pk>/", views.AlertDetailView.as_view(), name="detail"),
    path("<int:pk>/<slug:action>/", views.AlertActionView.as_view(), name="action"),
    path("ack/<str:token>/", views.AcknowledgeLinkView.as_view(), name="acknowledge_link"),
    path("subscriptions/", views.SubscriptionListView.as_view(), name="subscriptions"),
    path("subscriptions/new/", views.SubscriptionEditView.as_view(), name="subscription_new"),
    path("subscriptions/<int:pk>/", views.SubscriptionEditView.as_view(), name="subscription_edit"),
]

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts import services
from alerts.models import (
    Alert,
    AlertEvent,
    AlertSettings,
    Digest,
    Notification,
    RunEvaluation,
    ScoreBaseline,
    Subscription,
)


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return not AlertSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "all_countries", "regions", "min_severity", "delivery", "active")
    list_filter = ("delivery", "min_severity", "active", "all_countries")
    search_fields = ("user__username", "user__email")
    filter_horizontal = ("countries",)
    readonly_fields = ("webhook_secret", "created_at")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.save_subscription(
            subscription=form.instance, countries=form.instance.countries.all()
        )


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    fields = ("created_at", "kind", "actor", "message")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NotificationInline(admin.TabularInline):
    model = Notification
    extra = 0
    fields = (
        "recipient",
        "channel",
        "kind",
        "round",
        "attempts",
        "sent_at",
        "failed_at",
        "last_error",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "opened_at",
        "country",
        "rule",
        "crime_type",
        "severity",
        "status",
        "escalation_count",
        "failed_deliveries",
    )
    list_filter = ("status", "severity", "rule", "crime_type", "country__region")
    list_select_related = ("country",)
    search_fields = ("country__name", "country__iso3", "summary")
    inlines = [AlertEventInline, NotificationInline]
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts come from the rules, not by hand

    @admin.display(description="failed deliveries")
    def failed_deliveries(self, obj: Alert) -> int:
        return obj.notifications.filter(failed_at__isnull=False).count()


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "alert",
        "recipient",
        "channel",
        "kind",
        "status_label",
        "attempts",
        "sent_at",
        "last_error",
    )
    list_filter = (
        "channel",
        "kind",
        ("failed_at", admin.EmptyFieldListFilter),
        ("sent_at", admin.EmptyFieldListFilter),
    )
    list_select_related = ("alert__country", "recipient")
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_delivery"]

    @admin.display(description="status")
    def status_label(self, obj: Notification) -> str:
        return obj.status

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry delivery of the selected failed notifications")
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = services.retry_failed_notifications(
            notification_ids=queryset.values_list("pk", flat=True), user=request.user
        )
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("period_start", "kind", "user", "alert_count", "sent_at", "last_error")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in Digest._meta.fields]


@admin.register(RunEvaluation)
class RunEvaluationAdmin(admin.ModelAdmin):
    list_display = ("run", "evaluated_at", "escalations")
    readonly_fields = ("run", "evaluated_at", "escalations")


@admin.register(ScoreBaseline)
class ScoreBaselineAdmin(admin.ModelAdmin):
    """What the next run of each country is compared with; written by the evaluation."""

    list_display = ("country", "period", "overall", "coverage", "change_3m", "run", "evaluated_at")
    list_select_related = ("country", "run")
    search_fields = ("country__name", "country__iso3")
    readonly_fields = [f.name for f in ScoreBaseline._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

"""REST API for alerts and the caller's subscriptions (mounted at /api/v1/).

Built on the conventions of ``indicators.api``: role permissions, paging, CSV, error bodies.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from alerts import selectors, services
from alerts.models import (
    Alert,
    AlertMessageItem,
    CrimeType,
    RuleChoice,
    SeverityChoice,
    Subscription,
)
from countries.models import Country
from indicators.api import (
    LIST_PARAMETERS,
    LIST_RESPONSES,
    ApiDetailView,
    ApiListView,
    path_parameter,
)
from indicators.api_support import (
    WRITE_FORMAT_PARAMETER,
    ErrorSerializer,
    RolePermission,
    ThrottleRefusedCallersMixin,
    error_responses,
)
from indicators.roles import Role

# --- Alerts ----------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.iso3", help_text="ISO 3166 alpha-3 code.")
    country_name = serializers.CharField(source="country.name")
    drivers = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="[[factor, change in points], ...]: what moved the score, biggest first, "
        "within the crime type drivers_crime.",
    )
    crime_switch = serializers.JSONField(
        allow_null=True,
        help_text='{"from", "to", "change"}: the overall score followed another crime type '
        "before; that switch is a step of its own, worth change points.",
    )
    red_flags = serializers.ListField(
        child=serializers.DictField(),
        help_text="A red flag's assessments, one per indicator: indicator, name, value "
        "(0-1), observed_on, observation, source, dataset (empty: an analyst's 0-3 "
        "assessment).",
    )
    run = serializers.IntegerField(
        source="run_id", allow_null=True, help_text="The scoring run that raised or escalated it."
    )
    observation = serializers.IntegerField(
        source="observation_id", allow_null=True, help_text="The red-flag observation, if any."
    )
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", allow_null=True, default=None
    )
    resolved_by = serializers.CharField(
        source="resolved_by.username", allow_null=True, default=None
    )
    dismissed_by = serializers.CharField(
        source="dismissed_by.username", allow_null=True, default=None
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "country",
            "country_name",
            "rule",
            "crime_type",
            "severity",
            "status",
            "summary",
            "period",
            "score",
            "previous_score",
            "level",
            "previous_level",
            "change_3m",
            "change_3m_z",
            "compared_with",
            "baseline_period",
            "drivers",
            "drivers_crime",
            "crime_switch",
            "indicator",
            "value",
            "red_flags",
            "run",
            "observation",
            "opened_at",
            "escalated_at",
            "escalation_count",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "dismissed_at",
            "dismissed_by",
            "dismissal_reason",
        ]
        read_only_fields = fields


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        method="filter_status",
        choices=[("active", "Open or acknowledged"), *Alert.Status.choices],
    )
    severity = django_filters.ChoiceFilter(choices=SeverityChoice.choices)
    rule = django_filters.ChoiceFilter(choices=RuleChoice.choices)
    crime_type = django_filters.ChoiceFilter(choices=CrimeType.choices)
    country = django_filters.CharFilter(
        field_name="country__iso3", lookup_expr="iexact", help_text="ISO3 code."
    )
    region = django_filters.CharFilter(
        method="filter_region", help_text="UN M49 region or sub-region."
    )
    mine = django_filters.BooleanFilter(
        method="filter_mine", help_text="Only alerts notified to the caller."
    )

    class Meta:
        model = Alert
        fields = ["status", "severity", "rule", "crime_type", "country", "region", "mine"]

    def filter_status(self, queryset: QuerySet[Alert], name: str, value: str) -> QuerySet[Alert]:
        if value == "active":
            return queryset.filter(status__in=Alert.ACTIVE)
        return queryset.filter(status=value)

    def filter_region(self, queryset: QuerySet[Alert], name: str, value: str) -> QuerySet[Alert]:
        return queryset.filter(
            Q(country__region__iexact=value) | Q(country__sub_region__iexact=value)
        )

    def filter_mine(self, queryset: QuerySet[Alert], name: str, value: bool) -> QuerySet[Alert]:
        if not value:
            return queryset
        return queryset.filter(
            pk__in=AlertMessageItem.objects.filter(
                message__notifications__recipient=self.request.user
            ).values("alert_id")
        )


ALERT_EXAMPLE = {
    "id": 87,
    "country": "SDN",
    "country_name": "Sudan",
    "rule": "surge",
    "crime_type": "overall",
    "severity": "warning",
    "status": "open",
    "summary": "Overall risk surged: +12.4 points in 3 months",
    "period": "2025-05-31",
    "score": 71.2,
    "previous_score": 58.8,
    "level": "high",
    "previous_level": "high",
    "change_3m": 12.4,
    "change_3m_z": 2.3,
    "compared_with": "three_months_earlier",
    "baseline_period": "2025-02-28",
    "drivers": [["RF6", 6.2], ["RF8", 3.9]],
    "drivers_crime": "crimes_against_humanity",
    "crime_switch": {"from": "war_crimes", "to": "crimes_against_humanity", "change": -1.1},
    "indicator": "",
    "value": None,
    "red_flags": [],
    "run": 41,
    "observation": None,
    "opened_at": "2025-06-01T02:00:11Z",
    "escalated_at": None,
    "escalation_count": 0,
    "acknowledged_at": None,
    "acknowledged_by": None,
    "resolved_at": None,
    "resolved_by": None,
    "resolution_note": "",
    "dismissed_at": None,
    "dismissed_by": None,
    "dismissal_reason": "",
}
ACKNOWLEDGED_EXAMPLE = {
    **ALERT_EXAMPLE,
    "status": "acknowledged",
    "acknowledged_at": "2025-06-01T07:42:00Z",
    "acknowledged_by": "fay",
}
ALERT_ID_PATH = path_parameter("id", "Alert id.", 87)


@extend_schema(
    tags=["alerts"],
    summary="Alerts",
    description="Escalations raised by the alert rules, newest first. Any role may read them.",
    parameters=LIST_PARAMETERS,
    responses={200: AlertSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("A surge", value=ALERT_EXAMPLE, response_only=True)],
)
class AlertListView(ApiListView):
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["opened_at", "severity", "period", "escalated_at"]
    ordering_aliases = {"severity": "severity_rank"}  # info < warning < critical
    ordering = ["-opened_at"]

    def get_queryset(self) -> QuerySet[Alert]:
        return selectors.alerts_for_api()


@extend_schema(
    tags=["alerts"],
    summary="One alert",
    parameters=[ALERT_ID_PATH],
    responses={200: AlertSerializer, **error_responses(404, 401, 403, 429)},
    examples=[OpenApiExample("A surge", value=ALERT_EXAMPLE, response_only=True)],
)
class AlertDetailView(ApiDetailView):
    serializer_class = AlertSerializer

    def get_object(self) -> Alert:
        return get_object_or_404(selectors.alerts_for_api(), pk=self.kwargs["pk"])


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The alert is not in a state that allows this."


class ResolveInputSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, help_text="What was done."
    )


class DismissInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10_000, help_text="Why; required and kept.")


ACTION_RESPONSES = {
    200: AlertSerializer,
    409: OpenApiResponse(ErrorSerializer, description="The alert's status does not allow it."),
    **error_responses(400, 401, 403, 404, 415, 429),
}


class AlertActionView(ThrottleRefusedCallersMixin, generics.GenericAPIView):
    # Any role may call; the service lets only the alert's recipients and administrators act.
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    write_roles = tuple(Role)
    serializer_class = AlertSerializer
    action = ""

    def post(self, request: Request, pk: int) -> Response:
        alert = get_object_or_404(Alert, pk=pk)
        try:
            self.perform(alert, request)
        except DjangoValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise ValidationError(exc.message_dict) from exc
            raise Conflict(" ".join(exc.messages)) from exc
        return Response(AlertSerializer(selectors.alerts_for_api().get(pk=alert.pk)).data)

    def perform(self, alert: Alert, request: Request) -> None:
        raise NotImplementedError


@extend_schema(
    tags=["alerts"],
    summary="Acknowledge an open alert (recipients, administrators)",
    description="No body. Only an open alert can be acknowledged; the caller is recorded.",
    request=None,
    parameters=[ALERT_ID_PATH],
    responses=ACTION_RESPONSES,
    examples=[OpenApiExample("Acknowledged", value=ACKNOWLEDGED_EXAMPLE, response_only=True)],
)
class AlertAcknowledgeView(AlertActionView):
    def perform(self, alert: Alert, request: Request) -> None:
        services.acknowledge(alert=alert, user=request.user)


@extend_schema(
    tags=["alerts"],
    summary="Resolve an alert with a note (recipients, administrators)",
    request=ResolveInputSerializer,
    parameters=[ALERT_ID_PATH],
    responses=ACTION_RESPONSES,
    examples=[
        OpenApiExample("Request", value={"note": "Envoy deployed"}, request_only=True),
        OpenApiExample(
            "Resolved",
            value={
                **ACKNOWLEDGED_EXAMPLE,
                "status": "resolved",
                "resolved_at": "2025-06-03T16:10:00Z",
                "resolved_by": "fay",
                "resolution_note": "Envoy deployed",
            },
            response_only=True,
        ),
    ],
)
class AlertResolveView(AlertActionView):
    def perform(self, alert: Alert, request: Request) -> None:
        parsed = ResolveInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        services.resolve(alert=alert, user=request.user, note=parsed.validated_data.get("note", ""))


@extend_schema(
    tags=["alerts"],
    summary="Dismiss an alert with a reason (recipients, administrators)",
    request=DismissInputSerializer,
    parameters=[ALERT_ID_PATH],
    responses=ACTION_RESPONSES,
    examples=[
        OpenApiExample("Request", value={"reason": "Duplicate of a data error"}, request_only=True),
        OpenApiExample(
            "Dismissed",
            value={
                **ALERT_EXAMPLE,
                "status": "dismissed",
                "dismissed_at": "2025-06-01T09:00:00Z",
                "dismissed_by": "ada",
                "dismissal_reason": "Duplicate of a data error",
            },
            response_only=True,
        ),
    ],
)
class AlertDismissView(AlertActionView):
    def perform(self, alert: Alert, request: Request) -> None:
        parsed = DismissInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        services.dismiss(alert=alert, user=request.user, reason=parsed.validated_data["reason"])


# --- Subscriptions ---------------------------------------------------------------------


class SubscriptionSerializer(serializers.ModelSerializer):
    countries = serializers.SlugRelatedField(
        slug_field="iso3",
        many=True,
        required=False,
        queryset=Country.objects.all(),
        help_text="ISO3 codes covered.",
    )
    regions = serializers.ListField(
        child=serializers.CharField(max_length=60),
        required=False,
        help_text="UN M49 regions or sub-regions covered, e.g. 'Africa', 'Western Asia'.",
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "all_countries",
            "countries",
            "regions",
            "min_severity",
            "delivery",
            "webhook_url",
            "webhook_secret",
            "weekly_summary",
            "active",
            "created_at",
        ]
        read_only_fields = ["id", "webhook_secret", "created_at"]

    def validate_regions(self, value: list[str]) -> list[str]:
        known = set(Country.objects.values_list("region", flat=True)) | set(
            Country.objects.values_list("sub_region", flat=True)
        )
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(f"Unknown region(s): {', '.join(unknown)}.")
        return value

    def save_for(self, user: Any) -> Subscription:
        data = dict(self.validated_data)
        countries = data.pop("countries", None)
        subscription = self.instance or Subscription(user=user)
        for name, value in data.items():
            setattr(subscription, name, value)
        try:
            return services.save_subscription(
                subscription=subscription,
                countries=countries
                if countries is not None
                else (list(subscription.countries.all()) if subscription.pk else []),
            )
        except DjangoValidationError as exc:
            raise ValidationError({"non_field_errors": exc.messages}) from exc


SUBSCRIPTION_EXAMPLE = {
    "regions": ["Eastern Africa"],
    "countries": ["SDN"],
    "min_severity": "warning",
    "delivery": "immediate",
}
SUBSCRIPTION_OUTPUT_EXAMPLE = {
    "id": 12,
    "all_countries": False,
    **SUBSCRIPTION_EXAMPLE,
    "webhook_url": "https://chat.example.org/hooks/atrocity-alerts",
    "webhook_secret": "2c4a162f5414bd9b99d1c43e39382bfe5873ebec8d2106d96bbd1331e2ad0f8e",
    "weekly_summary": True,
    "active": True,
    "created_at": "2025-05-20T10:04:00Z",
}
SUBSCRIPTION_ID_PATH = path_parameter("id", "Id of one of the caller's subscriptions.", 12)


class SubscriptionAccess:
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    write_roles = (Role.FOCAL_POINT, Role.ADMINISTRATOR)

    def get_queryset(self) -> QuerySet[Subscription]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Subscription.objects.none()
        # Callers only ever see and change their own subscriptions.
        return selectors.subscriptions_of(self.request.user)  # type: ignore[attr-defined]


class SubscriptionListView(SubscriptionAccess, ApiListView):
    serializer_class = SubscriptionSerializer
    filterset_class = None
    ordering_fields = ["created_at"]
    ordering = ["created_at"]

    @extend_schema(
        tags=["subscriptions"],
        summary="The caller's alert subscriptions",
        description="Only the caller's own; any role may list them (most have none).",
        parameters=LIST_PARAMETERS,
        responses={200: SubscriptionSerializer(many=True), **LIST_RESPONSES},
        examples=[
            OpenApiExample("A region", value=SUBSCRIPTION_OUTPUT_EXAMPLE, response_only=True)
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["subscriptions"],
        summary="Subscribe (Focal point, Administrator)",
        description=(
            "Choose countries, regions or `all_countries`. With a `webhook_url` the answer "
            "carries the `webhook_secret` that signs each delivery."
        ),
        request=SubscriptionSerializer,
        parameters=[WRITE_FORMAT_PARAMETER],
        responses={201: SubscriptionSerializer, **error_responses(400, 401, 403, 404, 415, 429)},
        examples=[
            OpenApiExample("Request", value=SUBSCRIPTION_EXAMPLE, request_only=True),
            OpenApiExample("Created", value=SUBSCRIPTION_OUTPUT_EXAMPLE, response_only=True),
            OpenApiExample(
                "Unknown region",
                value={"regions": ["Unknown region(s): Atlantis."]},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        parsed = SubscriptionSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        subscription = parsed.save_for(request.user)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailView(
    SubscriptionAccess, ThrottleRefusedCallersMixin, generics.RetrieveUpdateDestroyAPIView
):
    serializer_class = SubscriptionSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @extend_schema(
        tags=["subscriptions"],
        summary="One of the caller's subscriptions",
        parameters=[SUBSCRIPTION_ID_PATH],
        responses={200: SubscriptionSerializer, **error_responses(404, 401, 403, 429)},
        examples=[
            OpenApiExample("A region", value=SUBSCRIPTION_OUTPUT_EXAMPLE, response_only=True)
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["subscriptions"],
        summary="Change a subscription (Focal point, Administrator)",
        description="Only the fields sent change; another user's subscription is a 404.",
        request=SubscriptionSerializer,
        parameters=[SUBSCRIPTION_ID_PATH],
        responses={200: SubscriptionSerializer, **error_responses(400, 401, 403, 404, 415, 429)},
        examples=[
            OpenApiExample("Request", value={"delivery": "digest"}, request_only=True),
            OpenApiExample(
                "Changed",
                value={**SUBSCRIPTION_OUTPUT_EXAMPLE, "delivery": "digest"},
                response_only=True,
            ),
        ],
    )
    def patch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        parsed = SubscriptionSerializer(self.get_object(), data=request.data, partial=True)
        parsed.is_valid(raise_exception=True)
        return Response(SubscriptionSerializer(parsed.save_for(request.user)).data)

    @extend_schema(
        tags=["subscriptions"],
        summary="Delete a subscription (Focal point, Administrator)",
        description="No body in the answer. Another user's subscription is a 404.",
        parameters=[SUBSCRIPTION_ID_PATH],
        responses={204: None, **error_responses(404, 401, 403, 429)},
    )
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_subscription(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

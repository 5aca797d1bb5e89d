"""The REST API, version 1: serializers and thin views over selectors and services.

Every view parses its input with a serializer or a filter set, calls one selector or
service, and answers with an output serializer whose fields are listed. Scores are those of
the published methodology (the latest successful full run); before the first run the score
lists are empty. Conventions (roles, pagination, CSV, error bodies) are in ``api_support``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import django_filters
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import generics, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import (
    APIException,
    NotAuthenticated,
    NotFound,
    ParseError,
    ValidationError,
)
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from countries.models import Country
from indicators import history, selectors, services
from indicators.api_support import (
    FORMAT_PARAMETER,
    LIST_RENDERERS,
    PAGINATION_HEADERS,
    READ_ERRORS,
    WRITE_FORMAT_PARAMETER,
    ApiPagination,
    BatchErrorSerializer,
    RolePermission,
    StableOrderingFilter,
    ThrottleRefusedCallersMixin,
    error_responses,
    flatten_field_errors,
)
from indicators.models import (
    DEFAULT_STALENESS_DAYS,
    CrimeGroup,
    Indicator,
    MethodologyVersion,
    Observation,
    RiskFactor,
    RiskLevel,
    RiskScore,
    ScoringRun,
)
from indicators.roles import Role, RoleRequiredMixin, user_roles
from indicators.selectors import LATEST_SCORE_FIELDS
from indicators.services import ObservationBatchError, RowError

MAX_BATCH_ROWS = 5000

CRIME_CHOICES = [
    ("overall", "Overall: the highest of the three crime-specific scores"),
    ("genocide", "Genocide"),
    ("crimes_against_humanity", "Crimes against humanity"),
    ("war_crimes", "War crimes"),
]

# --- Base views ------------------------------------------------------------------------


class ApiListView(ThrottleRefusedCallersMixin, generics.ListAPIView):
    # A paged, filterable, orderable list, in JSON or CSV. (A comment, not a docstring:
    # drf-spectacular would show a docstring as every list's description.)
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    renderer_classes = LIST_RENDERERS
    pagination_class = ApiPagination
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]


class ApiDetailView(ThrottleRefusedCallersMixin, generics.RetrieveAPIView):
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]


VERSION_PARAMETER = OpenApiParameter(
    "version",
    OpenApiTypes.INT,
    description=(
        "Scores of this methodology version (a published or superseded one; drafts for "
        "administrators). Default: the published version."
    ),
    examples=[OpenApiExample("Version 2", value=2)],
)


def requested_version(request: Any) -> MethodologyVersion | None:
    """The version asked for with ``?version=N`` (default: the published one).

    Raises ``NotFound`` for a number that is no version the caller may see.
    """
    number = request.query_params.get("version")
    version = selectors.version_for_viewing(
        number, administrator=Role.ADMINISTRATOR in user_roles(request.user)
    )
    if number and version is None:
        raise NotFound(f"No methodology version {number} to show.")
    return version


LIST_RESPONSES = error_responses(400, 404, *READ_ERRORS)
DETAIL_RESPONSES = error_responses(404, *READ_ERRORS)
LIST_PARAMETERS = [FORMAT_PARAMETER, *PAGINATION_HEADERS]


def path_parameter(
    name: str, description: str, example: str | int, *, pattern: str | None = None
) -> OpenApiParameter:
    """A documented path parameter (``pattern``: the regex its route matches)."""
    return OpenApiParameter(
        name,
        OpenApiTypes.INT if isinstance(example, int) else OpenApiTypes.STR,
        location=OpenApiParameter.PATH,
        description=description,
        pattern=pattern,
        examples=[OpenApiExample(str(example), value=example)],
    )


ISO3_PATH = path_parameter(
    "iso3", "ISO 3166 alpha-3 code of the country, in either case.", "SDN", pattern="^[A-Za-z]{3}$"
)


# --- Countries -------------------------------------------------------------------------


class LatestScoreSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="The month end the score is as of.")
    overall = serializers.FloatField(allow_null=True, help_text="0-100.")
    genocide = serializers.FloatField(allow_null=True)
    crimes_against_humanity = serializers.FloatField(allow_null=True)
    war_crimes = serializers.FloatField(allow_null=True)
    overall_crime = serializers.CharField(help_text="The crime type of the overall score.")
    level = serializers.ChoiceField(choices=RiskLevel.choices)
    coverage = serializers.FloatField(help_text="Share of indicator weight with data, 0-1.")
    change_3m = serializers.FloatField(allow_null=True)
    change_12m = serializers.FloatField(allow_null=True)
    change_3m_z = serializers.FloatField(allow_null=True)


class SituationScoreSerializer(serializers.Serializer):
    profile = serializers.CharField(help_text="The situation profile's name.")
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(allow_null=True, help_text="Null while it lasts.")
    justification = serializers.CharField()
    period = serializers.DateField(allow_null=True, help_text="Its latest scored month end.")
    overall = serializers.FloatField(allow_null=True, help_text="Overall score under it, 0-100.")
    level = serializers.CharField(allow_null=True)


class CountrySerializer(serializers.ModelSerializer):
    latest_score = serializers.SerializerMethodField()
    situation_scores = serializers.SerializerMethodField(
        help_text=(
            "Scores under the situation profiles assigned to the country: shown beside "
            "latest_score, never instead of it."
        )
    )

    class Meta:
        model = Country
        fields = [
            "iso3",
            "iso2",
            "name",
            "region",
            "sub_region",
            "un_status",
            "latest_score",
            "situation_scores",
        ]

    @extend_schema_field(SituationScoreSerializer(many=True))
    def get_situation_scores(self, country: Country) -> list[dict[str, Any]]:
        situations = self.context.get("situations") or {}
        return [item.as_dict() for item in situations.get(country.iso3, [])]

    @extend_schema_field(LatestScoreSerializer(allow_null=True))
    def get_latest_score(self, country: Country) -> dict[str, Any] | None:
        """The ``latest_*`` annotations of ``countries_with_latest_score``, or None."""
        if getattr(country, "latest_period", None) is None:
            return None
        values = {name: getattr(country, f"latest_{name}") for name in LATEST_SCORE_FIELDS}
        return LatestScoreSerializer(values).data


class CountryFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(
        lookup_expr="iexact", help_text="UN M49 region: Africa, Americas, Asia, Europe, Oceania."
    )
    sub_region = django_filters.CharFilter(
        lookup_expr="iexact", help_text="UN M49 sub-region, e.g. Eastern Africa."
    )
    un_status = django_filters.ChoiceFilter(choices=Country.Status.choices)
    level = django_filters.ChoiceFilter(
        field_name="latest_level", choices=RiskLevel.choices, help_text="Level of the latest score."
    )
    search = django_filters.CharFilter(
        method="filter_search", help_text="Part of the name, or an ISO alpha-3 or alpha-2 code."
    )

    class Meta:
        model = Country
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(name__icontains=value) | Q(iso3__iexact=value) | Q(iso2__iexact=value)
        )


COUNTRY_EXAMPLE = {
    "iso3": "SDN",
    "iso2": "SD",
    "name": "Sudan",
    "region": "Africa",
    "sub_region": "Northern Africa",
    "un_status": "member",
    "latest_score": {
        "period": "2025-05-31",
        "overall": 71.2,
        "genocide": 64.0,
        "crimes_against_humanity": 71.2,
        "war_crimes": 69.8,
        "overall_crime": "crimes_against_humanity",
        "level": "high",
        "coverage": 0.62,
        "change_3m": 4.1,
        "change_12m": 9.5,
        "change_3m_z": 1.3,
    },
    "situation_scores": [
        {
            "profile": "Armed conflict under way",
            "starts_on": "2023-04-15",
            "ends_on": None,
            "justification": "War between the SAF and the RSF since April 2023.",
            "period": "2026-11-30",
            "overall": 66.4,
            "level": "high",
        }
    ],
}


@extend_schema(
    tags=["countries"],
    summary="Countries with their latest score",
    description=(
        "Every UN member and observer state, with its latest score under the published "
        "methodology (`latest_score` is null before the first scoring run or for a country "
        "without observations)."
    ),
    parameters=[VERSION_PARAMETER, *LIST_PARAMETERS],
    responses={200: CountrySerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("Sudan", value=COUNTRY_EXAMPLE, response_only=True)],
)
class CountryListView(ApiListView):
    queryset = Country.objects.none()  # names the model for the schema; see get_queryset
    serializer_class = CountrySerializer
    filterset_class = CountryFilter
    ordering_fields = ["name", "iso3", "region", "latest_overall", "latest_change_3m"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Country]:
        return selectors.countries_with_latest_score(methodology=requested_version(self.request))

    def get_serializer_context(self) -> dict[str, Any]:
        return {
            **super().get_serializer_context(),
            "situations": selectors.situations_of(methodology=requested_version(self.request)),
        }


@extend_schema(
    tags=["countries"],
    summary="One country with its latest score",
    parameters=[ISO3_PATH, VERSION_PARAMETER],
    responses={200: CountrySerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("Sudan", value=COUNTRY_EXAMPLE, response_only=True)],
)
class CountryDetailView(ApiDetailView):
    serializer_class = CountrySerializer

    def get_object(self) -> Country:
        queryset = selectors.countries_with_latest_score(
            methodology=requested_version(self.request)
        )
        return get_object_or_404(queryset, iso3=self.kwargs["iso3"].upper())

    def get_serializer_context(self) -> dict[str, Any]:
        iso3 = self.kwargs["iso3"].upper()
        situations = selectors.situations_of(
            methodology=requested_version(self.request), countries=[iso3]
        )
        return {**super().get_serializer_context(), "situations": situations}


# --- Scores ----------------------------------------------------------------------------


class ScoreSerializer(serializers.ModelSerializer):
    score = serializers.FloatField(
        allow_null=True, help_text="The score of the crime type asked for with `crime`."
    )
    factor_scores = serializers.DictField(
        child=serializers.FloatField(), help_text="Factor code -> factor score in [0, 1]."
    )
    contributions = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Factor code -> points the factor adds to the overall score.",
    )
    methodology = serializers.IntegerField(
        source="methodology_number", help_text="Methodology version number."
    )
    run = serializers.IntegerField(source="run_id", help_text="The scoring run that wrote it.")
    level = serializers.ChoiceField(
        choices=RiskLevel.choices, help_text="Level of the overall score."
    )

    class Meta:
        model = RiskScore
        fields = [
            "period",
            "score",
            "overall",
            "genocide",
            "crimes_against_humanity",
            "war_crimes",
            "overall_crime",
            "level",
            "coverage",
            "change_3m",
            "change_12m",
            "change_3m_z",
            "factor_scores",
            "contributions",
            "methodology",
            "run",
        ]


class CrimeQuerySerializer(serializers.Serializer):
    crime = serializers.ChoiceField(
        choices=CRIME_CHOICES,
        default="overall",
        help_text="Which score fills `score` (and orders a ranking). Default: overall.",
    )


class RankingQuerySerializer(CrimeQuerySerializer):
    date = serializers.DateField(
        required=False,
        help_text=(
            "Rank the scores of this date's month (or of the latest scored month before "
            "it). Default: today."
        ),
    )


class ScoreHistoryFilter(django_filters.FilterSet):
    to = django_filters.DateFilter(
        field_name="period", lookup_expr="lte", help_text="Last period (YYYY-MM-DD), included."
    )

    class Meta:
        model = RiskScore
        fields: list[str] = []


# ``from`` is a Python keyword, so it cannot be a class attribute.
ScoreHistoryFilter.base_filters["from"] = django_filters.DateFilter(
    field_name="period", lookup_expr="gte", help_text="First period (YYYY-MM-DD), included."
)

SCORE_EXAMPLE = {
    "period": "2025-05-31",
    "score": 71.2,
    "overall": 71.2,
    "genocide": 64.0,
    "crimes_against_humanity": 71.2,
    "war_crimes": 69.8,
    "overall_crime": "crimes_against_humanity",
    "level": "high",
    "coverage": 0.62,
    "change_3m": 4.1,
    "change_12m": 9.5,
    "change_3m_z": 1.3,
    "factor_scores": {"RF1": 0.67, "RF2": 0.5},
    "contributions": {"RF1": 6.1, "RF2": 4.5},
    "methodology": 3,
    "run": 41,
}


@extend_schema(
    tags=["scores"],
    summary="A country's score history",
    description=(
        "Monthly scores of one country under the published methodology, oldest first. "
        "`from` and `to` bound the periods (month ends); `crime` picks the score in `score`."
    ),
    parameters=[ISO3_PATH, CrimeQuerySerializer, VERSION_PARAMETER, *LIST_PARAMETERS],
    responses={200: ScoreSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("May 2025", value=SCORE_EXAMPLE, response_only=True)],
)
class CountryScoreHistoryView(ApiListView):
    queryset = RiskScore.objects.none()  # names the model for the schema; see get_queryset
    serializer_class = ScoreSerializer
    filterset_class = ScoreHistoryFilter
    ordering_fields = ["period"]
    ordering = ["period"]

    def get_queryset(self) -> QuerySet[RiskScore]:
        query = CrimeQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        country = get_object_or_404(Country, iso3=self.kwargs["iso3"].upper())
        return selectors.score_history(
            country=country,
            methodology=requested_version(self.request),
            crime=query.validated_data["crime"],
        )


class RankedCountrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Country
        fields = ["iso3", "name", "region", "sub_region"]


class RankingSerializer(serializers.ModelSerializer):
    rank = serializers.IntegerField(help_text="1 for the highest score; ties share a rank.")
    country = RankedCountrySerializer()
    score = serializers.FloatField(allow_null=True, help_text="The score ranked on (`crime`).")
    level = serializers.ChoiceField(
        choices=RiskLevel.choices, help_text="Level of the overall score."
    )
    insufficient_data = serializers.BooleanField(
        source="thin",
        help_text="The ranked score's coverage is under the methodology's floor: its number "
        "is not a risk level, and it ranks after every country with enough data.",
    )

    class Meta:
        model = RiskScore
        fields = [
            "rank",
            "country",
            "period",
            "score",
            "insufficient_data",
            "level",
            "coverage",
            "overall",
            "genocide",
            "crimes_against_humanity",
            "war_crimes",
            "change_3m",
            "change_12m",
            "change_3m_z",
        ]


class RankingFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(
        field_name="country__region", lookup_expr="iexact", help_text="Rank within a UN region."
    )
    sub_region = django_filters.CharFilter(
        field_name="country__sub_region", lookup_expr="iexact", help_text="Rank within one."
    )

    class Meta:
        model = RiskScore
        fields: list[str] = []


@extend_schema(
    tags=["scores"],
    summary="Countries ranked by score for a date",
    description=(
        "Every scored country at the end of the month of `date` (or the latest scored month "
        "before it), highest `crime` score first; with `region` the ranks are within that "
        "region. Scores without data enough are listed with the level `insufficient_data`."
    ),
    parameters=[RankingQuerySerializer, VERSION_PARAMETER, *LIST_PARAMETERS],
    responses={200: RankingSerializer(many=True), **LIST_RESPONSES},
    examples=[
        OpenApiExample(
            "First place",
            value={
                "rank": 1,
                "country": {
                    "iso3": "SDN",
                    "name": "Sudan",
                    "region": "Africa",
                    "sub_region": "Northern Africa",
                },
                "period": "2025-05-31",
                "score": 71.2,
                "insufficient_data": False,
                "level": "high",
                "coverage": 0.62,
                "overall": 71.2,
                "genocide": 64.0,
                "crimes_against_humanity": 71.2,
                "war_crimes": 69.8,
                "change_3m": 4.1,
                "change_12m": 9.5,
                "change_3m_z": 1.3,
            },
            response_only=True,
        )
    ],
)
class RankingListView(ApiListView):
    queryset = RiskScore.objects.none()  # names the model for the schema; see get_queryset
    serializer_class = RankingSerializer
    filterset_class = RankingFilter
    ordering_fields = ["rank", "score", "country__name", "coverage"]
    ordering = ["rank", "country__name"]

    def get_queryset(self) -> QuerySet[RiskScore]:
        query = RankingQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        methodology = requested_version(self.request)
        period = selectors.ranking_period(
            methodology=methodology,
            on=query.validated_data.get("date") or timezone.localdate(),
        )
        return selectors.ranking(
            methodology=methodology, period=period, crime=query.validated_data["crime"]
        )


# --- Framework: risk factors and indicators --------------------------------------------


class VersionWeightsMixin:
    """``weight`` and ``staleness_days`` from the methodology version in the context
    (the published one), where weights live."""

    def _version(self) -> Any:
        return self.context.get("methodology")  # type: ignore[attr-defined]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_weight(self, obj: Any) -> float:
        version = self._version()
        if version is None:
            return 1.0
        weights = (
            version.factor_weights if isinstance(obj, RiskFactor) else version.indicator_weights
        )
        return float(weights.get(obj.code, 0.0))

    @extend_schema_field(OpenApiTypes.INT)
    def get_staleness_days(self, obj: Any) -> int:
        version = self._version()
        days = version.staleness_days if version is not None else {}
        return int(days.get(obj.code, DEFAULT_STALENESS_DAYS))


WEIGHT_HELP = "Its weight in the published methodology version."
STALENESS_HELP = "Observations older than this are ignored (published version)."


class FactorIndicatorSerializer(VersionWeightsMixin, serializers.ModelSerializer):
    weight = serializers.SerializerMethodField(help_text=WEIGHT_HELP)
    staleness_days = serializers.SerializerMethodField(help_text=STALENESS_HELP)

    class Meta:
        model = Indicator
        fields = ["code", "position", "label", "weight", "staleness_days", "verification"]


class RiskFactorSerializer(VersionWeightsMixin, serializers.ModelSerializer):
    indicators = FactorIndicatorSerializer(many=True)
    weight = serializers.SerializerMethodField(help_text=WEIGHT_HELP)

    class Meta:
        model = RiskFactor
        fields = ["code", "number", "title", "group", "summary", "weight", "note", "indicators"]


class RiskFactorFilter(django_filters.FilterSet):
    group = django_filters.ChoiceFilter(choices=CrimeGroup.choices)

    class Meta:
        model = RiskFactor
        fields: list[str] = []


class IndicatorSerializer(VersionWeightsMixin, serializers.ModelSerializer):
    factor = serializers.CharField(source="factor.code", help_text="Risk factor code, e.g. RF1.")
    group = serializers.ChoiceField(source="factor.group", choices=CrimeGroup.choices)
    weight = serializers.SerializerMethodField(help_text=WEIGHT_HELP)
    staleness_days = serializers.SerializerMethodField(help_text=STALENESS_HELP)

    class Meta:
        model = Indicator
        fields = [
            "code",
            "factor",
            "group",
            "position",
            "label",
            "weight",
            "staleness_days",
            "verification",
        ]


class IndicatorFilter(django_filters.FilterSet):
    factor = django_filters.CharFilter(
        field_name="factor__code", lookup_expr="iexact", help_text="Risk factor code, e.g. RF10."
    )
    group = django_filters.ChoiceFilter(field_name="factor__group", choices=CrimeGroup.choices)
    verification = django_filters.ChoiceFilter(choices=Indicator.Verification.choices)

    class Meta:
        model = Indicator
        fields: list[str] = []


WEIGHTS_NOTE = (
    "Weights and staleness limits are those of the published methodology version, "
    "read-only here (see methodology-versions/); administrators change them by drafting "
    "and publishing a new version."
)


class PublishedWeightsContextMixin:
    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        return {**context, "methodology": selectors.published_methodology()}


FACTOR_INDICATOR_EXAMPLE = {
    "code": "10.1",
    "position": 1,
    "label": (
        "Documents or media revealing, openly or by implication, intent or incitement to "
        "target a group."
    ),
    "weight": 1.0,
    "staleness_days": 730,
    "verification": "recalled",
}
RISK_FACTOR_EXAMPLE = {
    "code": "RF10",
    "number": 10,
    "title": "Signs of an intent to destroy in whole or in part a protected group",
    "group": "genocide",
    "summary": (
        "Evidence pointing to a purpose, pursued by acts or deliberate neglect, of wiping "
        "out a protected group entirely or in part."
    ),
    "weight": 1.0,
    "note": "Indicators: recalled; possibly incomplete.",
    "indicators": [FACTOR_INDICATOR_EXAMPLE],
}
INDICATOR_EXAMPLE = {
    **FACTOR_INDICATOR_EXAMPLE,
    "factor": "RF10",
    "group": "genocide",
}
RISK_FACTOR_CODE_PATH = path_parameter(
    "code", "Risk factor code, RF1 to RF14, in either case.", "RF10", pattern="^[Rr][Ff][0-9]{1,2}$"
)
INDICATOR_CODE_PATH = path_parameter(
    "code",
    "Indicator code: its factor's number, a dot and its position, e.g. 10.1.",
    "10.1",
    pattern=r"^[0-9]{1,2}\.[0-9]{1,3}$",
)


@extend_schema(
    tags=["framework"],
    summary="Risk factors with their indicators and current weights",
    description=f"The 14 risk factors of the UN Framework of Analysis. {WEIGHTS_NOTE}",
    parameters=LIST_PARAMETERS,
    responses={200: RiskFactorSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("RF10", value=RISK_FACTOR_EXAMPLE, response_only=True)],
)
class RiskFactorListView(PublishedWeightsContextMixin, ApiListView):
    serializer_class = RiskFactorSerializer
    filterset_class = RiskFactorFilter
    ordering_fields = ["number"]
    ordering = ["number"]

    def get_queryset(self) -> QuerySet[RiskFactor]:
        return selectors.risk_factors_with_indicators()


@extend_schema(
    tags=["framework"],
    summary="One risk factor with its indicators",
    description=WEIGHTS_NOTE,
    parameters=[RISK_FACTOR_CODE_PATH],
    responses={200: RiskFactorSerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("RF10", value=RISK_FACTOR_EXAMPLE, response_only=True)],
)
class RiskFactorDetailView(PublishedWeightsContextMixin, ApiDetailView):
    serializer_class = RiskFactorSerializer

    def get_object(self) -> RiskFactor:
        queryset = selectors.risk_factors_with_indicators()
        return get_object_or_404(queryset, code=self.kwargs["code"].upper())


@extend_schema(
    tags=["framework"],
    summary="Indicators with their current weights",
    description=f"Every indicator of every risk factor. {WEIGHTS_NOTE}",
    parameters=LIST_PARAMETERS,
    responses={200: IndicatorSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("10.1", value=INDICATOR_EXAMPLE, response_only=True)],
)
class IndicatorListView(PublishedWeightsContextMixin, ApiListView):
    serializer_class = IndicatorSerializer
    filterset_class = IndicatorFilter
    ordering_fields = ["factor__number", "position"]
    ordering = ["factor__number", "position"]

    def get_queryset(self) -> QuerySet[Indicator]:
        return selectors.indicators_with_factor()


@extend_schema(
    tags=["framework"],
    summary="One indicator",
    description=WEIGHTS_NOTE,
    parameters=[INDICATOR_CODE_PATH],
    responses={200: IndicatorSerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("10.1", value=INDICATOR_EXAMPLE, response_only=True)],
)
class IndicatorDetailView(PublishedWeightsContextMixin, ApiDetailView):
    serializer_class = IndicatorSerializer

    def get_object(self) -> Indicator:
        return get_object_or_404(selectors.indicators_with_factor(), code=self.kwargs["code"])


# --- Observations ----------------------------------------------------------------------


class ObservationSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.iso3", help_text="ISO 3166 alpha-3 code.")
    indicator = serializers.CharField(source="indicator.code", help_text="Indicator code.")
    recorded_by = serializers.CharField(
        source="recorded_by.username", allow_null=True, default=None
    )
    dataset = serializers.CharField(
        source="dataset.key",
        allow_null=True,
        default=None,
        help_text="The public data set the value is derived from; null for an analyst's.",
    )

    class Meta:
        model = Observation
        fields = [
            "id",
            "country",
            "indicator",
            "observed_on",
            "value",
            "confidence",
            "source",
            "source_url",
            "note",
            "recorded_by",
            "dataset",
            "variable",
            "raw_value",
            "overrides_data",
            "created_at",
            "updated_at",
        ]


class ObservationDateField(serializers.DateField):
    """A date observed, read by the rule of every entry path (``services``)."""

    def to_internal_value(self, value: Any) -> Any:
        parsed = services.parse_observation_date(value, today=timezone.localdate())
        if isinstance(parsed, str):
            raise serializers.ValidationError(parsed, code="invalid")
        return parsed


class ObservationInputSerializer(serializers.Serializer):
    """One observation as a program sends it; ``record_observations`` validates the rest."""

    country = serializers.CharField(max_length=3, help_text="ISO 3166 alpha-3 code, e.g. SDN.")
    indicator = serializers.CharField(max_length=10, help_text="Indicator code, e.g. 10.1.")
    observed_on = ObservationDateField(
        help_text="Date observed, YYYY-MM-DD, from 1900-01-01 (or as configured) to today."
    )
    value = serializers.FloatField(
        min_value=0, max_value=1, help_text="Severity in [0, 1]: 0 absent, 1/3 low, 2/3, 1 high."
    )
    confidence = serializers.ChoiceField(
        choices=Observation.Confidence.choices, default=Observation.Confidence.MEDIUM
    )
    source = serializers.CharField(max_length=200, help_text="Name of the source.")
    source_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    overrides_data = serializers.BooleanField(
        default=False,
        help_text="True: the scores use this value instead of the data-derived ones of that date.",
    )


class ObservationBatchInputSerializer(serializers.Serializer):
    observations = ObservationInputSerializer(
        many=True, allow_empty=False, max_length=MAX_BATCH_ROWS
    )


class BatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    countries = serializers.ListField(
        child=serializers.CharField(), help_text="ISO3 codes of the countries that changed."
    )


class ObservationFilter(django_filters.FilterSet):
    country = django_filters.CharFilter(
        field_name="country__iso3", lookup_expr="iexact", help_text="ISO alpha-3 code."
    )
    indicator = django_filters.CharFilter(field_name="indicator__code", help_text="e.g. 10.1")
    factor = django_filters.CharFilter(
        field_name="indicator__factor__code", lookup_expr="iexact", help_text="e.g. RF10"
    )
    confidence = django_filters.ChoiceFilter(choices=Observation.Confidence.choices)
    source = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name.")
    to = django_filters.DateFilter(
        field_name="observed_on",
        lookup_expr="lte",
        help_text="Last date observed (YYYY-MM-DD), included.",
    )

    class Meta:
        model = Observation
        fields: list[str] = []


ObservationFilter.base_filters["from"] = django_filters.DateFilter(
    field_name="observed_on",
    lookup_expr="gte",
    help_text="First date observed (YYYY-MM-DD), included.",
)

OBSERVATION_INPUT_EXAMPLE = {
    "country": "SDN",
    "indicator": "10.1",
    "observed_on": "2025-05-20",
    "value": 0.6667,
    "confidence": "high",
    "source": "UN OHCHR report",
    "source_url": "https://www.ohchr.org/",
    "note": "Attacks on a protected group reported in two provinces.",
}
OBSERVATION_EXAMPLE = {
    "id": 1234,
    **OBSERVATION_INPUT_EXAMPLE,
    "recorded_by": "ana",
    "created_at": "2025-05-21T09:30:00Z",
    "updated_at": "2025-05-21T09:30:00Z",
}


def _errors_by_field(errors: list[RowError]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for error in errors:
        grouped[error.field].append(error.message)
    return dict(grouped)


class ObservationListView(ApiListView):
    serializer_class = ObservationSerializer
    filterset_class = ObservationFilter
    ordering_fields = ["observed_on", "value", "created_at", "updated_at", "country__iso3"]
    ordering = ["-observed_on"]
    write_roles = (Role.ANALYST,)

    def get_queryset(self) -> QuerySet[Observation]:
        return selectors.observations_for_api()

    @extend_schema(
        tags=["observations"],
        summary="Observations",
        description=(
            "Sourced severity values for an indicator in a country on a date, newest first. "
            "`from` and `to` bound `observed_on`."
        ),
        parameters=LIST_PARAMETERS,
        responses={200: ObservationSerializer(many=True), **LIST_RESPONSES},
        examples=[OpenApiExample("One", value=OBSERVATION_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["observations"],
        summary="Record one observation (Analyst)",
        description=(
            "Validated by the same service as every other entry path. An observation is "
            "keyed on (country, indicator, observed_on, source): sending a known key again "
            "updates it (200) instead of creating one (201)."
        ),
        request=ObservationInputSerializer,
        parameters=[WRITE_FORMAT_PARAMETER],
        responses={
            201: OpenApiResponse(ObservationSerializer, description="Created."),
            200: OpenApiResponse(ObservationSerializer, description="Updated or unchanged."),
            **error_responses(400, 401, 403, 404, 413, 415, 429),
        },
        examples=[
            OpenApiExample("Request", value=OBSERVATION_INPUT_EXAMPLE, request_only=True),
            OpenApiExample(
                "Created", value=OBSERVATION_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            OpenApiExample(
                "Updated",
                value={**OBSERVATION_EXAMPLE, "updated_at": "2025-06-02T14:05:00Z"},
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Unknown country",
                value={"country": ["unknown country code 'XXX'"]},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        parsed = ObservationInputSerializer(data=request.data)
        if not parsed.is_valid():
            problems = _row_problems({1: parsed.errors}, [request.data])
            raise ValidationError(_errors_by_field(problems))
        row = parsed.validated_data
        try:
            result = services.record_observations(rows=[row], recorded_by=request.user)
        except ObservationBatchError as exc:
            raise ValidationError(_errors_by_field(exc.errors)) from exc
        observation = selectors.observation_by_key(
            country=row["country"],
            indicator=row["indicator"],
            observed_on=row["observed_on"],
            source=row["source"],
        )
        location = reverse("api:observation-detail", args=[observation.pk], request=request)
        return Response(
            ObservationSerializer(observation).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
            headers={"Location": location},
        )


def _row_problems(parse_errors: Mapping[int, Any], raw_rows: list[Any]) -> list[RowError]:
    """The serializer's errors (by row number) plus what the service finds in the same rows.

    One report lists every problem. Where both complain about the same row and field, the
    service's message wins: it is the wording every other entry path shows. Rows that are
    not JSON objects only get the serializer's complaint.
    """
    found: dict[tuple[int, str], RowError] = {}
    for number, row_errors in sorted(parse_errors.items()):
        for row, field, message in flatten_field_errors(row_errors, row=number):
            found.setdefault((row, field), RowError(row, field, message))
    not_objects = {n for n, raw in enumerate(raw_rows, start=1) if not isinstance(raw, dict)}
    if raw_rows and len(not_objects) < len(raw_rows):
        try:
            services.record_observations(
                rows=[raw if isinstance(raw, dict) else {} for raw in raw_rows], dry_run=True
            )
        except ObservationBatchError as exc:
            for error in exc.errors:
                if error.row not in not_objects:
                    found[(error.row, error.field)] = error
    return sorted(found.values(), key=lambda e: (e.row, e.field))


def _errors_by_row(errors: Any) -> dict[int, Any] | None:
    """A nested list serializer's errors by row number (from 1), or None if not per row.

    DRF reports them as a list with one entry per row, or as a dict keyed by the index of
    each bad row.
    """
    if isinstance(errors, list) and errors and all(isinstance(e, Mapping) for e in errors):
        return {number: e for number, e in enumerate(errors, start=1) if e}
    if isinstance(errors, Mapping) and errors and all(str(k).isdigit() for k in errors):
        return {int(k) + 1: e for k, e in errors.items()}
    return None


def _messages(errors: Any) -> list[str]:
    """Every message in a nest of error dicts and lists."""
    if isinstance(errors, Mapping):
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _messages(value)]
    return [str(errors)]


@extend_schema(
    tags=["observations"],
    summary="Record a batch of observations, all or nothing (Analyst)",
    description=(
        f"Up to {MAX_BATCH_ROWS} rows, validated by the same service as every other entry "
        "path. If any row is bad nothing is written, and `errors` lists every problem with "
        "its row (from 1) and field. Known keys (country, indicator, observed_on, source) "
        "are updated."
    ),
    request=ObservationBatchInputSerializer,
    responses={
        200: BatchResultSerializer,
        400: OpenApiResponse(BatchErrorSerializer, description="Nothing was recorded."),
        **error_responses(401, 403, 404, 413, 415, 429),
    },
    examples=[
        OpenApiExample(
            "Request", value={"observations": [OBSERVATION_INPUT_EXAMPLE]}, request_only=True
        ),
        OpenApiExample(
            "Recorded",
            value={"created": 1, "updated": 0, "unchanged": 0, "countries": ["SDN"]},
            response_only=True,
            status_codes=["200"],
        ),
        OpenApiExample(
            "A bad row",
            value={
                "detail": "1 problem(s), nothing recorded.",
                "errors": [{"row": 2, "field": "value", "message": "1.5 is outside [0, 1]"}],
            },
            response_only=True,
            status_codes=["400"],
        ),
    ],
)
class ObservationBatchView(ThrottleRefusedCallersMixin, generics.GenericAPIView):
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    serializer_class = ObservationBatchInputSerializer
    write_roles = (Role.ANALYST,)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            data = request.data
        except ParseError as exc:
            return _batch_errors([RowError(0, "observations", str(exc.detail))])
        parsed = ObservationBatchInputSerializer(data=data)
        if parsed.is_valid():
            try:
                result = services.record_observations(
                    rows=parsed.validated_data["observations"], recorded_by=request.user
                )
            except ObservationBatchError as exc:
                return _batch_errors(exc.errors)
            return Response(
                BatchResultSerializer(
                    {
                        "created": result.created,
                        "updated": result.updated,
                        "unchanged": result.unchanged,
                        "countries": sorted(result.countries),
                    }
                ).data
            )
        return _batch_errors(self._all_problems(parsed))

    def _all_problems(self, parsed: ObservationBatchInputSerializer) -> list[RowError]:
        by_row = _errors_by_row(parsed.errors.get("observations"))
        if by_row is None:
            # The batch as a whole is wrong: not an object, no list, empty or too long.
            return [RowError(0, "observations", m) for m in _messages(parsed.errors)]
        return _row_problems(by_row, self.request.data["observations"])


def _batch_errors(errors: list[RowError]) -> Response:
    body = {
        "detail": f"{len(errors)} problem(s), nothing recorded.",
        "errors": [{"row": e.row, "field": e.field, "message": e.message} for e in errors],
    }
    return Response(BatchErrorSerializer(body).data, status=status.HTTP_400_BAD_REQUEST)


@extend_schema(
    tags=["observations"],
    summary="One observation",
    parameters=[path_parameter("id", "Observation id.", 1234)],
    responses={200: ObservationSerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("One", value=OBSERVATION_EXAMPLE, response_only=True)],
)
class ObservationDetailView(ApiDetailView):
    serializer_class = ObservationSerializer

    def get_object(self) -> Observation:
        return get_object_or_404(selectors.observations_for_api(), pk=self.kwargs["pk"])


# --- Scoring runs and methodology versions ---------------------------------------------


class ScoringRunSerializer(serializers.ModelSerializer):
    methodology = serializers.IntegerField(
        source="methodology.number", help_text="Methodology version number."
    )
    full = serializers.BooleanField(source="is_full", help_text="Scored every country.")
    countries = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="ISO3 codes scored; null for a full run.",
    )
    timings = serializers.DictField(child=serializers.FloatField(), help_text="Seconds per step.")

    class Meta:
        model = ScoringRun
        fields = [
            "id",
            "methodology",
            "status",
            "full",
            "countries",
            "period_start",
            "period_end",
            "period_count",
            "started_at",
            "finished_at",
            "observations_read",
            "scores_written",
            "timings",
            "error",
        ]


class ScoringRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ScoringRun.Status.choices)
    methodology = django_filters.NumberFilter(
        field_name="methodology__number", help_text="Only runs of this methodology version number."
    )
    full = django_filters.BooleanFilter(
        field_name="countries", lookup_expr="isnull", help_text="Only full runs (or only not)."
    )

    class Meta:
        model = ScoringRun
        fields: list[str] = []


SCORING_RUN_EXAMPLE = {
    "id": 41,
    "methodology": 3,
    "status": "succeeded",
    "full": True,
    "countries": None,
    "period_start": "2024-01-31",
    "period_end": "2025-06-30",
    "period_count": 18,
    "started_at": "2025-06-15T02:00:04Z",
    "finished_at": "2025-06-15T02:00:09Z",
    "observations_read": 18250,
    "scores_written": 3483,
    "timings": {"read": 0.41, "score": 1.92, "write": 2.37},
    "error": "",
}


@extend_schema(
    tags=["scoring"],
    summary="Scoring runs, newest first",
    description=(
        "Every recomputation of the scores, with the methodology version it used, the "
        "periods and countries it scored, row counts, timings and any error."
    ),
    parameters=LIST_PARAMETERS,
    responses={200: ScoringRunSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("A full run", value=SCORING_RUN_EXAMPLE, response_only=True)],
)
class ScoringRunListView(ApiListView):
    serializer_class = ScoringRunSerializer
    filterset_class = ScoringRunFilter
    ordering_fields = ["started_at", "finished_at"]
    ordering = ["-started_at"]

    def get_queryset(self) -> QuerySet[ScoringRun]:
        return selectors.scoring_runs()


@extend_schema(
    tags=["scoring"],
    summary="One scoring run",
    parameters=[path_parameter("id", "Scoring run id.", 41)],
    responses={200: ScoringRunSerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("A full run", value=SCORING_RUN_EXAMPLE, response_only=True)],
)
class ScoringRunDetailView(ApiDetailView):
    serializer_class = ScoringRunSerializer

    def get_object(self) -> ScoringRun:
        return get_object_or_404(selectors.scoring_runs(), pk=self.kwargs["pk"])


class MethodologyVersionSerializer(serializers.ModelSerializer):
    published = serializers.SerializerMethodField()
    based_on = serializers.IntegerField(
        source="based_on.number", allow_null=True, default=None, help_text="Drafted from."
    )
    published_by = serializers.CharField(
        source="published_by.username", allow_null=True, default=None
    )
    factor_weights = serializers.DictField(child=serializers.FloatField())
    indicator_weights = serializers.DictField(child=serializers.FloatField())
    staleness_days = serializers.DictField(child=serializers.IntegerField())
    thresholds = serializers.DictField(
        child=serializers.FloatField(),
        help_text="moderate_from, high_from, very_high_from (0-100) and min_coverage (0-1).",
    )
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = MethodologyVersion
        fields = [
            "number",
            "status",
            "published",
            "title",
            "rationale",
            "based_on",
            "fingerprint",
            "factor_weights",
            "indicator_weights",
            "staleness_days",
            "thresholds",
            "created_at",
            "created_by",
            "published_at",
            "published_by",
            "superseded_at",
        ]

    def get_published(self, version: MethodologyVersion) -> bool:
        """True for the version of the scores users see."""
        return version.pk == self.context.get("published_id")


class MethodologyContextMixin:
    def get_serializer_context(self) -> dict[str, Any]:
        published = selectors.published_methodology()
        context = super().get_serializer_context()  # type: ignore[misc]
        return {**context, "published_id": published.pk if published else None}


METHODOLOGY_VERSION_EXAMPLE = {
    "number": 3,
    "status": "published",
    "published": True,
    "title": "Intent and incitement weigh double",
    "rationale": "Signs of intent are the most direct warning; the backtest agrees (AUC +0.01).",
    "based_on": 2,
    "fingerprint": "901c7029b48d6866bf01cc5d1732a98275948e6839c9916a0883002a988ec898",
    "factor_weights": {"RF1": 1.0, "RF10": 2.0, "RF12": 1.5},
    "indicator_weights": {"1.1": 1.0, "10.1": 2.0, "12.1": 1.0},
    "staleness_days": {"1.1": 730, "10.1": 365, "12.1": 730},
    "thresholds": {
        "moderate_from": 25.0,
        "high_from": 50.0,
        "very_high_from": 75.0,
        "min_coverage": 0.25,
    },
    "created_at": "2025-05-02T08:15:00Z",
    "created_by": "ada",
    "published_at": "2025-05-03T09:00:00Z",
    "published_by": "ada",
    "superseded_at": None,
}


@extend_schema(
    tags=["scoring"],
    summary="Methodology versions, newest first",
    description=(
        "Every weight and threshold of one version of the method (weights abridged in the "
        "example), with who drafted and published it and why. `published` marks the version "
        "of the scores users see; superseded versions keep their scores (ask for them with "
        "`?version=N` on the score endpoints). Drafts are listed for administrators only."
    ),
    parameters=LIST_PARAMETERS,
    responses={200: MethodologyVersionSerializer(many=True), **LIST_RESPONSES},
    examples=[OpenApiExample("Version 3", value=METHODOLOGY_VERSION_EXAMPLE, response_only=True)],
)
class MethodologyVersionListView(MethodologyContextMixin, ApiListView):
    serializer_class = MethodologyVersionSerializer
    ordering_fields = ["number", "created_at"]
    ordering = ["-number"]

    def get_queryset(self) -> QuerySet[MethodologyVersion]:
        return selectors.methodology_versions(administrator=_is_administrator(self.request))


@extend_schema(
    tags=["scoring"],
    summary="One methodology version",
    parameters=[path_parameter("number", "Methodology version number.", 3)],
    responses={200: MethodologyVersionSerializer, **DETAIL_RESPONSES},
    examples=[OpenApiExample("Version 3", value=METHODOLOGY_VERSION_EXAMPLE, response_only=True)],
)
class MethodologyVersionDetailView(MethodologyContextMixin, ApiDetailView):
    serializer_class = MethodologyVersionSerializer

    def get_object(self) -> MethodologyVersion:
        versions = selectors.methodology_versions(administrator=_is_administrator(self.request))
        return get_object_or_404(versions, number=self.kwargs["number"])


def _is_administrator(request: Any) -> bool:
    return Role.ADMINISTRATOR in user_roles(request.user)


class BacktestQuerySerializer(serializers.Serializer):
    from_ = serializers.IntegerField(
        required=False, min_value=1900, max_value=2100, help_text="First base year (1994)."
    )
    to = serializers.IntegerField(
        required=False,
        min_value=1900,
        max_value=2100,
        help_text="Last base year (default: the last the episode list covers).",
    )

    def to_internal_value(self, data: Any) -> Any:
        renamed = {("from_" if key == "from" else key): value for key, value in data.items()}
        return super().to_internal_value(renamed)


class IntervalSerializer(serializers.Serializer):
    value = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


BACKTEST_EXAMPLE = {
    "version": 1,
    "first_year": 1994,
    "last_year": 2012,
    "country_years": 3063,
    "positives": 52,
    "onsets": 29,
    "auc": 0.854,
    "auc_range": [0.825, 0.885],
    "recall_at": {"10": 0.29, "20": 0.52, "30": 0.69},
    "recall_range": {"10": [0.2, 0.38], "20": [0.43, 0.6], "30": [0.63, 0.77]},
    "precision_at": {"10": 0.08, "20": 0.07, "30": 0.06},
    "precision_range": {"10": [0.05, 0.1], "20": [0.05, 0.09], "30": [0.05, 0.08]},
    "years": [{"base_year": 1994, "countries": 160, "onsets": 3, "auc": 0.93, "hits": {"30": 3}}],
    "onset_ranks": [
        {
            "country": "RWA",
            "year": 1994,
            "rank_one_year_before": 6,
            "rank_two_years_before": 9,
            "ranked_one_year_before": 160,
            "ranked_two_years_before": 159,
        }
    ],
    "notes": [],
}


class BacktestUnavailable(APIException):
    """No backtest for these years or this version (no scores, no episode list): 400."""

    status_code = 400
    default_code = "backtest_unavailable"


@extend_schema(
    tags=["scoring"],
    summary="A methodology version's backtest against mass-killing onsets",
    description=(
        "Every country's December score of each base year ranked against an onset of a "
        "mass-killing episode in the next two years (the episode list of the public data "
        "folder). AUC, recall and precision in the top 10/20/30 with 95 % bootstrap ranges "
        "over base years, per-year figures, and each onset with its country's earlier ranks "
        "(years abridged in the example). Drafts for administrators only."
    ),
    parameters=[
        path_parameter("number", "Methodology version number.", 1),
        OpenApiParameter(
            "from",
            OpenApiTypes.INT,
            description="First base year (default 1994).",
            examples=[OpenApiExample("1994", value=1994)],
        ),
        OpenApiParameter(
            "to",
            OpenApiTypes.INT,
            description="Last base year (default: the last the episode list covers).",
            examples=[OpenApiExample("2012", value=2012)],
        ),
    ],
    responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404, *READ_ERRORS)},
    examples=[OpenApiExample("Version 1", value=BACKTEST_EXAMPLE, response_only=True)],
)
class MethodologyBacktestView(ThrottleRefusedCallersMixin, generics.GenericAPIView):
    permission_classes = [RolePermission]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request, number: int) -> Response:
        versions = selectors.methodology_versions(administrator=_is_administrator(request))
        version = get_object_or_404(versions, number=number)
        query = BacktestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            result = history.run_backtest(
                version,
                first_year=query.validated_data.get("from_"),
                last_year=query.validated_data.get("to"),
            )
        except (history.HistoryError, ValueError) as exc:
            raise BacktestUnavailable(str(exc)) from exc
        return Response({"version": version.number, **result.as_dict()})


# --- Schema and documentation ----------------------------------------------------------


class ApiSchemaView(ThrottleRefusedCallersMixin, SpectacularAPIView):
    """The OpenAPI schema, for signed-in users with a role."""

    permission_classes = [RolePermission]


class ApiDocsView(ThrottleRefusedCallersMixin, SpectacularSwaggerView):
    """Swagger UI from our own static files; signed-out browsers go to the login page."""

    permission_classes = [RolePermission]
    url_name = "api:schema"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())  # type: ignore[return-value]
        return super().handle_exception(exc)


# --- The token page (HTML) -------------------------------------------------------------


class ApiTokenView(RoleRequiredMixin, View):
    """Create, regenerate or revoke the signed-in user's API token.

    A new key is shown once, in the answer to the POST that created it; later visits only
    say that a token exists and since when.
    """

    template_name = "api/token.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, new_key=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        if action == "create":
            token = services.regenerate_api_token(user=request.user)
            return self._render(request, new_key=token.key)
        if action == "revoke":
            if services.revoke_api_token(user=request.user):
                messages.success(request, "Your API token was revoked.")
            return redirect("api_token")
        return HttpResponse("Unknown action.", status=400)

    def _render(self, request: HttpRequest, *, new_key: str | None) -> HttpResponse:
        token = Token.objects.filter(user=request.user).first()
        return render(request, self.template_name, {"token": token, "new_key": new_key})

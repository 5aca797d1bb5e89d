"""Conventions shared by every endpoint of the REST API (indicators and alerts).

- Permissions follow the roles (``indicators.roles``): reading needs a role, writing the
  roles a view names in ``write_roles``.
- Lists page by number (``?page=``, ``?page_size=`` up to 500) in JSON and CSV alike; the
  total and the next and previous pages are also sent as ``X-Total-Count`` and ``Link``
  headers, so a CSV client can follow them.
- Error bodies: ``{"detail": "..."}`` for 401, 403, 404, 405 and 429; ``{"field": ["..."]}``
  for validation errors; a batch adds ``"errors": [{"row", "field", "message"}]``.

This module must not import ``rest_framework.views`` or ``rest_framework.generics`` at
import time: DRF imports classes named in ``REST_FRAMEWORK`` while it loads those modules.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import filters, serializers
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from indicators.roles import Role, has_role

# --- Permissions -----------------------------------------------------------------------


class RolePermission(BasePermission):
    """Reading (GET, HEAD, OPTIONS) needs any role; writing needs one of ``view.write_roles``.

    A view without ``write_roles`` is read-only for everybody. Superusers hold every role.
    A caller who is not signed in gets 401 (DRF asks the first authenticator, Token, for
    the ``WWW-Authenticate`` header); a signed-in caller without the role gets 403.
    """

    message = "You need the Analyst, Focal point or Administrator role to use the API."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not has_role(request.user):
            return False
        method = request.method.lower()
        if method not in getattr(view, "http_method_names", ()) or not hasattr(view, method):
            return True  # a method the view does not have or allow: DRF answers 405
        if request.method in SAFE_METHODS:
            return True
        write_roles: Sequence[Role] = getattr(view, "write_roles", ())
        if write_roles and has_role(request.user, *write_roles):
            return True
        self.message = (
            f"This needs the {' or '.join(r.value for r in write_roles)} role."
            if write_roles
            else "This endpoint is read-only."
        )
        return False


class ThrottleRefusedCallersMixin:
    """Count refused calls too: no or a bad token, no role (429 once over the rate).

    DRF checks throttles only after authentication and permissions pass, so a caller who
    guesses tokens, or probes endpoints without a role, would never be slowed down. Calls
    without a valid token count against the anonymous rate, per address. Mix in before the
    DRF view class.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            super().initial(request, *args, **kwargs)  # type: ignore[misc]
        except (NotAuthenticated, AuthenticationFailed, PermissionDenied):
            self.check_throttles(request)  # type: ignore[attr-defined]  # 429 once over the rate
            raise


# --- Pagination and ordering -----------------------------------------------------------


class ApiPagination(PageNumberPagination):
    """Page numbers; ``page_size`` up to 500. Headers repeat the count and links for CSV."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response["X-Total-Count"] = str(self.page.paginator.count)
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        if links:
            response["Link"] = ", ".join(links)
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated: dict[str, Any] = super().get_paginated_response_schema(schema)
        # DRF's examples point at an ``/accounts/`` endpoint; ours read as an API page.
        for rel, page in (("next", 4), ("previous", 2)):
            paginated["properties"][rel]["example"] = (
                f"https://earlywarning.example.org/api/v1/countries/?page={page}&page_size=50"
            )
        return paginated

    def get_previous_link(self) -> str | None:
        # DRF drops ``page`` from the link to page 1; keep it, so that every link says
        # which page it is (and ``?format=csv`` links stay explicit).
        if not self.page.has_previous():
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, self.page.previous_page_number())


PAGINATION_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        OpenApiTypes.INT,
        location=OpenApiParameter.HEADER,
        response=[200],
        description="Number of results over all pages.",
    ),
    OpenApiParameter(
        "Link",
        OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        response=[200],
        description='Next and previous pages, as `<url>; rel="next"` (RFC 8288).',
    ),
]


class StableOrderingFilter(filters.OrderingFilter):
    """``?ordering=`` with the primary key as the last key, so pages never overlap, and
    empty values last in either direction (databases disagree on where NULL sorts).

    A view's ``ordering_aliases`` maps a public ordering name to the field (or annotation)
    that really sorts it, e.g. ``{"severity": "severity_rank"}``.
    """

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view) or [])
        if not {"pk", "-pk", "id", "-id"} & set(ordering):
            ordering.append("pk")
        return ordering

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        aliases: Mapping[str, str] = getattr(view, "ordering_aliases", {})
        terms = []
        for term in self.get_ordering(request, queryset, view):
            name = term.removeprefix("-")
            field = F(aliases.get(name, name))
            terms.append(
                field.desc(nulls_last=True) if term.startswith("-") else field.asc(nulls_last=True)
            )
        return queryset.order_by(*terms)


# --- CSV -------------------------------------------------------------------------------

# Spreadsheets run cells that start with these as formulas (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class PaginatedCSVRenderer(BaseRenderer):
    """``?format=csv``: one row per item of ``results`` (the current page).

    A list's columns come from the view's output serializer, so every page of an endpoint,
    empty or not, has the same header: nested objects become ``parent.child`` columns
    (empty cells where the object is null), and lists and dicts are written as JSON. A body
    that is not a list (an error, or what a write answers) becomes a single row with its
    own keys. Text that a spreadsheet would run as a formula is prefixed with an apostrophe.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        columns: list[str] = []
        if isinstance(data, Mapping) and isinstance(data.get("results"), list):
            items: list[Any] = data["results"]
            columns = _columns_of_view((renderer_context or {}).get("view"))
        elif isinstance(data, list):
            items = data
            columns = _columns_of_view((renderer_context or {}).get("view"))
        else:
            items = [data]
        if columns:
            rows = [{c: _value_at(item, c) for c in columns} for item in items]
        else:
            rows = [
                dict(_flatten(item)) if isinstance(item, Mapping) else {"value": item}
                for item in items
            ]
            columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        if columns:
            writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        return buffer.getvalue().encode(self.charset)


def _flatten(item: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, prefix=f"{name}.")
        else:
            yield name, value


def _value_at(item: Any, column: str) -> Any:
    """The value of ``parent.child`` in a nest of dicts; None where a parent is missing."""
    value = item
    for part in column.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _columns_of_view(view: Any) -> list[str]:
    """The output serializer's columns, or none for a view without one."""
    get_serializer_class = getattr(view, "get_serializer_class", None)
    if get_serializer_class is None:
        return []
    try:
        serializer = get_serializer_class()()
    except Exception:  # a view without a serializer: columns from the body instead
        return []
    return _columns_of_serializer(serializer)


def _columns_of_serializer(serializer: serializers.Serializer, prefix: str = "") -> list[str]:
    columns: list[str] = []
    for name, field in serializer.fields.items():
        nested = _nested_serializer(field)
        if nested is None:
            columns.append(f"{prefix}{name}")
        else:
            columns.extend(_columns_of_serializer(nested, prefix=f"{prefix}{name}."))
    return columns


def _nested_serializer(field: serializers.Field) -> serializers.Serializer | None:
    """The one nested object a field holds (a method field by its schema annotation)."""
    if isinstance(field, serializers.SerializerMethodField):
        method = getattr(field.parent, field.method_name, None)
        annotation = getattr(method, "_spectacular_annotation", {}).get("field")
        field = annotation if isinstance(annotation, serializers.Serializer) else field
    if isinstance(field, serializers.Serializer):  # not a ListSerializer: one object
        return field
    return None


LIST_RENDERERS = [JSONRenderer, BrowsableAPIRenderer, PaginatedCSVRenderer]


def describe_csv_as_text(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: a ``text/csv`` body is text, not JSON."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if "text/csv" in content:
                    content["text/csv"] = {
                        "schema": {
                            "type": "string",
                            "description": "The JSON body's items as CSV rows, with a header.",
                        }
                    }
    return result


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description=(
        "`csv` returns the same page as CSV, with the same columns on every page: nested "
        "objects flattened into `parent.child` columns, lists and dicts written as JSON. "
        "Follow the `Link` header, or raise `page_size` up to 500, for more rows. "
        "Default: JSON."
    ),
)

WRITE_FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="`csv` returns the answer as a CSV row instead of JSON (the default).",
)


# --- Errors ----------------------------------------------------------------------------


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's handler, with every error body a JSON object.

    DRF already answers ``{"detail": "..."}`` for 401, 403, 404, 405 and 429; a body
    longer than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which Django refuses from its declared
    length, before reading it) gets 413 and a ``detail`` saying so, not an HTML 400. Validation
    errors become ``{"field": ["message", ...]}`` with flat lists of strings: DRF nests the
    errors of list items and nested objects (``{"regions": {"0": ["..."]}}``), which are
    flattened into messages that say where (``"item 1: ..."``). A bare list of messages
    (a ``ValidationError`` raised with a string) is put under ``non_field_errors``.
    """
    from rest_framework.views import exception_handler  # see the module docstring

    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
        return Response(
            {
                "detail": (
                    f"The request body is larger than the {limit:,} bytes the API reads; "
                    "send fewer rows at a time."
                )
            },
            status=413,
        )
    response = exception_handler(exc, dict(context))
    if response is None or not isinstance(exc, serializers.ValidationError):
        return response
    if isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    if isinstance(response.data, Mapping):
        response.data = {
            str(name): [str(message) for message in flatten_messages(errors)]
            for name, errors in response.data.items()
        }
    return response


def flatten_messages(errors: Any, where: str = "") -> Iterator[str]:
    """Every message in a nest of DRF errors, prefixed with the item or field it is about.

    ``{"0": ["x"]}`` (the errors of a list's first item) gives ``item 1: x``; a list of
    objects' errors ``[{}, {"url": ["x"]}]`` gives ``item 2, url: x``.
    """
    prefix = f"{where}: " if where else ""
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            label = f"item {int(key) + 1}" if str(key).isdigit() else str(key)
            yield from flatten_messages(value, f"{where}, {label}" if where else label)
    elif isinstance(errors, list):
        nested = any(isinstance(e, Mapping | list) for e in errors)
        for index, value in enumerate(errors):
            if nested and isinstance(value, Mapping | list):
                label = f"item {index + 1}"
                yield from flatten_messages(value, f"{where}, {label}" if where else label)
            elif nested:
                yield from flatten_messages(value, where)
            else:
                yield f"{prefix}{value}"
    elif errors not in (None, ""):
        yield f"{prefix}{errors}"


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Row number, from 1; 0 for the batch as a whole.")
    field = serializers.CharField()
    message = serializers.CharField()


class BatchErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = RowErrorSerializer(many=True)


FIELD_ERRORS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Field name -> messages (`non_field_errors` for the body as a whole); or only "
        "`detail` when the body is not valid JSON."
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

_ERROR_DESCRIPTIONS = {
    401: "Not signed in: send `Authorization: Token <key>` (or use a browser session).",
    403: "Signed in without the role this needs.",
    404: "No such object, or a page or `format` that does not exist.",
    405: "Method not allowed.",
    413: "The body is larger than the API reads (2.5 MB): send fewer rows at a time.",
    415: "The body must be JSON (`Content-Type: application/json`).",
    429: "Too many requests; the `Retry-After` header says when to try again.",
}


def api_aware_page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: a path under /api/ that no route matches gets the API's JSON body.

    Routes match ids and codes strictly (``/api/v1/countries/12/`` matches nothing), so
    these 404s never reach DRF; API clients must still get ``{"detail": "Not found."}``
    rather than an HTML page. Every other path gets the site's 404 template.
    """
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the error ``codes`` (400 means field errors)."""
    responses: dict[int, OpenApiResponse] = {}
    for code in codes:
        if code == 400:
            responses[400] = OpenApiResponse(
                FIELD_ERRORS_SCHEMA, description="Invalid input; each field lists its problems."
            )
        else:
            responses[code] = OpenApiResponse(
                ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]
            )
    return responses


READ_ERRORS = (401, 403, 429)


def flatten_field_errors(errors: Any, *, row: int) -> Iterable[tuple[int, str, str]]:
    """(row, field, message) for each message in a serializer's ``errors`` for one row."""
    if isinstance(errors, Mapping):
        for field_name, messages in errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                if isinstance(message, Mapping | list):
                    yield row, str(field_name), json.dumps(message)
                else:
                    yield row, str(field_name), str(message)
    elif isinstance(errors, list):
        for message in errors:
            yield row, "non_field_errors", str(message)

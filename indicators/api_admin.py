"""API tokens in the admin, without their keys.

DRF's own ``TokenAdmin`` lists every user's key, and the admin shows a token by its key in
page titles, delete confirmations, messages and the action history: anyone who can view
tokens could use them. Here a token shows only the first characters of its key. An
administrator can still create a token for a user (the new key is shown once, in the
message after saving) and revoke one; users create and regenerate their own on
/accounts/token/.

Imported from ``IndicatorsConfig.ready``, after the admin has loaded DRF's registration.
"""

from __future__ import annotations

from typing import Any

import rest_framework.authtoken.admin  # noqa: F401  # registers DRF's TokenAdmin first
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

KEY_PREFIX_LENGTH = 4


def masked_key(key: str) -> str:
    """The first characters of a key, enough to tell tokens apart and useless to a caller."""
    return f"{key[:KEY_PREFIX_LENGTH]}…"


def _token_label(token: TokenProxy) -> str:
    return masked_key(token.key)


# TokenProxy exists only for the admin; every place the admin prints a token (titles,
# breadcrumbs, delete pages, messages, LogEntry.object_repr) goes through str().
TokenProxy.__str__ = _token_label


class ApiTokenAdmin(TokenAdmin):
    list_display = ("key_prefix", "user", "created")

    @admin.display(description="Key")
    def key_prefix(self, token: TokenProxy) -> str:
        return masked_key(token.key)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A token belongs to the user it was made for; moving it would hand over access.
        return ("user", "created") if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("user", "created") if obj is not None else ("user",)

    def response_add(
        self, request: HttpRequest, obj: TokenProxy, post_url_continue: str | None = None
    ) -> HttpResponse:
        messages.warning(
            request,
            f"The new API key for {obj.user} is {obj.key}. Give it to them now: it is not "
            "shown again.",
        )
        response: HttpResponse = super().response_add(request, obj, post_url_continue)
        return response


admin.site.unregister(TokenProxy)
admin.site.register(TokenProxy, ApiTokenAdmin)

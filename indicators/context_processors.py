"""Template context every page needs: the attribution of the public data behind the numbers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from indicators.models import DataSet


def data_attribution(request: HttpRequest) -> dict[str, Any]:
    """The imported public data sets, for the footer of every signed-in page.

    Every score rests on them (V-Dem's share-alike licence asks for its attribution
    wherever a number derived from it is shown). Lazy: no query unless a page shows it.
    """
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "data_attribution": lambda: list(
            DataSet.objects.filter(imported_at__isnull=False)
            .order_by("-share_alike", "name")
            .values("key", "short", "version", "provider", "licence", "share_alike")
        )
    }

"""Start-up checks of the alert settings: e-mails must carry links people can open."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

logger = logging.getLogger(__name__)


def site_url_problems() -> list[Error | Warning]:
    """What is wrong with ``SITE_URL`` for the e-mails' links, if anything.

    Outside DEBUG: unset (links would point at the demo's 127.0.0.1:8000) or a loopback
    address is a warning; anywhere, a value that is not an absolute http(s) address
    without a query is an error.
    """
    url = settings.SITE_URL
    if not url:
        if settings.DEBUG:
            return []
        return [
            Warning(
                "SITE_URL is not set: links in alert e-mails (country pages, one-click "
                "acknowledgement) point at http://127.0.0.1:8000, which recipients cannot open.",
                hint="Set SITE_URL to the address people open the dashboard at, e.g. "
                "https://early-warning.example.org.",
                id="alerts.W001",
            )
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        return [
            Error(
                f"SITE_URL {url!r} is not an absolute http(s) address.",
                hint="For example https://early-warning.example.org (a path such as /ew is fine).",
                id="alerts.E001",
            )
        ]
    if not settings.DEBUG and _is_loopback(parts.hostname):
        return [
            Warning(
                f"SITE_URL {url!r} is a loopback address: links in alert e-mails open only "
                "on this machine.",
                hint="Set SITE_URL to the address people open the dashboard at.",
                id="alerts.W002",
            )
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.compatibility, deploy=False)
def check_site_url(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    return site_url_problems()


def warn_at_start_up() -> None:
    """Log the same problems once per process: gunicorn and Celery run no system checks,
    and the workers are the ones that write the e-mails."""
    for problem in site_url_problems():
        logger.warning("%s (%s) %s", problem.msg, problem.id, problem.hint or "")

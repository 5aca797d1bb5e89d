"""Delivery channels: one small class per channel kind, looked up in a plain dict."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from alerts import selectors, webhook_addresses
from alerts.models import Alert, Notification, RuleChoice

ACK_SALT = "alerts.acknowledge"
# Where `make run` serves the demo: e-mail links start with it while SITE_URL is unset.
DEMO_SITE_URL = "http://127.0.0.1:8000"
SIGNATURE_HEADER = "X-EarlyWarning-Signature"


class TransportError(Exception):
    """A delivery failed; ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def acknowledgement_token(notification: Notification) -> str:
    """A signed, timestamped token naming one notification: it expires, works once, and
    acknowledges only the alerts of its message that have not escalated since (each
    message item keeps the alert's escalation count)."""
    return signing.dumps({"n": notification.pk}, salt=ACK_SALT)


def site_url() -> str:
    """The address e-mail links start with, without a trailing slash."""
    return (settings.SITE_URL or DEMO_SITE_URL).rstrip("/")


def absolute_url(path: str) -> str:
    return site_url() + path


def alert_context(notification: Notification) -> dict[str, Any]:
    """What the e-mail and webhook templates say: the message's alerts (one country's,
    the most urgent first), the words for codes, and absolute links."""
    message = notification.alert_message
    alerts: list[Alert] = [
        item.alert
        for item in message.items.select_related("alert__country", "alert__observation").order_by(
            "position"
        )
    ]
    lead = alerts[0]
    country = message.country
    red_flags_only = all(alert.rule == RuleChoice.RED_FLAG for alert in alerts)
    return {
        "alert": lead,
        "alerts": alerts,
        "more": len(alerts) - 1,
        "message": message,
        "notification": notification,
        "recipient": notification.recipient,
        "country": country,
        "names": selectors.framework_names(),
        "country_url": absolute_url(f"/countries/{country.iso3}/"),
        "alert_url": absolute_url(reverse("alerts:detail", args=[lead.pk])),
        "alert_urls": {
            alert.pk: absolute_url(reverse("alerts:detail", args=[alert.pk])) for alert in alerts
        },
        "inbox_url": absolute_url(reverse("alerts:inbox")),
        "ack_url": absolute_url(
            reverse("alerts:acknowledge_link", args=[acknowledgement_token(notification)])
        ),
        "ack_valid_days": settings.ALERT_ACK_LINK_MAX_AGE_DAYS,
        "subscriptions_url": absolute_url(reverse("alerts:subscriptions")),
        # Red flags come from observations, not a score: show where the country stands
        # on its published score when nothing in the message is about the score.
        "red_flags_only": red_flags_only,
        "country_score": selectors.latest_published_score(country) if red_flags_only else None,
    }


def send_mail_message(*, to: str, subject: str, text: str, html: str, message_id: str) -> None:
    """Send one e-mail; SMTP and network errors become ``TransportError``."""
    message = EmailMultiAlternatives(
        subject=subject.strip(),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id},
        connection=get_connection(fail_silently=False),
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransportError(f"recipient refused: {exc.recipients}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


class EmailTransport:
    def send(self, notification: Notification) -> None:
        context = alert_context(notification)
        template = "alerts/email/alert"  # reminders and escalations adapt their headline
        send_mail_message(
            to=notification.target,
            subject=" ".join(render_to_string(f"{template}_subject.txt", context).split()),
            text=render_to_string(f"{template}.txt", context),
            html=render_to_string(f"{template}.html", context),
            message_id=notification.message_id,
        )


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """Connects only to an address of the host that passed the public-address check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = webhook_addresses.connect


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS; the certificate is still verified against the host name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = webhook_addresses.connect


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


def _webhook_opener() -> urllib.request.OpenerDirector:
    """http and https only, straight to the checked address: no proxy from the environment
    (it would resolve the host itself), no redirects (a 3xx could point anywhere), no
    file:, ftp: or data: URLs."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _CheckedHTTPHandler(),
        _CheckedHTTPSHandler(context=ssl.create_default_context()),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener


class WebhookTransport:
    """POSTs the alert as JSON, signed with HMAC-SHA256 of the body under the subscriber's
    secret, in ``X-EarlyWarning-Signature: sha256=<hex>``.

    Only to public addresses (see ``alerts.webhook_addresses``): the URL is checked again
    and its host resolved and checked at every delivery; a refused target fails at once.
    """

    timeout = 10

    def send(self, notification: Notification) -> None:
        try:
            webhook_addresses.check_url(notification.target)
        except webhook_addresses.RefusedWebhookTarget as exc:
            raise TransportError(f"Webhook refused: {exc}", permanent=True) from exc
        context = alert_context(notification)
        alert = context["alert"]
        # The top level describes the message's most urgent alert (as before messages
        # held several); "alerts" lists every alert of the message, that one first.
        body = json.dumps(
            {
                **_webhook_alert(alert, context),
                "message_id": notification.message_id,
                "kind": notification.kind,
                "country_url": context["country_url"],
                "alerts": [_webhook_alert(a, context) for a in context["alerts"]],
            },
            sort_keys=True,
        ).encode()
        signature = hmac.new(notification.webhook_secret.encode(), body, hashlib.sha256)
        request = urllib.request.Request(
            notification.target,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: f"sha256={signature.hexdigest()}",
                "User-Agent": "earlywarning-webhook/1",
            },
        )
        try:
            with _webhook_opener().open(request, timeout=self.timeout) as response:
                response.read()
        except webhook_addresses.RefusedWebhookTarget as exc:
            raise TransportError(f"Webhook refused: {exc}", permanent=True) from exc
        except urllib.error.HTTPError as exc:
            # 4xx other than 408/429 will not succeed on retry, nor will a redirect (not
            # followed: the subscriber should give the final address).
            permanent = (300 <= exc.code < 500) and exc.code not in (408, 429)
            hint = ": redirects are not followed" if 300 <= exc.code < 400 else ""
            raise TransportError(
                f"HTTP {exc.code} from webhook{hint}", permanent=permanent
            ) from exc
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def _webhook_alert(alert: Alert, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "country": alert.country.iso3,
        "country_name": alert.country.name,
        "rule": alert.rule,
        "crime_type": alert.crime_type,
        "severity": alert.severity,
        "status": alert.status,
        "summary": alert.summary,
        "score": alert.score,
        "previous_score": alert.previous_score,
        "compared_with": alert.compared_with,
        "baseline_period": alert.baseline_period.isoformat() if alert.baseline_period else None,
        "level": alert.level,
        "change_3m": alert.change_3m,
        "drivers": alert.drivers,
        "drivers_named": [
            {"factor": code, "name": context["names"]["factors"].get(code, ""), "change": change}
            for code, change in alert.drivers
        ],
        "drivers_crime": alert.drivers_crime,
        "crime_switch": alert.crime_switch,
        "red_flags": alert.red_flags,
        "period": alert.period.isoformat(),
        "url": context["alert_urls"][alert.pk],
    }


TRANSPORTS: dict[str, type[EmailTransport] | type[WebhookTransport]] = {
    Notification.Channel.EMAIL: EmailTransport,
    Notification.Channel.WEBHOOK: WebhookTransport,
}

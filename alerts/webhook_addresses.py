"""Where webhooks may post: public internet addresses only, unless a deployment allows more.

A subscriber types the URL, so it must not become a way to reach what only the server can
reach: the cache and broker on loopback, the database, a cloud metadata service on
169.254.169.254, anything on the private network. A URL is checked when the subscription
is saved (``validate_webhook_url``: http or https, no credentials, no non-public host) and
again when each webhook is sent (``checked_addresses``), after resolving the host name: a
DNS answer can change between the two. The transport then connects to the very address
that passed the check, so a name that resolves differently a moment later (DNS rebinding)
cannot slip through.

``settings.WEBHOOK_ALLOW_PRIVATE_HOSTS`` lets a deployment post to internal hosts it
trusts: host names (as written in the URL), IP addresses or networks (``10.1.0.0/16``), or
``*`` for any host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's answers: (family, type, proto, canonname, sockaddr).
AddressInfo = tuple[Any, Any, int, str, Any]

SCHEMES = ("http", "https")
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_ALLOW_HINT = (
    "Webhooks are only sent to public internet addresses; an administrator can allow an "
    "internal host with the WEBHOOK_ALLOW_PRIVATE_HOSTS setting."
)


class RefusedWebhookTarget(ValueError):
    """A webhook URL or the address its host resolves to may not be posted to."""


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (e.g. "a loopback address"), or None if it is.

    IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are
    judged by that address too.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped)
        embedded = [address.sixtofour, *(address.teredo or ())]
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        for inner in embedded:
            if inner is not None and (reason := refusal(inner)):
                return reason
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private or special-purpose address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def _allowed(host: str, address: IPAddress | None) -> bool:
    """Whether the deployment allows posting to ``host`` (at ``address``) although it is
    not public."""
    for entry in settings.WEBHOOK_ALLOW_PRIVATE_HOSTS:
        entry = entry.strip().lower()
        if entry == "*" or entry == host:
            return True
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            continue  # a host name, not this one
        if address is not None and address.version == network.version and address in network:
            return True
    return False


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL whose form is acceptable; raises
    ``RefusedWebhookTarget`` saying what is wrong (scheme, credentials, host name or
    literal address). The host's DNS answer is not checked here."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedWebhookTarget(f"This is not a valid URL ({exc}).") from exc
    if parts.scheme.lower() not in SCHEMES:
        raise RefusedWebhookTarget("A webhook URL must start with https:// or http://.")
    if parts.username is not None or parts.password is not None:
        raise RefusedWebhookTarget(
            "A webhook URL cannot carry a user name or password: each delivery is "
            "authenticated by its signature header instead."
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedWebhookTarget("A webhook URL needs a host name.")
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    address = _literal(host)
    if _allowed(host, address):
        return host, port
    if address is not None and (reason := refusal(address)):
        raise RefusedWebhookTarget(f"{host} is {reason}. {_ALLOW_HINT}")
    if host == "localhost" or host.endswith(".localhost"):
        raise RefusedWebhookTarget(f"{host} is this server itself. {_ALLOW_HINT}")
    return host, port


def resolve(host: str, port: int) -> list[AddressInfo]:
    """The host's addresses for a TCP connection (the system resolver; tests replace it)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def checked_addresses(host: str, port: int) -> list[AddressInfo]:
    """Resolve ``host`` and return its addresses, all of them public (or allowed).

    Raises ``RefusedWebhookTarget`` if any answer is not public: a name that resolves to
    both kinds is refused as a whole. Raises ``OSError`` when the name does not resolve.
    """
    try:
        answers = resolve(host, port)
    except UnicodeError as exc:  # e.g. an empty or over-long label
        raise RefusedWebhookTarget(f"{host} is not a valid host name.") from exc
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0].partition("%")[0])  # drop an IPv6 zone
        if _allowed(host, address):
            continue
        if reason := refusal(address):
            raise RefusedWebhookTarget(f"{host} resolves to {address}, {reason}. {_ALLOW_HINT}")
    if not answers:
        raise OSError(f"{host} has no address")
    return answers


def validate_webhook_url(url: str) -> None:
    """Django validator for a subscription's webhook URL.

    Refuses other schemes, credentials and non-public hosts, including names that resolve
    to non-public addresses now. A name that does not resolve at the moment is accepted:
    every delivery checks it again, and a failure shows on the notification.
    """
    if not url:
        return
    try:
        host, port = check_url(url)
        if _literal(host) is None and not _allowed(host, None):
            # A name that does not resolve now is checked again at every delivery.
            with contextlib.suppress(OSError):
                checked_addresses(host, port)
    except RefusedWebhookTarget as exc:
        raise ValidationError(str(exc), code="webhook_target") from exc


def connect(address: tuple[str, int], timeout: Any, source_address: Any = None) -> socket.socket:
    """Like ``socket.create_connection``, but only to checked addresses of the host.

    Each address that passed ``checked_addresses`` is tried in turn; the name is never
    resolved again between the check and the connection.
    """
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in checked_addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if isinstance(timeout, int | float):  # else the global default
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError(f"could not connect to {host}")

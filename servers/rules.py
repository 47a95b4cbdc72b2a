"""Rules for what a person may type: server URLs, names and static tokens.

URL normalisation makes the stored URL, and so the OAuth ``resource`` derived
from it, stable: scheme and host lower-cased, default port and fragment
dropped, path and query kept exactly. Name derivation follows the seed
behaviour (seed-behaviour.md §6.2).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError

from mcpsettings import outbound

from .models import NAME_MAX_LENGTH, URL_MAX_LENGTH

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
TOKEN_MAX_LENGTH = 8192


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_server_url(raw: str, *, allow_private: str) -> str:
    """Validate and normalise a server URL, or raise ValidationError."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError("Enter the server's URL.", code="required")
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(
            f"That URL is too long (at most {URL_MAX_LENGTH} characters).",
            code="too_long",
        )
    if _CONTROL_OR_SPACE.search(value):
        raise ValidationError("A URL cannot contain spaces.", code="invalid")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValidationError(
            "Enter a full URL starting with https://, for example "
            "https://mcp.example.com/mcp.",
            code="invalid",
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Remove the user name and password from the URL; add a token instead.",
            code="userinfo",
        )
    if scheme == "http" and not outbound.plain_http_allowed(host, allow_private):
        raise ValidationError(
            "Use https://. Plain http is only allowed for servers on this "
            "machine in development.",
            code="insecure",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def derive_name(url: str) -> str:
    """A short name from the URL's host (seed-behaviour.md §6.2)."""
    try:
        parts = urlsplit((url or "").strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    if host in {"localhost", "127.0.0.1", "::1"}:
        name = f"localhost-{port}" if port else "localhost"
    elif _ip(host):
        name = host
    else:
        labels = [label for label in host.split(".") if label]
        name = labels[-2] if len(labels) >= 3 else labels[0]
    return name[:NAME_MAX_LENGTH]


def clean_token(raw: str) -> str:
    """Trim a pasted token; refuse anything that could inject a header."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError("Paste the token.", code="required")
    if _CONTROL_OR_SPACE.search(value):
        raise ValidationError(
            "A token cannot contain spaces, line breaks or control characters. "
            "Paste only the token itself (without “Bearer”).",
            code="invalid",
        )
    if len(value) > TOKEN_MAX_LENGTH:
        raise ValidationError("That token is too long.", code="too_long")
    return value

"""Well-known metadata URLs, resource identifiers and endpoint URL checks.

- RFC 9728 §3.1: protected resource metadata lives at the resource URL with
  ``/.well-known/oauth-protected-resource`` inserted between the host and the
  path (and query); MCP adds the root URL as a fallback.
- RFC 8414 §3.1: authorization server metadata inserts
  ``/.well-known/oauth-authorization-server`` before the issuer path; MCP adds
  OpenID Connect Discovery 1.0 (§4) in both the inserted and appended forms.
- RFC 8707 §2 and MCP "Canonical Server URI": a resource is an absolute URI
  without a fragment, scheme and host in lower case.
- MCP security considerations: every authorization server endpoint is https;
  plain http is tolerated only on loopback, for tests and the conformance
  suite, and only when the caller allows it.

Must not import Django.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from .errors import InsecureEndpoint

PROTECTED_RESOURCE_WELL_KNOWN = "/.well-known/oauth-protected-resource"
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OPENID_WELL_KNOWN = "/.well-known/openid-configuration"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_resource(url: str) -> str:
    """Return ``url`` with scheme and host lower-cased and no fragment.

    Nothing else changes: no trailing slash is added or removed, because the
    resource is compared as a string by authorization servers.
    """
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    netloc = f"{userinfo}{at}{hostport.lower()}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{netloc}{parts.path}{query}"


def protected_resource_metadata_urls(
    server_url: str, resource_metadata: str | None = None
) -> list[str]:
    """Return protected resource metadata URLs to try, in priority order.

    The ``resource_metadata`` URL from a challenge is the only candidate when
    present (MCP: "MUST use"). Otherwise RFC 9728 §3.1 path insertion, then
    the root URL. The server's query belongs to the resource identifier, so it
    stays on the path-inserted URL; the root URL is the origin's alone.
    """
    if resource_metadata:
        return [resource_metadata]
    parts = urlsplit(server_url)
    root = origin(parts) + PROTECTED_RESOURCE_WELL_KNOWN
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    if not path and not query:
        return [root]
    return [root + path + query, root]


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Return metadata URLs to try for ``issuer``, in MCP priority order.

    RFC 8414 §3.1: insert the well-known segment before the issuer path,
    without the path's terminating "/". Then OIDC with the same insertion,
    then OIDC Discovery 1.0 §4 (appended). An issuer without a path has only
    the two root URLs.
    """
    parts = urlsplit(issuer)
    base = origin(parts)
    path = parts.path.rstrip("/")
    if not path:
        return [base + OAUTH_WELL_KNOWN, base + OPENID_WELL_KNOWN]
    return [
        base + OAUTH_WELL_KNOWN + path,
        base + OPENID_WELL_KNOWN + path,
        base + path + OPENID_WELL_KNOWN,
    ]


def origin(parts: SplitResult) -> str:
    """``scheme://host[:port]`` without user information."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def resource_allowed(server_url: str, resource: str) -> bool:
    """Whether metadata for ``resource`` may describe ``server_url``.

    RFC 9728 §3.3 as relaxed by MCP and the TypeScript SDK's
    ``checkResourceAllowed``: same origin (scheme, host, port), and the
    resource path is a prefix of the server path on a segment boundary.
    """
    try:
        server = urlsplit(server_url)
        allowed = urlsplit(resource)
        if _origin_key(server) != _origin_key(allowed):
            return False
    except ValueError:
        return False
    if server.scheme.lower() not in _DEFAULT_PORTS or not server.hostname:
        return False
    server_path = _with_slash(server.path)
    allowed_path = _with_slash(allowed.path)
    return server_path.startswith(allowed_path)


def _origin_key(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme)
    return scheme, (parts.hostname or ""), port


def _with_slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_http_url(url: object) -> SplitResult | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts


def _is_http_loopback(parts: SplitResult | None) -> bool:
    return (
        parts is not None
        and parts.scheme.lower() == "http"
        and is_loopback_host(parts.hostname)
    )


def check_fetch_url(url: str, *, what: str, allow_http_loopback: bool) -> str:
    """Return ``url`` if it is https (or http on loopback, when allowed)."""
    parts = _parse_http_url(url)
    if parts is not None and parts.scheme.lower() == "https":
        return url
    if allow_http_loopback and _is_http_loopback(parts):
        return url
    raise InsecureEndpoint(f"The {what} is not an https URL.")


def check_endpoint(
    url: str, *, what: str, issuer: str, allow_http_loopback: bool
) -> str:
    """Return endpoint ``url`` if it is https, else raise InsecureEndpoint.

    Plain http passes only when ``allow_http_loopback`` is set, the issuer is
    itself http on loopback and so is the endpoint: a local test server, never
    a real deployment. Other schemes (``javascript:``, ``data:``) never pass.
    """
    parts = _parse_http_url(url)
    if parts is not None and parts.scheme.lower() == "https":
        return url
    if (
        allow_http_loopback
        and _is_http_loopback(parts)
        and _is_http_loopback(_parse_http_url(issuer))
    ):
        return url
    raise InsecureEndpoint(
        f"The authorization server's {what} is not an https URL, so it cannot be used."
    )


def redact(url: str) -> str:
    """Return ``url`` for messages: no user information, query or fragment.

    A server URL's query may carry an API key, and metadata URLs copy it.
    """
    try:
        parts = urlsplit(url)
        shown = origin(parts) + parts.path
    except ValueError:
        return "(malformed URL)"
    if not parts.scheme or not parts.hostname:
        return "(malformed URL)"
    return shown + ("?…" if parts.query else "")

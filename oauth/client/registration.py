"""How this app gets a ``client_id`` at an authorization server.

MCP authorization (2026-07-28) "Client Registration", in priority order:

1. pre-registered credentials for that issuer;
2. a Client ID Metadata Document (CIMD,
   draft-ietf-oauth-client-id-metadata-document) when the metadata has
   ``client_id_metadata_document_supported: true``: the ``client_id`` is the
   https URL of the app's own JSON document;
3. Dynamic Client Registration (RFC 7591, deprecated by MCP but widely
   deployed) when the metadata has a ``registration_endpoint``;
4. otherwise the user has to paste a token.

Registrations are bound to the issuer they came from (SEP-2352) and must
never be presented to another one; ``ClientRegistration.issuer`` records it.

The app is a confidential web server, so DCR asks for ``client_secret_basic``
when the server allows it (``application_type: web``, SEP-837).

Must not import Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from .discovery import AuthorizationServerMetadata
from .errors import NoRegistrationMethod, RegistrationError

RegistrationKind = Literal["pre-registered", "cimd", "dcr"]

# Client authentication methods this client can perform, best first
# (RFC 6749 §2.3.1; "none" is RFC 7591 §2 for public clients).
SUPPORTED_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class ClientRegistration:
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint_auth_method: str = "none"
    kind: RegistrationKind = "dcr"
    issuer: str = ""


def choose_registration_method(
    metadata: AuthorizationServerMetadata,
    *,
    has_preregistered: bool,
    cimd_url: str | None,
) -> RegistrationKind:
    """Pick pre-registered → CIMD → DCR, or raise NoRegistrationMethod."""
    if has_preregistered:
        return "pre-registered"
    if cimd_url and metadata.client_id_metadata_document_supported:
        return "cimd"
    if metadata.registration_endpoint:
        return "dcr"
    raise NoRegistrationMethod()


def choose_token_endpoint_auth_method(supported: Sequence[str] | None) -> str:
    """Best method this client can perform among those the server lists.

    RFC 8414 §2: when ``token_endpoint_auth_methods_supported`` is omitted,
    the default is ``client_secret_basic``.
    """
    if supported is None:
        return "client_secret_basic"
    for method in SUPPORTED_AUTH_METHODS:
        if method in supported:
            return method
    raise RegistrationError(
        "The authorization server accepts no client authentication method this "
        "app supports.",
        error="invalid_client_metadata",
    )


# -- DCR: build → send → parse ---------------------------------------------


def build_registration_request(
    metadata: AuthorizationServerMetadata,
    *,
    client_name: str,
    redirect_uris: Sequence[str],
    scope: str | None = None,
    client_uri: str | None = None,
    logo_uri: str | None = None,
) -> dict[str, Any]:
    """RFC 7591 §2 client metadata for this web app."""
    request: dict[str, Any] = {
        "client_name": client_name,
        "redirect_uris": list(redirect_uris),
        "grant_types": list(GRANT_TYPES),
        "response_types": ["code"],
        "application_type": "web",
        "token_endpoint_auth_method": choose_token_endpoint_auth_method(
            metadata.token_endpoint_auth_methods_supported
        ),
    }
    if scope:
        request["scope"] = scope
    if client_uri:
        request["client_uri"] = client_uri
    if logo_uri:
        request["logo_uri"] = logo_uri
    return request


def register(
    http: httpx.Client,
    metadata: AuthorizationServerMetadata,
    request: Mapping[str, Any],
) -> ClientRegistration:
    """POST ``request`` to the registration endpoint (RFC 7591 §3.1)."""
    if not metadata.registration_endpoint:
        raise NoRegistrationMethod()
    try:
        response = http.post(
            metadata.registration_endpoint,
            json=dict(request),
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise RegistrationError(
            "The authorization server's registration endpoint could not be "
            f"reached ({type(exc).__name__}).",
            error="temporarily_unavailable",
        ) from exc
    return parse_registration_response(
        response,
        issuer=metadata.issuer,
        requested_auth_method=request.get("token_endpoint_auth_method"),
    )


def parse_registration_response(
    response: httpx.Response,
    *,
    issuer: str,
    requested_auth_method: str | None = None,
) -> ClientRegistration:
    """RFC 7591 §3.2: read the client information or the error response."""
    document = _json_object(response)
    if not response.is_success:
        error = document.get("error") if document else None
        description = document.get("error_description") if document else None
        raise RegistrationError(
            "The authorization server refused to register this app "
            f"(HTTP {response.status_code}).",
            error=error if isinstance(error, str) else None,
            description=description if isinstance(description, str) else None,
        )
    if document is None:
        raise RegistrationError(
            "The authorization server's registration response was not JSON."
        )
    client_id = document.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError(
            "The authorization server's registration response has no client_id."
        )
    client_secret = document.get("client_secret")
    if not isinstance(client_secret, str) or not client_secret:
        client_secret = None
    # RFC 7591 §3.2.1: the server returns the metadata it actually registered,
    # which may differ from the request; an absent value means the request's.
    method = document.get("token_endpoint_auth_method")
    if not isinstance(method, str) or not method:
        method = requested_auth_method or (
            "client_secret_basic" if client_secret else "none"
        )
    if method not in SUPPORTED_AUTH_METHODS:
        raise RegistrationError(
            "The authorization server registered this app for a client "
            "authentication method it does not support.",
            error="invalid_client_metadata",
        )
    if method != "none" and client_secret is None:
        raise RegistrationError(
            "The authorization server registered this app as confidential but "
            "returned no client secret.",
            error="invalid_client_metadata",
        )
    return ClientRegistration(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=method,
        kind="dcr",
        issuer=issuer,
    )


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


# -- CIMD -------------------------------------------------------------------


def cimd_document(
    client_id_url: str,
    redirect_uris: Sequence[str],
    client_name: str,
    *,
    client_uri: str | None = None,
    logo_uri: str | None = None,
) -> dict[str, Any]:
    """The JSON this app serves at ``client_id_url`` (its CIMD).

    The document's ``client_id`` equals its own URL. A CIMD client has no
    secret, so it authenticates with ``none`` and relies on PKCE.
    """
    parts = urlsplit(client_id_url)
    if parts.scheme != "https" or parts.path in ("", "/") or parts.fragment:
        raise ValueError("A CIMD client_id is an https URL with a path.")
    document: dict[str, Any] = {
        "client_id": client_id_url,
        "client_name": client_name,
        "redirect_uris": list(redirect_uris),
        "grant_types": list(GRANT_TYPES),
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "web",
    }
    if client_uri:
        document["client_uri"] = client_uri
    if logo_uri:
        document["logo_uri"] = logo_uri
    return document


def cimd_registration(client_id_url: str, *, issuer: str) -> ClientRegistration:
    """The registration a CIMD ``client_id`` amounts to at ``issuer``."""
    return ClientRegistration(
        client_id=client_id_url,
        token_endpoint_auth_method="none",
        kind="cimd",
        issuer=issuer,
    )

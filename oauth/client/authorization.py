"""The authorization request and the validation of its response.

- RFC 6749 §4.1.1: ``response_type=code``, ``client_id``, ``redirect_uri``,
  ``scope``, ``state``; §3.1: the endpoint's own query is kept and no
  parameter appears twice.
- RFC 7636 §4.3: ``code_challenge`` with ``code_challenge_method=S256``.
- RFC 8707 §2: ``resource``, the protected resource metadata's string.
- RFC 6749 §4.1.2 / §4.1.2.1 and RFC 9207 §2.4 for the response, checked in
  this order: ``state``, then ``iss``, and only then ``error`` and ``code``.
  On an ``iss`` problem the response may come from an attacker's server, so
  its ``error`` and ``error_description`` are neither acted on nor shown.

Must not import Django.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .discovery import AuthorizationServerMetadata
from .errors import (
    AuthorizationDenied,
    CallbackError,
    IssMismatch,
    StateMismatch,
)

_OWN_PARAMETERS = {
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
}


def build_authorization_url(
    metadata: AuthorizationServerMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    resource: str,
    scope: str | None = None,
) -> str:
    """Return the URL to send the browser to (RFC 6749 §4.1.1)."""
    parts = urlsplit(metadata.authorization_endpoint)
    kept = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in _OWN_PARAMETERS
    ]
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", code_challenge),
        ("code_challenge_method", "S256"),
        ("resource", resource),
    ]
    if scope:
        params.append(("scope", scope))
    # RFC 6749 §3.1: the endpoint URI has no fragment.
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(kept + params), "")
    )


def validate_callback(
    params: Mapping[str, str],
    *,
    expected_state: str,
    issuer: str,
    iss_supported: bool,
) -> str:
    """Check an authorization response and return its ``code``.

    ``issuer`` is the issuer recorded when the request was made and
    ``iss_supported`` its ``authorization_response_iss_parameter_supported``.
    """
    state = params.get("state")
    if (
        not expected_state
        or not isinstance(state, str)
        or not hmac.compare_digest(state.encode(), expected_state.encode())
    ):
        raise StateMismatch()

    # RFC 9207 §2.4, as tabled by MCP 2026-07-28: advertised and present →
    # compare; advertised and absent → reject; not advertised but present →
    # compare anyway; neither → proceed. Plain string equality: no case
    # folding, trailing-slash or percent-encoding normalisation.
    iss = params.get("iss")
    if iss is None:
        if iss_supported:
            raise IssMismatch(
                "The authorization server did not identify itself in its "
                "response, although it says it always does."
            )
    elif iss != issuer:
        raise IssMismatch()

    error = params.get("error")
    if error:
        description = params.get("error_description")
        if error == "access_denied":
            raise AuthorizationDenied(error=error, description=description)
        raise CallbackError(
            "The authorization server returned an error.",
            error=error,
            description=description,
        )

    code = params.get("code")
    if not code:
        raise CallbackError(
            "The authorization response contains no authorization code."
        )
    return code

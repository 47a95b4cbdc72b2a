"""Token endpoint calls: code exchange, refresh and revocation.

- RFC 6749 §4.1.3 (authorization code grant) with RFC 7636 §4.5
  ``code_verifier`` and RFC 8707 §2 ``resource``; §6 (refresh); §5.1 and §5.2
  (successful and error responses); §2.3.1 (client authentication).
- RFC 7009 §2 (revocation).

Errors are mapped for the caller's retry decision: ``invalid_grant``,
``invalid_client`` and ``unauthorized_client`` mean the user has to authorize
again (InvalidGrant); no response, timeouts, 429 and 5xx are worth retrying
(TransientTokenError); anything else is a TokenError.

Nothing sent to the token endpoint ever appears in an exception message, and
an ``error_description`` that echoes one of those values is scrubbed.

Must not import Django.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote_plus

import httpx

from .errors import InvalidGrant, TokenError, TransientTokenError
from .registration import ClientRegistration

REAUTHORIZE_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client"}
)


@dataclass(frozen=True)
class Tokens:
    """A token response. ``scope`` None: the server did not say (§5.1)."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    expires_at: datetime | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None


@dataclass(frozen=True)
class TokenRequest:
    """A form POST to the token or revocation endpoint, not yet sent."""

    url: str
    data: dict[str, str] = field(repr=False)
    headers: dict[str, str] = field(repr=False)


# -- build (pure) -----------------------------------------------------------


def build_code_exchange(
    *,
    token_endpoint: str,
    client: ClientRegistration,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str,
) -> TokenRequest:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "resource": resource,
    }
    return _authenticated(token_endpoint, client, data)


def build_refresh(
    *,
    token_endpoint: str,
    client: ClientRegistration,
    refresh_token: str,
    resource: str,
    scope: str | None = None,
) -> TokenRequest:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "resource": resource,
    }
    if scope:
        data["scope"] = scope
    return _authenticated(token_endpoint, client, data)


def build_revocation(
    *,
    revocation_endpoint: str,
    client: ClientRegistration,
    token: str,
    token_type_hint: str | None = None,
) -> TokenRequest:
    data = {"token": token}
    if token_type_hint:
        data["token_type_hint"] = token_type_hint
    return _authenticated(revocation_endpoint, client, data)


def _authenticated(
    url: str, client: ClientRegistration, data: dict[str, str]
) -> TokenRequest:
    """Add RFC 6749 §2.3.1 client authentication for ``client``."""
    headers = {"Accept": "application/json"}
    method = client.token_endpoint_auth_method
    if method == "none":
        data["client_id"] = client.client_id
    elif method in ("client_secret_basic", "client_secret_post"):
        if not client.client_secret:
            raise TokenError(
                "This app's registration has no client secret, but the server "
                "requires one.",
                error="invalid_client",
            )
        if method == "client_secret_basic":
            # §2.3.1: each part is form-urlencoded before base64, so a ":" in
            # the id or secret cannot split the pair in the wrong place.
            pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
            encoded = base64.b64encode(pair.encode()).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
        else:
            data["client_id"] = client.client_id
            data["client_secret"] = client.client_secret
    else:
        raise TokenError(
            "This app cannot perform the client authentication method the "
            "server registered it with.",
            error="invalid_client",
        )
    return TokenRequest(url=url, data=data, headers=headers)


# -- send -------------------------------------------------------------------


def exchange_code(
    http: httpx.Client,
    *,
    token_endpoint: str,
    client: ClientRegistration,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str,
    now: datetime,
) -> Tokens:
    """Exchange an authorization code for tokens (RFC 6749 §4.1.3)."""
    request = build_code_exchange(
        token_endpoint=token_endpoint,
        client=client,
        code=code,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
        resource=resource,
    )
    response = _post(http, request)
    return parse_token_response(response, now=now, secrets=_secrets(request, client))


def refresh(
    http: httpx.Client,
    *,
    token_endpoint: str,
    client: ClientRegistration,
    refresh_token: str,
    resource: str,
    scope: str | None = None,
    now: datetime,
) -> Tokens:
    """Refresh (RFC 6749 §6); a response without a refresh token keeps ours."""
    request = build_refresh(
        token_endpoint=token_endpoint,
        client=client,
        refresh_token=refresh_token,
        resource=resource,
        scope=scope,
    )
    response = _post(http, request)
    return parse_token_response(
        response,
        now=now,
        refresh_token=refresh_token,
        scope=scope,
        secrets=_secrets(request, client),
    )


def revoke(
    http: httpx.Client,
    *,
    revocation_endpoint: str,
    client: ClientRegistration,
    token: str,
    token_type_hint: str | None = None,
) -> None:
    """Revoke ``token`` (RFC 7009 §2.1).

    §2.2: 200 means revoked, or the token was already invalid. §2.2.1: 503
    asks the client to retry later.
    """
    request = build_revocation(
        revocation_endpoint=revocation_endpoint,
        client=client,
        token=token,
        token_type_hint=token_type_hint,
    )
    response = _post(http, request)
    if response.is_success:
        return
    _raise_error(response, secrets=_secrets(request, client))


# Failures that may pass: worth a retry later.
_TRANSIENT = (
    httpx.TimeoutException,
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def _post(http: httpx.Client, request: TokenRequest) -> httpx.Response:
    try:
        return http.post(request.url, data=request.data, headers=request.headers)
    except httpx.HTTPError as exc:
        # A guarded client's errors carry a sentence meant for people.
        detail = getattr(exc, "message", None) or "no response"
        if isinstance(exc, _TRANSIENT):
            raise TransientTokenError(
                f"The authorization server could not be reached: {detail}"
            ) from exc
        # Refused by policy (a blocked address, plain http) or a broken
        # request: retrying cannot help.
        raise TokenError(f"The token request was not sent: {detail}") from exc


def _secrets(request: TokenRequest, client: ClientRegistration) -> tuple[str, ...]:
    sent = [
        request.data.get(name)
        for name in ("code", "code_verifier", "refresh_token", "token")
    ]
    return tuple(value for value in [*sent, client.client_secret] if value)


# -- parse (pure) -----------------------------------------------------------


def parse_token_response(
    response: httpx.Response,
    *,
    now: datetime,
    refresh_token: str | None = None,
    scope: str | None = None,
    secrets: Iterable[str] = (),
) -> Tokens:
    """Read a token response (RFC 6749 §5.1) or raise its error (§5.2).

    ``refresh_token`` and ``scope`` are the values to keep when the response
    omits them (a refresh that does not rotate; §5.1 "scope ... if identical
    to the scope requested").
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    secrets = tuple(secrets)
    if not response.is_success:
        _raise_error(response, secrets=secrets)
    document = _json_object(response)
    if document is None:
        raise TokenError("The authorization server's token response was not JSON.")
    access_token = document.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        if document.get("error"):
            # Some servers report errors with a 200 status.
            _raise_error(response, secrets=secrets)
        raise TokenError("The authorization server's response has no access token.")
    token_type = document.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(
            "The authorization server issued a token type this app cannot use.",
            error="unsupported_token_type",
        )
    new_refresh_token = document.get("refresh_token")
    if not isinstance(new_refresh_token, str) or not new_refresh_token:
        new_refresh_token = refresh_token
    granted_scope = document.get("scope")
    if not isinstance(granted_scope, str) or not granted_scope.strip():
        granted_scope = scope
    return Tokens(
        access_token=access_token,
        token_type="Bearer",
        expires_at=_expires_at(document.get("expires_in"), now),
        refresh_token=new_refresh_token,
        scope=granted_scope,
    )


def _expires_at(expires_in: Any, now: datetime) -> datetime | None:
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int | float):
        return None
    return now + timedelta(seconds=max(0, int(expires_in)))


def _raise_error(response: httpx.Response, *, secrets: tuple[str, ...]) -> NoReturn:
    status = response.status_code
    document = _json_object(response) or {}
    error = document.get("error")
    error = error if isinstance(error, str) and error else None
    description = document.get("error_description")
    description = _scrub(description, secrets) if isinstance(description, str) else None
    if status == 429 or status >= 500:
        raise TransientTokenError(
            f"The authorization server is temporarily unavailable (HTTP {status}).",
            error=error,
            description=description,
        )
    if error in REAUTHORIZE_ERRORS:
        raise InvalidGrant(error=error, description=description)
    if status == 401 and error is None:
        # RFC 6749 §5.2: a 401 from the token endpoint is invalid_client, even
        # when the body does not say so.
        raise InvalidGrant(error="invalid_client", description=description)
    raise TokenError(
        f"The authorization server refused the request (HTTP {status}).",
        error=error,
        description=description,
    )


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None

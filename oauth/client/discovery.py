"""Discover an MCP server's authorization server (RFC 9728, RFC 8414, OIDC).

The chain is: challenge → protected resource metadata (RFC 9728) →
authorization server metadata (RFC 8414 §3, OpenID Connect Discovery 1.0 §4).
Each hop depends on the one before, but the candidate URLs within a hop do
not, so they are fetched concurrently and the result is chosen by the MCP
priority order. A cold start therefore costs one round trip per hop, however
many candidates a server makes the client try.

Validation (MCP authorization, 2026-07-28):

- RFC 9728 §3.3: the metadata ``resource`` must match the server URL (same
  origin, path prefix); it is kept verbatim, because authorization servers
  and the conformance suite compare it as a string.
- RFC 9728 §2: at least one ``authorization_servers`` entry; entries are
  tried in order and the first one that validates wins (RFC 9728 §7.6).
- RFC 8414 §3.3: the metadata ``issuer`` must equal the issuer used to build
  the URL, character for character, else that document is not used.
- MCP: ``code_challenge_methods_supported`` must list S256; every endpoint
  must be https (http only for a loopback issuer, when allowed).

A candidate that is missing (any non-2xx, no response, not JSON) means "try
the next"; so does a document that fails validation. When nothing is usable,
the first validation failure in priority order is raised (it says the most),
else a DiscoveryError naming the URLs tried. Query strings never appear in
messages: they may carry credentials.

Must not import Django.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from .challenge import BearerChallenge
from .errors import (
    DiscoveryError,
    IssuerMismatch,
    PkceUnsupported,
    ResourceMismatch,
)
from .urls import (
    authorization_server_metadata_urls,
    check_endpoint,
    check_fetch_url,
    protected_resource_metadata_urls,
    redact,
    resource_allowed,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ProtectedResourceMetadata:
    """RFC 9728 §2 metadata. ``resource`` is exactly the string received."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None = None
    url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AuthorizationServerMetadata:
    """RFC 8414 §2 metadata, already validated for MCP use."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    scopes_supported: tuple[str, ...] | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    authorization_response_iss_parameter_supported: bool = False
    client_id_metadata_document_supported: bool = False
    url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Discovery:
    protected_resource: ProtectedResourceMetadata
    authorization_server: AuthorizationServerMetadata

    @property
    def resource(self) -> str:
        """The RFC 8707 ``resource`` value: the metadata's own string."""
        return self.protected_resource.resource

    @property
    def issuer(self) -> str:
        return self.authorization_server.issuer


# -- parse (pure) -----------------------------------------------------------


def parse_protected_resource_metadata(
    document: Mapping[str, Any], *, server_url: str, url: str = ""
) -> ProtectedResourceMetadata:
    """Validate an RFC 9728 document fetched for ``server_url``."""
    resource = document.get("resource")
    if not isinstance(resource, str) or not resource:
        raise DiscoveryError(
            "The server's protected resource metadata does not name its resource."
        )
    if not resource_allowed(server_url, resource):
        raise ResourceMismatch(
            f"The server's OAuth metadata is for {redact(resource)}, not for "
            f"{redact(server_url)}, so it cannot be trusted."
        )
    servers = document.get("authorization_servers")
    servers = _strings(servers) if isinstance(servers, list) else ()
    if not servers:
        raise DiscoveryError(
            "The server's protected resource metadata names no authorization server."
        )
    return ProtectedResourceMetadata(
        resource=resource,
        authorization_servers=servers,
        scopes_supported=_optional_strings(document.get("scopes_supported")),
        url=url,
        raw=dict(document),
    )


def parse_authorization_server_metadata(
    document: Mapping[str, Any],
    *,
    issuer: str,
    allow_http_loopback: bool = False,
    url: str = "",
) -> AuthorizationServerMetadata:
    """Validate RFC 8414 (or OIDC) metadata fetched for ``issuer``."""
    # RFC 8414 §3.3 first: a document for another issuer says nothing
    # trustworthy about the rest.
    if document.get("issuer") != issuer:
        raise IssuerMismatch(expected=issuer, actual=document.get("issuer"))
    endpoint = partial(
        _endpoint, document, issuer=issuer, allow_http_loopback=allow_http_loopback
    )
    authorization_endpoint = endpoint("authorization_endpoint", required=True)
    token_endpoint = endpoint("token_endpoint", required=True)
    registration_endpoint = endpoint("registration_endpoint")
    revocation_endpoint = endpoint("revocation_endpoint")
    methods = _optional_strings(document.get("code_challenge_methods_supported"))
    if not methods or "S256" not in methods:
        raise PkceUnsupported()
    response_types = _optional_strings(document.get("response_types_supported"))
    if response_types is not None and "code" not in response_types:
        raise DiscoveryError(
            "The authorization server does not support the authorization code flow.",
            error="unsupported_response_type",
        )
    return AuthorizationServerMetadata(
        issuer=issuer,
        authorization_endpoint=authorization_endpoint,
        token_endpoint=token_endpoint,
        registration_endpoint=registration_endpoint,
        revocation_endpoint=revocation_endpoint,
        scopes_supported=_optional_strings(document.get("scopes_supported")),
        code_challenge_methods_supported=methods,
        token_endpoint_auth_methods_supported=_optional_strings(
            document.get("token_endpoint_auth_methods_supported")
        ),
        authorization_response_iss_parameter_supported=(
            document.get("authorization_response_iss_parameter_supported") is True
        ),
        client_id_metadata_document_supported=(
            document.get("client_id_metadata_document_supported") is True
        ),
        url=url,
        raw=dict(document),
    )


def _endpoint(
    document: Mapping[str, Any],
    name: str,
    *,
    issuer: str,
    allow_http_loopback: bool,
    required: bool = False,
) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    what = name.replace("_", " ")
    if value is None:
        raise DiscoveryError(f"The authorization server metadata has no {what}.")
    return check_endpoint(
        value, what=what, issuer=issuer, allow_http_loopback=allow_http_loopback
    )


def _strings(values: list[Any]) -> tuple[str, ...]:
    return tuple(value for value in values if isinstance(value, str) and value)


def _optional_strings(values: Any) -> tuple[str, ...] | None:
    return _strings(values) if isinstance(values, list) else None


# -- send -------------------------------------------------------------------


def fetch_protected_resource_metadata(
    http: httpx.Client,
    server_url: str,
    *,
    resource_metadata: str | None = None,
    allow_http_loopback: bool = False,
    executor: Executor | None = None,
) -> ProtectedResourceMetadata:
    """Fetch and validate the protected resource metadata of ``server_url``.

    With a ``resource_metadata`` URL from the challenge only that URL is
    requested; otherwise the path-inserted and root URLs are requested
    together and the path-inserted one wins when it validates.
    """
    check_fetch_url(
        server_url, what="MCP server URL", allow_http_loopback=allow_http_loopback
    )
    if resource_metadata:
        check_fetch_url(
            resource_metadata,
            what="protected resource metadata URL",
            allow_http_loopback=allow_http_loopback,
        )
    candidates = [
        _Candidate(
            url,
            partial(parse_protected_resource_metadata, server_url=server_url, url=url),
        )
        for url in protected_resource_metadata_urls(server_url, resource_metadata)
    ]
    return _first_valid(
        http,
        candidates,
        executor=executor,
        not_found="This server does not publish OAuth protected resource metadata.",
    )


def fetch_authorization_server_metadata(
    http: httpx.Client,
    authorization_servers: Sequence[str],
    *,
    allow_http_loopback: bool = False,
    executor: Executor | None = None,
) -> AuthorizationServerMetadata:
    """Fetch metadata for the first listed authorization server that works.

    Every candidate URL of every server is requested at once; the winner is
    the first valid document by (server order, candidate order).
    """
    if isinstance(authorization_servers, str):
        authorization_servers = [authorization_servers]
    candidates: list[_Candidate[AuthorizationServerMetadata]] = []
    for issuer in authorization_servers:
        try:
            _check_issuer(issuer, allow_http_loopback=allow_http_loopback)
        except DiscoveryError as exc:
            candidates.append(_Candidate(issuer, _refuse, refusal=exc))
            continue
        for url in authorization_server_metadata_urls(issuer):
            parse = partial(
                parse_authorization_server_metadata,
                issuer=issuer,
                allow_http_loopback=allow_http_loopback,
                url=url,
            )
            candidates.append(_Candidate(url, parse))
    return _first_valid(
        http,
        candidates,
        executor=executor,
        not_found="No usable authorization server metadata was found.",
    )


def _check_issuer(issuer: str, *, allow_http_loopback: bool) -> None:
    check_fetch_url(
        issuer, what="authorization server", allow_http_loopback=allow_http_loopback
    )
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        # RFC 8414 §2: an issuer has no query or fragment component.
        raise DiscoveryError(
            f"The authorization server identifier {redact(issuer)} is not valid."
        )


def discover(
    http: httpx.Client,
    server_url: str,
    *,
    challenge: BearerChallenge | None = None,
    allow_http_loopback: bool = False,
    executor: Executor | None = None,
) -> Discovery:
    """Find and validate the authorization server for MCP ``server_url``.

    ``challenge`` is the Bearer challenge of the server's 401/403, if any.
    ``executor`` runs concurrent candidate requests; by default each hop
    uses a short-lived thread pool and returns as soon as the winner is
    known, leaving lower-priority requests to finish in the background.
    """
    protected_resource = fetch_protected_resource_metadata(
        http,
        server_url,
        resource_metadata=challenge.resource_metadata if challenge else None,
        allow_http_loopback=allow_http_loopback,
        executor=executor,
    )
    authorization_server = fetch_authorization_server_metadata(
        http,
        protected_resource.authorization_servers,
        allow_http_loopback=allow_http_loopback,
        executor=executor,
    )
    return Discovery(protected_resource, authorization_server)


# -- concurrency ------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate(Generic[T]):
    """A URL to fetch and how to validate it; ``refusal`` skips the fetch."""

    url: str
    parse: Callable[[Mapping[str, Any]], T]
    refusal: DiscoveryError | None = None


def _refuse(document: Mapping[str, Any]) -> Any:
    raise AssertionError("a refused candidate is never fetched")


_Fetched = tuple[Mapping[str, Any] | None, str]


def _first_valid(
    http: httpx.Client,
    candidates: Sequence[_Candidate[T]],
    *,
    executor: Executor | None,
    not_found: str,
) -> T:
    """Fetch all candidates at once; return the first valid by position."""
    attempts: list[str] = []
    refusal: DiscoveryError | None = None
    fetched = [candidate for candidate in candidates if candidate.refusal is None]
    own_executor = None
    if executor is None and len(fetched) > 1:
        own_executor = executor = ThreadPoolExecutor(
            max_workers=len(fetched), thread_name_prefix="oauth-discovery"
        )
    futures: dict[int, Future[_Fetched]] = {}
    try:
        for index, candidate in enumerate(candidates):
            if candidate.refusal is not None:
                continue
            if executor is None:
                futures[index] = Future()
                futures[index].set_result(_get_json(http, candidate.url))
            else:
                futures[index] = executor.submit(_get_json, http, candidate.url)
        for index, candidate in enumerate(candidates):
            if candidate.refusal is not None:
                attempts.append(f"{redact(candidate.url)} (refused)")
                refusal = refusal or candidate.refusal
                continue
            document, outcome = futures[index].result()
            if document is None:
                attempts.append(f"{redact(candidate.url)} ({outcome})")
                continue
            try:
                return candidate.parse(document)
            except DiscoveryError as exc:
                attempts.append(
                    f"{redact(candidate.url)} (rejected: {type(exc).__name__})"
                )
                refusal = refusal or exc
    finally:
        # Lower-priority requests still in flight are not waited for; they
        # are not cancelled either, so every candidate is requested exactly
        # once whatever the timing.
        if own_executor is not None:
            own_executor.shutdown(wait=False)
    if refusal is not None:
        refusal.attempts = tuple(attempts)
        raise refusal
    tried = "; ".join(attempts) or "nothing"
    raise DiscoveryError(f"{not_found} Tried: {tried}.", attempts=tuple(attempts))


def _no_response(exc: httpx.HTTPError) -> str:
    """Words for a failed request. A guarded client's errors carry their own
    sentence (``message``); plain httpx errors get a short phrase."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message.rstrip(".")
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    return "no response"


def _get_json(http: httpx.Client, url: str) -> tuple[Mapping[str, Any] | None, str]:
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        return None, _no_response(exc)
    if not response.is_success:
        return None, f"HTTP {response.status_code}"
    try:
        document = response.json()
    except ValueError:
        return None, "not JSON"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    return document, "ok"

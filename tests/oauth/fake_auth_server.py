"""A small OAuth world for ``oauth.client`` tests, as an httpx.MockTransport.

``FakeAuthServer`` plays an MCP server's protected resource metadata
(RFC 9728) and one or more ``FakeAuthorizationServer``s: metadata at any of
the RFC 8414 / OIDC locations, ``/authorize`` (auto-approving, like the
conformance mock), ``/register``, ``/token`` (code and refresh, optional
rotation that rejects reuse) and ``/revoke``. Every request is recorded with
start and end times, so tests can assert which URLs were requested and which
waited for which.

Plain test code: no Django, no network.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx

Route = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorded:
    method: str
    url: str
    headers: httpx.Headers
    body: bytes
    started: float
    ended: float = 0.0

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ClientRecord:
    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _json(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class FakeAuthorizationServer:
    """One authorization server, configurable per test.

    ``metadata_at`` names where its metadata is served: ``"oauth"`` (RFC 8414,
    path-inserted for a path issuer), ``"openid"`` (OIDC, path-inserted or at
    the root) and ``"openid-appended"`` (OIDC Discovery 1.0, path issuers).
    ``metadata_overrides`` replaces fields; ``omit`` removes them.
    """

    def __init__(
        self,
        issuer: str = "https://auth.example.com",
        *,
        metadata_at: Iterable[str] = ("oauth",),
        iss_supported: bool = True,
        cimd_supported: bool = False,
        registration: bool = True,
        revocation: bool = True,
        scopes_supported: list[str] | None = None,
        token_endpoint_auth_methods_supported: list[str] | None = None,
        metadata_overrides: dict[str, Any] | None = None,
        omit: Iterable[str] = (),
        rotate_refresh_tokens: bool = False,
        issue_refresh_tokens: bool = True,
        expires_in: int | None = 3600,
        registered_auth_method: str | None = None,
        iss_in_response: str | None | bool = True,
    ) -> None:
        self.issuer = issuer
        self.base = issuer.rstrip("/")
        self.metadata_at = tuple(metadata_at)
        self.iss_supported = iss_supported
        self.cimd_supported = cimd_supported
        self.registration = registration
        self.revocation = revocation
        self.scopes_supported = scopes_supported
        self.token_endpoint_auth_methods_supported = (
            token_endpoint_auth_methods_supported
            if token_endpoint_auth_methods_supported is not None
            else ["client_secret_basic", "client_secret_post", "none"]
        )
        self.metadata_overrides = metadata_overrides or {}
        self.omit = set(omit)
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.issue_refresh_tokens = issue_refresh_tokens
        self.expires_in = expires_in
        # Overrides the method /register answers with (RFC 7591 §3.2.1).
        self.registered_auth_method = registered_auth_method
        # True: the right issuer; None/False: omitted; a string: that string.
        self.iss_in_response = iss_in_response
        self.registration_error: tuple[int, dict[str, Any]] | None = None

        self.clients: dict[str, ClientRecord] = {}
        self.codes: dict[str, dict[str, str | None]] = {}
        self.refresh_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.revoked: list[str] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    # -- configuration helpers --------------------------------------------

    @property
    def authorization_endpoint(self) -> str:
        return self.base + "/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.base + "/token"

    @property
    def registration_endpoint(self) -> str:
        return self.base + "/register"

    @property
    def revocation_endpoint(self) -> str:
        return self.base + "/revoke"

    def metadata(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": (
                self.token_endpoint_auth_methods_supported
            ),
            "authorization_response_iss_parameter_supported": self.iss_supported,
        }
        if self.registration:
            document["registration_endpoint"] = self.registration_endpoint
        if self.revocation:
            document["revocation_endpoint"] = self.revocation_endpoint
        if self.cimd_supported:
            document["client_id_metadata_document_supported"] = True
        if self.scopes_supported is not None:
            document["scopes_supported"] = self.scopes_supported
        document.update(self.metadata_overrides)
        for name in self.omit:
            document.pop(name, None)
        return document

    def metadata_url(self, location: str) -> str:
        parts = urlsplit(self.issuer)
        origin = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.rstrip("/")
        return {
            "oauth": f"{origin}/.well-known/oauth-authorization-server{path}",
            "openid": f"{origin}/.well-known/openid-configuration{path}",
            "openid-appended": f"{origin}{path}/.well-known/openid-configuration",
        }[location]

    def metadata_urls(self) -> list[str]:
        return [self.metadata_url(location) for location in self.metadata_at]

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "none",
    ) -> ClientRecord:
        record = ClientRecord(client_id, client_secret, token_endpoint_auth_method)
        self.clients[client_id] = record
        return record

    def issue_code(
        self, *, code_challenge: str | None = None, scope: str | None = None
    ) -> str:
        code = f"code-{self._next()}"
        self.codes[code] = {"code_challenge": code_challenge, "scope": scope}
        return code

    def issue_refresh_token(self) -> str:
        token = f"rt-{self._next()}"
        self.refresh_tokens.add(token)
        return token

    def _next(self) -> int:
        with self._lock:
            return next(self._counter)

    # -- request handling -------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response | None:
        url = str(request.url.copy_with(query=None))
        if request.method == "GET" and str(request.url) in self.metadata_urls():
            return _json(200, self.metadata())
        if url == self.authorization_endpoint and request.method == "GET":
            return self._authorize(request)
        if url == self.token_endpoint and request.method == "POST":
            return self._token(request)
        if (
            self.registration
            and url == self.registration_endpoint
            and request.method == "POST"
        ):
            return self._register(request)
        if self.revocation and url == self.revocation_endpoint:
            return self._revoke(request)
        return None

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        code = self.issue_code(
            code_challenge=params.get("code_challenge"), scope=params.get("scope")
        )
        reply = {"code": code}
        if "state" in params:
            reply["state"] = params["state"]
        if self.iss_in_response is True:
            reply["iss"] = self.issuer
        elif isinstance(self.iss_in_response, str):
            reply["iss"] = self.iss_in_response
        location = f"{params['redirect_uri']}?{urlencode(reply)}"
        return httpx.Response(302, headers={"Location": location})

    def _register(self, request: httpx.Request) -> httpx.Response:
        if self.registration_error is not None:
            status, body = self.registration_error
            return _json(status, body)
        body = json.loads(request.content)
        method = self.registered_auth_method or body.get(
            "token_endpoint_auth_method", "client_secret_basic"
        )
        number = self._next()
        client_id = f"client-{number}"
        secret = None if method == "none" else f"secret-{number}"
        self.add_client(client_id, secret, method)
        reply = {**body, "client_id": client_id, "token_endpoint_auth_method": method}
        if secret:
            reply["client_secret"] = secret
        return _json(201, reply)

    def _authenticate(
        self, request: httpx.Request, form: dict[str, str]
    ) -> ClientRecord | None:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client = self.clients.get(unquote_plus(raw_id))
            if (
                client
                and client.token_endpoint_auth_method == "client_secret_basic"
                and client.client_secret == unquote_plus(raw_secret)
            ):
                return client
            return None
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            return None
        if client.token_endpoint_auth_method == "client_secret_post":
            if form.get("client_secret") == client.client_secret:
                return client
            return None
        if client.token_endpoint_auth_method == "none" and "client_secret" not in form:
            return client
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if self._authenticate(request, form) is None:
            return _json(401, {"error": "invalid_client"})
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)
            if issued is None:
                return _json(400, {"error": "invalid_grant"})
            challenge = issued["code_challenge"]
            if challenge and _s256(form.get("code_verifier", "")) != challenge:
                return _json(
                    400,
                    {"error": "invalid_grant", "error_description": "PKCE failed"},
                )
            refresh_token = (
                self.issue_refresh_token() if self.issue_refresh_tokens else None
            )
            return self._tokens(refresh_token, issued["scope"])
        if grant_type == "refresh_token":
            presented = form.get("refresh_token", "")
            if presented not in self.refresh_tokens:
                return _json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "refresh token unknown or reused",
                    },
                )
            refresh_token = None
            if self.rotate_refresh_tokens:
                self.refresh_tokens.discard(presented)
                refresh_token = self.issue_refresh_token()
            return self._tokens(refresh_token, form.get("scope"))
        return _json(400, {"error": "unsupported_grant_type"})

    def _tokens(self, refresh_token: str | None, scope: str | None) -> httpx.Response:
        access_token = f"at-{self._next()}"
        self.access_tokens.add(access_token)
        body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if refresh_token:
            body["refresh_token"] = refresh_token
        if scope:
            body["scope"] = scope
        return _json(200, body, **{"Cache-Control": "no-store"})

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if self._authenticate(request, form) is None:
            return _json(401, {"error": "invalid_client"})
        token = form.get("token", "")
        self.revoked.append(token)
        self.refresh_tokens.discard(token)
        self.access_tokens.discard(token)
        return httpx.Response(200)


@dataclass
class FakeAuthServer:
    """An MCP server's metadata plus its authorization servers.

    ``prm_at`` is ``"path"`` (RFC 9728 path-inserted), ``"root"``,
    ``"custom"`` (only at ``custom_prm_url``, the kind a challenge names) or
    None. ``routes`` maps ``(method, url)`` to a response or a callable and
    wins over everything else. ``delay`` is slept in every request.
    """

    server_url: str = "https://mcp.example.com/mcp"
    prm_at: str | None = "path"
    custom_prm_url: str = "https://mcp.example.com/custom/metadata/location.json"
    resource: str | None = None
    scopes_supported: list[str] | None = None
    authorization_servers: list[FakeAuthorizationServer] = field(
        default_factory=lambda: [FakeAuthorizationServer()]
    )
    listed_authorization_servers: list[str] | None = None
    prm_overrides: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def authorization_server(self) -> FakeAuthorizationServer:
        return self.authorization_servers[0]

    @property
    def prm_url(self) -> str | None:
        parts = urlsplit(self.server_url)
        root = f"{_origin(self.server_url)}/.well-known/oauth-protected-resource"
        path = parts.path.rstrip("/")
        query = f"?{parts.query}" if parts.query else ""
        return {
            "path": root + path + query,
            "root": root,
            "custom": self.custom_prm_url,
            None: None,
        }[self.prm_at]

    def prm_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "resource": self.resource if self.resource is not None else self.server_url,
            "authorization_servers": (
                self.listed_authorization_servers
                if self.listed_authorization_servers is not None
                else [server.issuer for server in self.authorization_servers]
            ),
        }
        if self.scopes_supported is not None:
            document["scopes_supported"] = self.scopes_supported
        document.update(self.prm_overrides)
        return document

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self), **kwargs)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        record = Recorded(
            method=request.method,
            url=str(request.url),
            headers=request.headers,
            body=request.read(),
            started=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self._route(request)
        finally:
            record.ended = time.monotonic()

    def _route(self, request: httpx.Request) -> httpx.Response:
        route = self.routes.get((request.method, str(request.url)))
        if route is not None:
            return route if isinstance(route, httpx.Response) else route(request)
        if request.method == "GET" and str(request.url) == self.prm_url:
            return _json(200, self.prm_document())
        for server in self.authorization_servers:
            response = server.handle(request)
            if response is not None:
                return response
        return _json(404, {"error": "not_found"})

    # -- assertions helpers -----------------------------------------------

    def requested(self, method: str | None = None) -> list[str]:
        """URLs requested, in the order the requests started."""
        with self._lock:
            records = sorted(self.requests, key=lambda record: record.started)
        return [r.url for r in records if method is None or r.method == method]

    def requests_to(self, url: str) -> list[Recorded]:
        with self._lock:
            return [record for record in self.requests if record.url == url]


def max_overlap(records: Iterable[Recorded]) -> int:
    """The largest number of the ``records`` in flight at the same moment."""
    events = []
    for record in records:
        events.append((record.started, 1))
        events.append((record.ended, -1))
    # At equal times an end sorts before a start: touching is not overlapping.
    events.sort(key=lambda event: (event[0], event[1]))
    current = peak = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def sequential_depth(records: Iterable[Recorded]) -> int:
    """The longest chain of requests where each started after the last ended.

    This is the number of round trips the caller waited for in sequence.
    """
    ordered = sorted(records, key=lambda record: record.started)
    depth: dict[int, int] = {}
    for index, record in enumerate(ordered):
        depth[index] = 1 + max(
            (
                depth[earlier]
                for earlier in range(index)
                if ordered[earlier].ended <= record.started
            ),
            default=0,
        )
    return max(depth.values(), default=0)

"""Sanity tests of the OAuth test peers themselves (real processes, plain httpx).

httpx plays both the OAuth client and the browser, following redirects by
hand; nothing listens on the redirect URI, its query is read off ``Location``.

What oidc-provider 9.13.3 needs, as found here:

* Refresh tokens: its stock ``issueRefreshToken`` wants the client's
  ``grant_types`` to include ``refresh_token`` AND ``offline_access`` among the
  granted scopes, and it silently drops ``offline_access`` from the request
  when a ``prompt`` parameter is present without ``consent`` (or the client
  lacks the refresh_token grant type); with no ``prompt`` at all the scope is
  kept. ``provider.mjs`` relaxes this by default (the grant type alone is
  enough, as MCP clients seldom ask for ``offline_access``);
  ``require_offline_access=True`` restores the stock policy.
* DCR: ``token_endpoint_auth_method`` ``client_secret_basic`` (its default)
  returns a ``client_secret`` (``client_secret_expires_at: 0``); ``none`` gives
  a public client. ``application_type: web`` accepts ``http://127.0.0.1``
  redirect URIs for the code flow.
* Rotation: a refresh answers a new refresh token and consumes the old one;
  reusing the old one is ``invalid_grant`` AND revokes the whole grant, so the
  rotated token dies too. Revoking a refresh token also revokes its grant,
  and so does replaying an authorization code (its refresh token dies).
* The token response's ``scope`` (and the refresh token's introspection) lists
  only the resource's scopes (``mcp:tools``), never ``offline_access``. JWT
  access tokens cannot be introspected (``unsupported_token_type``); refresh
  tokens can.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import jwt
import pytest

from tests.peers.oauth_peers import (
    start_authorization_server,
    start_protected_mcp_server,
)
from tests.prerequisites import require_node_peers

pytestmark = pytest.mark.slow

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"  # nobody listens there
PROTOCOL_VERSION = "2025-11-25"
MCP_ACCEPT = "application/json, text/event-stream"


@pytest.fixture(scope="module", autouse=True)
def _require_node():
    require_node_peers()


@pytest.fixture(scope="module")
def auth_server(_require_node):
    with start_authorization_server() as server:
        yield server


@pytest.fixture(scope="module")
def mcp_url(auth_server):
    with start_protected_mcp_server(auth_server.issuer) as url:
        yield url


@pytest.fixture(scope="module")
def metadata(auth_server):
    response = httpx.get(auth_server.url("/.well-known/oauth-authorization-server"))
    assert response.status_code == 200
    return response.json()


# --- helpers -----------------------------------------------------------------


def register(metadata, *, auth_method="client_secret_basic", **extra):
    body = {
        "application_type": "web",
        "client_name": "Peer sanity test",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method,
        **extra,
    }
    response = httpx.post(metadata["registration_endpoint"], json=body)
    assert response.status_code == 201, response.text
    return response.json()


def client_auth(client) -> dict:
    """httpx kwargs authenticating ``client`` at the token/revocation endpoints."""
    if client["token_endpoint_auth_method"] == "client_secret_basic":
        return {"auth": (client["client_id"], client["client_secret"])}
    return {}


def client_form(client) -> dict:
    if client["token_endpoint_auth_method"] == "none":
        return {"client_id": client["client_id"]}
    return {}


def authorization_url(metadata, client, resource, *, scope="mcp:tools", **extra):
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
        **extra,
    }
    url = f"{metadata['authorization_endpoint']}?{urlencode(query)}"
    return url, state, verifier


def follow(browser: httpx.Client, url: str, *, method="GET", data=None):
    """Follow redirects by hand; stop at the redirect URI or at a page (200).

    Returns ``("callback", params)`` or ``("page", response)``.
    """
    for _ in range(15):
        response = browser.request(method, url, data=data)
        method, data = "GET", None
        if response.status_code in (302, 303):
            url = urljoin(str(response.url), response.headers["location"])
            if url.startswith(REDIRECT_URI):
                return "callback", {
                    k: v[0] for k, v in parse_qs(urlsplit(url).query).items()
                }
            continue
        assert response.status_code == 200, (response.status_code, response.text)
        return "page", response
    raise AssertionError("too many redirects")


def authorize(metadata, client, resource, **extra):
    """Authorize (auto-approving AS); return (callback params, state, verifier)."""
    url, state, verifier = authorization_url(metadata, client, resource, **extra)
    with httpx.Client() as browser:
        kind, params = follow(browser, url)
    assert kind == "callback", params
    return params, state, verifier


def exchange(metadata, client, code, verifier):
    return httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            **client_form(client),
        },
        **client_auth(client),
    )


def refresh(metadata, client, refresh_token):
    return httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            **client_form(client),
        },
        **client_auth(client),
    )


def tokens_for(metadata, client, resource, **extra):
    params, _, verifier = authorize(metadata, client, resource, **extra)
    response = exchange(metadata, client, params["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json()


def rpc_result(response: httpx.Response) -> dict:
    """The JSON-RPC message of a Streamable HTTP answer (JSON or SSE)."""
    assert response.status_code == 200, (response.status_code, response.text)
    if response.headers["content-type"].startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if "id" in message:
                    return message
        raise AssertionError(f"no JSON-RPC response in {response.text!r}")
    return response.json()


class McpSession:
    """A bare JSON-RPC client for Streamable HTTP (stateful handshake)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Accept": MCP_ACCEPT}
        self.next_id = 1

    def post(self, payload: dict) -> httpx.Response:
        return httpx.post(self.url, json=payload, headers=self.headers, timeout=10)

    def request(self, method: str, params: dict | None = None) -> dict:
        payload = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            payload["params"] = params
        self.next_id += 1
        message = rpc_result(self.post(payload))
        assert "error" not in message, message
        return message["result"]

    def initialize(self) -> dict:
        response = self.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "peer-sanity", "version": "0"},
                },
            }
        )
        result = rpc_result(response)["result"]
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        self.headers["MCP-Protocol-Version"] = result["protocolVersion"]
        notified = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert notified.status_code == 202
        return result


# --- the protected resource ---------------------------------------------------


def test_unauthenticated_mcp_request_gets_401_with_resource_metadata(
    mcp_url, auth_server
):
    response = httpx.post(
        mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Accept": MCP_ACCEPT},
    )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    prm_url = mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert f'resource_metadata="{prm_url}"' in challenge

    prm = httpx.get(prm_url)
    assert prm.status_code == 200
    assert prm.json() == {
        "resource": mcp_url,
        "authorization_servers": [auth_server.issuer],
        "scopes_supported": ["mcp:tools"],
        "bearer_methods_supported": ["header"],
    }


def test_authorization_server_metadata(auth_server, metadata):
    issuer = auth_server.issuer
    assert metadata["issuer"] == issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["registration_endpoint"] == f"{issuer}/reg"
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["revocation_endpoint"] == f"{issuer}/token/revocation"
    assert metadata["introspection_endpoint"] == f"{issuer}/token/introspection"
    assert metadata["jwks_uri"] == f"{issuer}/jwks"
    assert metadata["response_types_supported"] == ["code"]
    assert {"openid", "offline_access", "mcp:tools"} <= set(
        metadata["scopes_supported"]
    )
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    openid = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert openid["issuer"] == issuer


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "none"])
def test_dynamic_client_registration(metadata, auth_method):
    client = register(metadata, auth_method=auth_method)
    assert client["client_id"]
    assert client["token_endpoint_auth_method"] == auth_method
    assert client["application_type"] == "web"
    assert client["redirect_uris"] == [REDIRECT_URI]
    assert client["grant_types"] == ["authorization_code", "refresh_token"]
    if auth_method == "none":
        assert "client_secret" not in client
    else:
        assert client["client_secret"]
        assert client["client_secret_expires_at"] == 0


def test_pkce_is_required(metadata, mcp_url):
    client = register(metadata)
    url, state, _ = authorization_url(metadata, client, mcp_url)
    url = re.sub(r"&code_challenge(_method)?=[^&]*", "", url)
    with httpx.Client() as browser:
        kind, params = follow(browser, url)
    assert kind == "callback"
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["state"] == state


def test_unknown_resource_is_invalid_target(metadata):
    client = register(metadata)
    url, _, _ = authorization_url(metadata, client, "https://elsewhere.example/mcp")
    with httpx.Client() as browser:
        kind, params = follow(browser, url)
    assert kind == "callback"
    assert params["error"] == "invalid_target"


# --- the whole flow -----------------------------------------------------------


def test_code_flow_tokens_and_mcp_calls(auth_server, metadata, mcp_url):
    client = register(metadata)
    params, state, verifier = authorize(
        metadata, client, mcp_url, scope="mcp:tools offline_access"
    )
    assert params["state"] == state
    assert params["iss"] == metadata["issuer"]  # RFC 9207
    assert params["code"]

    response = exchange(metadata, client, params["code"], verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 120
    assert tokens["refresh_token"]
    # Only the resource's scopes are echoed, never offline_access.
    assert tokens["scope"] == "mcp:tools"

    access_token = tokens["access_token"]
    assert jwt.get_unverified_header(access_token)["typ"] == "at+jwt"
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token,
        key.key,
        algorithms=["RS256"],
        audience=mcp_url,
        issuer=auth_server.issuer,
    )
    assert claims["sub"] == "test-user"
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "mcp:tools"

    # The code is single use.
    again = exchange(metadata, client, params["code"], verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # ... and replaying it revoked the grant: the refresh token is dead. (The
    # JWT access token stays valid at the resource server until it expires.)
    dead = refresh(metadata, client, tokens["refresh_token"])
    assert dead.json()["error"] == "invalid_grant"

    session = McpSession(mcp_url, access_token)
    assert session.initialize()["serverInfo"]["name"] == "protected-mcp-test-peer"
    tools = session.request("tools/list")["tools"]
    assert {tool["name"] for tool in tools} == {"echo", "whoami"}
    echoed = session.request(
        "tools/call", {"name": "echo", "arguments": {"text": "hi"}}
    )
    assert echoed["content"][0]["text"] == "echo: hi"
    who = session.request("tools/call", {"name": "whoami", "arguments": {}})
    assert json.loads(who["content"][0]["text"]) == {
        "subject": "test-user",
        "client_id": client["client_id"],
        "scopes": ["mcp:tools"],
        "resource": mcp_url,
        "issuer": auth_server.issuer,
    }

    # A broken token is refused like a missing one.
    forged = httpx.post(
        mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {access_token}x", "Accept": MCP_ACCEPT},
    )
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]


def test_token_for_another_resource_is_refused(metadata, mcp_url):
    client = register(metadata)
    other = "http://127.0.0.1:9/mcp"
    tokens = tokens_for(metadata, client, other)
    response = httpx.post(
        mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": MCP_ACCEPT,
        },
    )
    assert response.status_code == 401


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "none"])
def test_refresh_rotates_and_reuse_fails(metadata, mcp_url, auth_method):
    client = register(metadata, auth_method=auth_method)
    first = tokens_for(metadata, client, mcp_url)  # no offline_access asked
    assert first["refresh_token"]

    response = refresh(metadata, client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = jwt.decode(second["access_token"], options={"verify_signature": False})
    assert claims["aud"] == mcp_url
    McpSession(mcp_url, second["access_token"]).initialize()

    reused = refresh(metadata, client, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse detection revoked the grant: the rotated token is dead too.
    after = refresh(metadata, client, second["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


def test_revocation(metadata, mcp_url):
    client = register(metadata)
    tokens = tokens_for(metadata, client, mcp_url)
    introspected = httpx.post(
        metadata["introspection_endpoint"],
        data={"token": tokens["refresh_token"]},
        **client_auth(client),
    ).json()
    assert introspected["active"] is True

    response = httpx.post(
        metadata["revocation_endpoint"],
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        **client_auth(client),
    )
    assert response.status_code == 200
    failed = refresh(metadata, client, tokens["refresh_token"])
    assert failed.status_code == 400
    assert failed.json()["error"] == "invalid_grant"


def test_revoke_all_hook(auth_server, metadata, mcp_url):
    client = register(metadata, auth_method="none")
    tokens = tokens_for(metadata, client, mcp_url)
    assert auth_server.revoke_all() >= 2  # at least the grant and the RT
    failed = refresh(metadata, client, tokens["refresh_token"])
    assert failed.status_code == 400
    assert failed.json()["error"] == "invalid_grant"
    # The client survives and can authorize again.
    assert tokens_for(metadata, client, mcp_url)["refresh_token"]


def test_stock_refresh_policy_needs_offline_access():
    with start_authorization_server(
        require_offline_access=True, access_token_ttl=30, rotate_refresh=False
    ) as server:
        metadata = httpx.get(
            server.url("/.well-known/oauth-authorization-server")
        ).json()
        client = register(metadata)
        resource = "http://127.0.0.1:9/mcp"

        plain = tokens_for(metadata, client, resource)
        assert plain["expires_in"] == 30
        assert "refresh_token" not in plain

        # prompt=login silently drops offline_access; prompt=consent keeps it.
        login = tokens_for(
            metadata, client, resource, scope="mcp:tools offline_access", prompt="login"
        )
        assert "refresh_token" not in login
        consent = tokens_for(
            metadata,
            client,
            resource,
            scope="mcp:tools offline_access",
            prompt="consent",
        )
        assert consent["refresh_token"]

        # rotate_refresh=False: the same refresh token keeps working.
        for _ in range(2):
            response = refresh(metadata, client, consent["refresh_token"])
            assert response.status_code == 200, response.text
            assert response.json()["refresh_token"] == consent["refresh_token"]


# --- the HTML interaction pages ------------------------------------------------


def form_action(page: httpx.Response, button_id: str) -> str:
    """The absolute action URL of the form holding the button ``button_id``."""
    for form in re.findall(r"<form\b.*?</form>", page.text, flags=re.S):
        if f'id="{button_id}"' in form:
            action = re.search(r'action="([^"]+)"', form).group(1)
            return urljoin(str(page.url), action)
    raise AssertionError(f"no form with #{button_id} in {page.text}")


def test_form_interaction_login_consent_deny_and_allow():
    with start_authorization_server(interactive="form") as server:
        metadata = httpx.get(
            server.url("/.well-known/oauth-authorization-server")
        ).json()
        client = register(metadata, client_name="Form Client")
        resource = "http://127.0.0.1:9/mcp"

        with httpx.Client() as browser:
            url, state, _ = authorization_url(metadata, client, resource)
            kind, login = follow(browser, url)
            assert kind == "page"
            assert urlsplit(str(login.url)).path.startswith("/interaction/")
            for element in ('id="username"', 'id="password"', 'id="login"'):
                assert element in login.text
            assert "Form Client" in login.text

            action = form_action(login, "login")
            kind, retry = follow(
                browser,
                action,
                method="POST",
                data={"username": "test-user", "password": "wrong"},
            )
            assert kind == "page"
            assert 'id="error"' in retry.text
            assert 'id="username"' in retry.text

            kind, consent = follow(
                browser,
                action,
                method="POST",
                data={"username": "test-user", "password": "test-password"},
            )
            assert kind == "page"
            assert 'id="allow"' in consent.text
            assert 'id="deny"' in consent.text
            assert "mcp:tools" in consent.text
            assert resource in consent.text

            kind, params = follow(browser, form_action(consent, "deny"), method="POST")
            assert kind == "callback"
            assert params["error"] == "access_denied"
            assert params["state"] == state
            assert params["iss"] == server.issuer

            # Same browser session: no login again, consent then Allow.
            url, state, verifier = authorization_url(metadata, client, resource)
            kind, consent = follow(browser, url)
            assert kind == "page"
            assert 'id="allow"' in consent.text
            assert 'id="username"' not in consent.text
            kind, params = follow(browser, form_action(consent, "allow"), method="POST")
        assert kind == "callback"
        assert params["state"] == state
        assert params["iss"] == server.issuer
        response = exchange(metadata, client, params["code"], verifier)
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"]

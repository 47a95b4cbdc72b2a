"""OAuth end to end: the app's real code and views against real peers.

The authorization server is oidc-provider (``tests/node/provider.mjs``) and
the MCP server is the official SDK protected by it
(``tests.peers.protected_mcp_server``), both real processes on 127.0.0.1.
httpx plays the user's browser and follows the authorization server's
redirects by hand until it is sent to our redirect URI
(``http://testserver/oauth/callback``, nobody listens there); that path and
query are then requested through Django's test client, signed in as the user.

What is checked directly at the authorization server uses the client the
app registered by DCR: introspection (which never consumes a refresh token)
and, to prove a token dead, presenting it at the token endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from mcpsettings import outbound
from oauth import refresh, services
from oauth.models import ClientRegistration, OAuthCredential, PendingAuthorization
from servers import services as server_services
from servers.mcp_client import AuthRequired, McpSession
from servers.models import AuditEvent, McpServer
from tests.peers.oauth_peers import (
    AuthServer,
    start_authorization_server,
    start_protected_mcp_server,
)
from tests.prerequisites import require_node_peers

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

DECLINED = "Authorization was declined. Authorize again to connect."


# --- peers (module scope: no database needed) ----------------------------------


@pytest.fixture(scope="module", autouse=True)
def _require_node():
    require_node_peers()


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    with start_authorization_server(interactive="auto") as server:
        yield server


@pytest.fixture(scope="module")
def mcp_url(auth_server) -> Iterator[str]:
    with start_protected_mcp_server(auth_server.issuer) as url:
        yield url


@pytest.fixture(scope="module")
def as_metadata(auth_server) -> dict:
    response = httpx.get(auth_server.url("/.well-known/oauth-authorization-server"))
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def prm(mcp_url) -> dict:
    """The protected resource metadata, fetched directly (RFC 9728)."""
    url = mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    response = httpx.get(url)
    assert response.status_code == 200
    return response.json()


# --- app settings and recording ------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback_peers(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "loopback"
    assert settings.OAUTH_REDIRECT_URI == "http://testserver/oauth/callback"
    assert not settings.OAUTH_CLIENT_METADATA_URL  # so DCR, not CIMD


@pytest.fixture
def registrations(monkeypatch) -> list[dict]:
    """Every DCR exchange the app's guarded clients make: request and answer."""
    seen: list[dict] = []
    original = outbound.make_client

    def keep(response: httpx.Response) -> None:
        if response.request.method == "POST" and response.url.path == "/reg":
            response.read()
            seen.append(
                {
                    "request": json.loads(response.request.content),
                    "status": response.status_code,
                    "response": response.json(),
                }
            )

    def make_client(*args, **kwargs):
        client = original(*args, **kwargs)
        client.event_hooks["response"].append(keep)
        return client

    monkeypatch.setattr(outbound, "make_client", make_client)
    return seen


# --- the browser -----------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """The user's browser at the AS: one cookie jar for the whole test."""
    with httpx.Client(timeout=10) as client:
        yield client


def follow(browser: httpx.Client, url: str, *, method="GET", data=None):
    """Follow redirects by hand until the AS sends the browser to our
    redirect URI (``("callback", url)``) or shows a page (``("page", r)``)."""
    for _ in range(15):
        response = browser.request(method, url, data=data)
        method, data = "GET", None
        if response.status_code in (302, 303):
            url = urljoin(str(response.url), response.headers["location"])
            if url.startswith(django_settings.OAUTH_REDIRECT_URI + "?"):
                return "callback", url
            assert url.startswith(str(response.url.copy_with(path="/", query=None))), (
                f"the AS redirected elsewhere: {url}"
            )
            continue
        assert response.status_code == 200, (response.status_code, response.text)
        return "page", response
    raise AssertionError("too many redirects")


def form_action(page: httpx.Response, button_id: str) -> str:
    """The absolute action URL of the form holding the button ``button_id``."""
    for form in re.findall(r"<form\b.*?</form>", page.text, flags=re.S):
        if f'id="{button_id}"' in form:
            action = re.search(r'action="([^"]+)"', form).group(1)
            return urljoin(str(page.url), action)
    raise AssertionError(f"no form with #{button_id} in {page.text}")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def start_in_app(client, server: McpServer, issuer: str) -> str:
    """POST the authorize view; return where it sends the browser."""
    response = client.post(reverse("oauth:authorize", args=[server.pk]))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{issuer}/auth?"), location
    return location


def authorize_in_app(client, browser, server: McpServer, issuer: str):
    """The whole flow through the views with an auto-approving AS; returns the
    callback's response and the callback URL the AS sent the browser to."""
    location = start_in_app(client, server, issuer)
    kind, callback_url = follow(browser, location)
    assert kind == "callback", callback_url
    response = client.get(path_of(callback_url))
    return response, callback_url


# --- talking to the peers directly -----------------------------------------------


def client_auth(registration: ClientRegistration) -> tuple[dict, dict]:
    """httpx kwargs and form fields authenticating the app's client."""
    method = registration.token_endpoint_auth_method
    if method == "client_secret_basic":
        return {"auth": (registration.client_id, registration.client_secret)}, {}
    if method == "client_secret_post":
        return {}, {
            "client_id": registration.client_id,
            "client_secret": registration.client_secret,
        }
    return {}, {"client_id": registration.client_id}


def introspect(metadata: dict, registration: ClientRegistration, token: str) -> dict:
    kwargs, form = client_auth(registration)
    response = httpx.post(
        metadata["introspection_endpoint"],
        data={"token": token, "token_type_hint": "refresh_token", **form},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response.json()


def present_refresh_token(
    metadata: dict, registration: ClientRegistration, token: str
) -> httpx.Response:
    kwargs, form = client_auth(registration)
    return httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": token, **form},
        **kwargs,
    )


def assert_dead(metadata, registration, refresh_token: str) -> None:
    assert introspect(metadata, registration, refresh_token)["active"] is False
    response = present_refresh_token(metadata, registration, refresh_token)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def echo(url: str, *, token: str | None = None, token_provider=None) -> dict:
    with (
        outbound.make_client() as http,
        McpSession(http, url, token=token, token_provider=token_provider) as session,
    ):
        return session.call_tool("echo", {"text": "hi"})


def echoed_text(result: dict) -> str:
    assert result.get("isError") is not True, result
    return result["content"][0]["text"]


# --- app fixtures ----------------------------------------------------------------


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def server(user, mcp_url) -> McpServer:
    return server_services.create_server(owner=user, url=mcp_url)


@pytest.fixture
def connected(signed_in, browser, server, auth_server) -> OAuthCredential:
    """A server authorized through the views; its credential."""
    response, _ = authorize_in_app(signed_in, browser, server, auth_server.issuer)
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.status == McpServer.Status.CONNECTED, server.status_message
    return OAuthCredential.objects.select_related("registration").get(server=server)


# --- 1. the whole flow -----------------------------------------------------------


def test_full_flow_through_the_views(
    signed_in,
    browser,
    server,
    user,
    auth_server,
    as_metadata,
    mcp_url,
    prm,
    registrations,
):
    location = start_in_app(signed_in, server, auth_server.issuer)
    request = query_of(location)
    assert request["redirect_uri"] == "http://testserver/oauth/callback"
    assert request["resource"] == prm["resource"]
    assert request["code_challenge_method"] == "S256"
    assert PendingAuthorization.objects.filter(server=server, user=user).count() == 1

    kind, callback_url = follow(browser, location)
    assert kind == "callback", callback_url
    params = query_of(callback_url)
    assert params["iss"] == auth_server.issuer
    assert params["state"] == request["state"]
    assert params["code"]

    response = signed_in.get(path_of(callback_url))
    assert response.status_code == 302
    assert response["Location"] == reverse("servers:list")
    assert not PendingAuthorization.objects.filter(server=server).exists()

    credential = OAuthCredential.objects.select_related("registration").get(
        server=server
    )
    assert credential.access_token
    assert credential.refresh_token
    assert credential.issuer == auth_server.issuer
    assert credential.resource == prm["resource"]
    assert credential.status == OAuthCredential.Status.ACTIVE
    assert credential.expires_at > timezone.now() + timedelta(seconds=60)
    claims = jwt.decode(credential.access_token, options={"verify_signature": False})
    assert claims["aud"] == prm["resource"]
    assert claims["iss"] == auth_server.issuer
    assert claims["client_id"] == credential.registration.client_id

    # check_server ran in the callback against the real server.
    server.refresh_from_db()
    assert server.status == McpServer.Status.CONNECTED, server.status_message
    assert server.auth_kind == McpServer.AuthKind.OAUTH
    assert "echo" in {tool["name"] for tool in server.tools}
    page = signed_in.get(reverse("servers:list")).content.decode()
    assert "is authorized and connected" in page

    # Registered by DCR as a web application, and the AS took it as such.
    registration = credential.registration
    assert registration.kind == ClientRegistration.Kind.DCR
    assert registration.issuer == auth_server.issuer
    assert registration.redirect_uri == "http://testserver/oauth/callback"
    assert len(registrations) == 1
    (dcr,) = registrations
    assert dcr["status"] == 201
    assert dcr["request"]["application_type"] == "web"
    assert dcr["response"]["application_type"] == "web"
    assert dcr["response"]["client_id"] == registration.client_id
    assert dcr["response"]["redirect_uris"] == ["http://testserver/oauth/callback"]
    assert (
        dcr["response"]["token_endpoint_auth_method"]
        == registration.token_endpoint_auth_method
    )
    assert introspect(as_metadata, registration, credential.refresh_token)["active"]

    # The stored token, as the app hands it out, works at the real server ...
    assert (
        echoed_text(
            echo(mcp_url, token_provider=lambda: refresh.access_token_for(server))
        )
        == "echo: hi"
    )
    # ... which does check tokens.
    with pytest.raises(AuthRequired):
        echo(mcp_url, token=credential.access_token + "x")


# --- 2. refresh with rotation ----------------------------------------------------


def test_refresh_rotates_against_the_real_as(connected, as_metadata, mcp_url):
    old = connected
    assert introspect(as_metadata, old.registration, old.refresh_token)["active"]
    OAuthCredential.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() + timedelta(seconds=5)
    )

    result = refresh.refresh_credential(credential_id=old.pk, force=True)

    assert result.outcome == "refreshed", result
    new = OAuthCredential.objects.get(pk=old.pk)
    assert new.access_token != old.access_token
    assert new.refresh_token and new.refresh_token != old.refresh_token
    assert new.expires_at > timezone.now() + timedelta(seconds=60)
    assert new.attempts == 0 and not new.last_error
    assert introspect(as_metadata, old.registration, new.refresh_token)["active"]
    assert echoed_text(echo(mcp_url, token=new.access_token)) == "echo: hi"
    # The rotated-out refresh token is dead at the AS.
    assert_dead(as_metadata, old.registration, old.refresh_token)


# --- 3. disconnect revokes ------------------------------------------------------


def test_disconnect_revokes_at_the_as(
    connected, server, user, as_metadata, django_capture_on_commit_callbacks
):
    credential = connected
    assert introspect(as_metadata, credential.registration, credential.refresh_token)[
        "active"
    ]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.disconnect(server=server, actor=user) is True

    assert len(callbacks) == 1  # the revocation, run after the commit
    assert not OAuthCredential.objects.filter(server=server).exists()
    server.refresh_from_db()
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert_dead(as_metadata, credential.registration, credential.refresh_token)


# --- 4. grant revoked at the AS -------------------------------------------------


def test_refresh_after_the_as_dropped_the_grant_needs_reauthorization(
    connected, server, auth_server
):
    assert auth_server.revoke_all() >= 1

    result = refresh.refresh_credential(credential_id=connected.pk, force=True)

    assert result.outcome == "needs_reauthorization", result
    assert result.error == "invalid_grant"
    credential = OAuthCredential.objects.get(pk=connected.pk)
    assert credential.status == OAuthCredential.Status.NEEDS_REAUTHORIZATION
    assert credential.refresh_token == connected.refresh_token
    server.refresh_from_db()
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert server.status_message == refresh.NeedsReauthorization.message
    with pytest.raises(refresh.NeedsReauthorization):
        refresh.access_token_for(server)


# --- 5. re-authorization --------------------------------------------------------


def test_reauthorization_replaces_the_credential(
    connected, signed_in, server, auth_server, as_metadata, mcp_url
):
    old = connected

    # A new browser session at the AS, so the AS starts a new grant.
    with httpx.Client(timeout=10) as other_browser:
        response, _ = authorize_in_app(
            signed_in, other_browser, server, auth_server.issuer
        )

    assert response.status_code == 302
    assert response["Location"] == reverse("servers:list")
    new = OAuthCredential.objects.get(server=server)
    assert new.pk != old.pk
    assert new.access_token != old.access_token
    assert new.refresh_token and new.refresh_token != old.refresh_token
    server.refresh_from_db()
    assert server.status == McpServer.Status.CONNECTED, server.status_message
    assert (
        AuditEvent.objects.filter(
            server=server, kind=AuditEvent.Kind.AUTHORIZED
        ).count()
        == 2
    )
    assert not OAuthCredential.objects.filter(pk=old.pk).exists()
    # The replacement works, refreshing included.
    assert echoed_text(echo(mcp_url, token=new.access_token)) == "echo: hi"
    result = refresh.refresh_credential(credential_id=new.pk, force=True)
    assert result.outcome == "refreshed", result


def test_reauthorization_in_the_same_as_session_keeps_the_new_credential(
    connected, signed_in, browser, server, auth_server, as_metadata
):
    # Same browser: the user is still signed in at the AS (the usual re-click).
    response, _ = authorize_in_app(signed_in, browser, server, auth_server.issuer)

    assert response.status_code == 302
    new = OAuthCredential.objects.select_related("registration").get(server=server)
    assert new.refresh_token != connected.refresh_token
    assert introspect(as_metadata, new.registration, new.refresh_token)["active"]
    result = refresh.refresh_credential(credential_id=new.pk, force=True)
    assert result.outcome == "refreshed", result


# --- 6. declined consent (login and consent forms) ------------------------------


def test_declined_consent_is_reported_and_stores_nothing(
    signed_in, browser, user, form_auth_server, form_mcp_url
):
    server = server_services.create_server(owner=user, url=form_mcp_url)
    location = start_in_app(signed_in, server, form_auth_server.issuer)
    state = query_of(location)["state"]

    kind, login = follow(browser, location)
    assert kind == "page"
    assert 'id="username"' in login.text and 'id="password"' in login.text
    kind, consent = follow(
        browser,
        form_action(login, "login"),
        method="POST",
        data={"username": "test-user", "password": "test-password"},
    )
    assert kind == "page"
    assert 'id="deny"' in consent.text
    assert form_mcp_url in consent.text
    kind, callback_url = follow(browser, form_action(consent, "deny"), method="POST")
    assert kind == "callback", callback_url
    params = query_of(callback_url)
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert params["iss"] == form_auth_server.issuer

    response = signed_in.get(path_of(callback_url))

    assert response.status_code == 302
    assert response["Location"] == reverse("servers:list")
    server.refresh_from_db()
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert server.status_message == DECLINED
    assert not OAuthCredential.objects.filter(server=server).exists()
    assert not PendingAuthorization.objects.filter(server=server).exists()
    assert AuditEvent.objects.filter(
        server=server,
        kind=AuditEvent.Kind.AUTHORIZATION_FAILED,
        detail__error="access_denied",
    ).exists()
    page = signed_in.get(reverse("servers:list")).content.decode()
    assert "Authorization was declined. The server is saved but not connected" in page


# --- 7. a token that expired is refreshed when used -----------------------------


def test_access_token_for_refreshes_an_expired_token(
    connected, server, as_metadata, mcp_url
):
    old = connected
    OAuthCredential.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    token = refresh.access_token_for(server)

    assert token and token != old.access_token
    new = OAuthCredential.objects.get(pk=old.pk)
    assert new.access_token == token
    assert new.refresh_token != old.refresh_token
    assert new.expires_at > timezone.now() + timedelta(seconds=60)
    assert AuditEvent.objects.filter(
        server=server, kind=AuditEvent.Kind.REFRESH_OK
    ).exists()
    assert echoed_text(echo(mcp_url, token=token)) == "echo: hi"
    # Used now, the fresh token is returned as is (no second refresh).
    assert refresh.access_token_for(server) == token
    assert_dead(as_metadata, old.registration, old.refresh_token)

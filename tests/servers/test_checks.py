from __future__ import annotations

import httpx
import pytest

from mcpsettings import outbound
from oauth.models import OAuthCredential
from servers import services
from servers.checks import check_server
from servers.models import McpServer
from tests.oauth.test_services import connect
from tests.oauth.world import MCP_URL

pytestmark = pytest.mark.django_db


def use_transport(monkeypatch, handler):
    monkeypatch.setattr(
        outbound,
        "make_client",
        lambda **kw: httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_a_rejected_static_token_asks_for_a_new_one(monkeypatch, user):
    seen = []

    def handler(request):
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )

    use_transport(monkeypatch, handler)
    server = services.create_server(owner=user, url=MCP_URL, token="tok-1")
    check_server(server)
    assert server.status == McpServer.Status.TOKEN_REJECTED
    assert "Paste a new one" in server.status_message
    assert seen[0] == "Bearer tok-1"


def test_html_is_not_an_mcp_endpoint(monkeypatch, user):
    use_transport(monkeypatch, lambda r: httpx.Response(200, html="<html>hi</html>"))
    server = services.create_server(owner=user, url=MCP_URL)
    check_server(server)
    assert server.status == McpServer.Status.NOT_MCP


def test_unreachable_says_which_failure(monkeypatch, user):
    def handler(request):
        raise outbound.DnsFailure("The host name mcp.example.com does not resolve.")

    use_transport(monkeypatch, handler)
    server = services.create_server(owner=user, url=MCP_URL)
    check_server(server)
    assert server.status == McpServer.Status.UNREACHABLE
    assert "does not resolve" in server.status_message


def test_connected_keeps_the_tools(world, user):
    server, _ = connect(world, user)
    check_server(server)
    assert server.status == McpServer.Status.CONNECTED
    assert server.tools == [{"name": "echo", "title": "", "description": ""}]
    assert server.status_message == "1 tool available."


def test_a_401_with_oauth_refreshes_once_and_retries(world, user):
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    # The server stopped accepting the token before it expired.
    world.authorization_server.access_tokens.discard(credential.access_token)
    check_server(server)
    assert server.status == McpServer.Status.CONNECTED
    refreshes = [
        r
        for r in world.requests_to("https://auth.example.com/token")
        if r.form.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1


def test_oauth_that_cannot_refresh_asks_to_authorize_again(world, user):
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    world.authorization_server.access_tokens.discard(credential.access_token)
    world.authorization_server.refresh_tokens.clear()
    check_server(server)
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert "Authorize again" in server.status_message

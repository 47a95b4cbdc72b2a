"""The Add dialog's server side: probe outcomes, Add, Add & Authorize."""

from __future__ import annotations

import json

import httpx
import pytest
from django.urls import reverse

from mcpsettings import outbound
from oauth.models import PendingAuthorization
from servers import probing
from servers.models import McpServer
from tests.oauth.world import MCP_URL

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def mcp_answer(request: httpx.Request, tools=("search", "fetch")) -> httpx.Response:
    message = json.loads(request.content)
    if "id" not in message:
        return httpx.Response(202)
    result = {
        "initialize": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "open", "version": "1"},
        },
        "tools/list": {"tools": [{"name": n, "inputSchema": {}} for n in tools]},
    }.get(message["method"], {})
    return httpx.Response(
        200, json={"jsonrpc": "2.0", "id": message["id"], "result": result}
    )


def route(monkeypatch, handler):
    monkeypatch.setattr(
        outbound,
        "make_client",
        lambda **kw: httpx.Client(transport=httpx.MockTransport(handler)),
    )


def probe(client, **data):
    body = {"url": MCP_URL, "transport": "auto", "token": "", "generation": "7", **data}
    return client.post(reverse("servers:probe"), body, **HX)


def test_probe_of_an_open_server_lists_tools_and_enables_add(auth_client, monkeypatch):
    route(monkeypatch, mcp_answer)
    response = probe(auth_client)
    body = response.content.decode()
    assert response["X-Probe-Generation"] == "7"
    assert 'data-outcome="connected"' in body
    assert "<li>search</li>" in body and "<li>fetch</li>" in body
    assert 'data-next-action="add"' in body
    assert 'value="add" class="button primary" data-primary >' in body
    assert "added as “example”" in body


def test_probe_with_a_rejected_token_never_offers_oauth(auth_client, world):
    response = probe(auth_client, token="wrong-token")
    body = response.content.decode()
    assert 'data-outcome="token_rejected"' in body
    assert "Add &amp; Authorize" not in body
    # "Static config wins": no discovery was attempted.
    assert not any(".well-known" in url for url in world.requested())


def test_probe_finds_oauth_and_offers_add_and_authorize(auth_client, world):
    body = probe(auth_client).content.decode()
    assert 'data-outcome="oauth_available"' in body
    assert "Add &amp; Authorize" in body
    assert f'name="challenge_resource_metadata" value="{world.prm_url}"' in body
    # Probing registers nothing at the authorization server.
    assert not world.requests_to("https://auth.example.com/register")


def test_probe_says_token_only_when_oauth_cannot_be_used(auth_client, world):
    world.authorization_server.registration = False
    body = probe(auth_client).content.decode()
    assert 'data-outcome="token_only"' in body
    assert "Paste a personal access token" in body
    assert "Add &amp; Authorize" not in body
    assert "disabled" in body


def test_probe_401_without_any_oauth_asks_for_a_token(auth_client, monkeypatch):
    def handler(request):
        if request.method == "POST":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        return httpx.Response(404)

    route(monkeypatch, handler)
    body = probe(auth_client).content.decode()
    assert 'data-outcome="auth_without_oauth"' in body
    assert "requires authentication" in body


@pytest.mark.parametrize(
    ("handler", "outcome", "words"),
    [
        (lambda r: httpx.Response(404, text="nope"), "not_mcp", "Not an MCP endpoint"),
        (lambda r: httpx.Response(200, html="<html></html>"), "not_mcp", "/mcp"),
        (lambda r: httpx.Response(502), "server_error", "Try again later"),
    ],
)
def test_probe_failures_have_their_own_words(
    auth_client, monkeypatch, handler, outcome, words
):
    route(monkeypatch, handler)
    body = probe(auth_client).content.decode()
    assert f'data-outcome="{outcome}"' in body
    assert words in body


def test_probe_unreachable_says_which_failure(auth_client, monkeypatch):
    def handler(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    route(monkeypatch, handler)
    body = probe(auth_client).content.decode()
    assert 'data-outcome="unreachable"' in body
    assert "timed out" in body


def test_probe_of_a_blocked_address_is_refused_in_words(auth_client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "false"
    body = probe(auth_client, url="http://127.0.0.1:9/mcp").content.decode()
    assert 'data-outcome="invalid_url"' in body
    assert "Use https://" in body


def test_probe_is_rate_limited_per_user(auth_client, monkeypatch, user_factory, client):
    route(monkeypatch, mcp_answer)
    for _ in range(probing.PROBES_PER_MINUTE):
        probe(auth_client)
    body = probe(auth_client).content.decode()
    assert 'data-outcome="rate_limited"' in body
    assert "Wait a moment" in body
    other = user_factory()
    client.force_login(other)
    assert 'data-outcome="connected"' in probe(client).content.decode()


def test_add_from_the_dialog_creates_checks_and_redirects(
    auth_client, monkeypatch, user
):
    route(monkeypatch, mcp_answer)
    response = auth_client.post(
        reverse("servers:add"),
        {"url": MCP_URL, "transport": "auto", "action": "add", "submission": "s1"},
        **HX,
    )
    assert response["HX-Redirect"] == reverse("servers:list")
    server = McpServer.objects.get(owner=user)
    assert server.status == McpServer.Status.CONNECTED
    assert [t["name"] for t in server.tools] == ["search", "fetch"]


def test_a_repeated_submission_creates_one_server(auth_client, monkeypatch, user):
    route(monkeypatch, mcp_answer)
    data = {"url": MCP_URL, "transport": "auto", "action": "add", "submission": "same"}
    first = auth_client.post(reverse("servers:add"), data, **HX)
    second = auth_client.post(reverse("servers:add"), data, **HX)
    assert McpServer.objects.filter(owner=user).count() == 1
    assert first["HX-Redirect"] == second["HX-Redirect"]


def test_add_and_authorize_goes_to_the_as(auth_client, world, user):
    response = auth_client.post(
        reverse("servers:add"),
        {
            "url": MCP_URL,
            "transport": "auto",
            "action": "authorize",
            "submission": "s2",
            "challenge_resource_metadata": world.prm_url,
            "challenge_scope": "mcp:tools",
        },
        **HX,
    )
    assert response["HX-Redirect"].startswith("https://auth.example.com/authorize?")
    assert "scope=mcp%3Atools" in response["HX-Redirect"]
    server = McpServer.objects.get(owner=user)
    assert PendingAuthorization.objects.filter(server=server).exists()


def test_add_and_authorize_failure_keeps_the_dialog_and_writes_nothing(
    auth_client, world, user
):
    world.authorization_server.registration_error = (
        400,
        {
            "error": "invalid_client_metadata",
            "error_description": "redirect not allowed",
        },
    )
    response = auth_client.post(
        reverse("servers:add"),
        {
            "url": MCP_URL,
            "transport": "auto",
            "action": "authorize",
            "submission": "s3",
        },
        **HX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="dialog-error"' in body
    assert "Nothing was added." in body
    assert not McpServer.objects.exists()
    assert not PendingAuthorization.objects.exists()
    # The same submission may be retried after a failure.
    world.authorization_server.registration_error = None
    retry = auth_client.post(
        reverse("servers:add"),
        {
            "url": MCP_URL,
            "transport": "auto",
            "action": "authorize",
            "submission": "s3",
        },
        **HX,
    )
    assert retry["HX-Redirect"].startswith("https://auth.example.com/")


def test_dialog_validation_errors_are_shown_in_the_dialog(auth_client):
    response = auth_client.post(
        reverse("servers:add"),
        {"url": "http://insecure.example.com/", "transport": "auto", "action": "add"},
        **HX,
    )
    body = response.content.decode()
    assert "Server URL: Use https://" in body
    assert not McpServer.objects.exists()


def test_card_check_renders_the_card_fragment(auth_client, monkeypatch, server_factory):
    server = server_factory()
    route(monkeypatch, lambda r: httpx.Response(404))
    response = auth_client.post(reverse("servers:check", args=[server.pk]), **HX)
    body = response.content.decode()
    assert body.strip().startswith(f'<li class="card" id="server-{server.pk}"')
    assert "Retry" in body
    assert "<html" not in body


def test_toggle_from_htmx_swaps_the_card(auth_client, server_factory):
    server = server_factory()
    response = auth_client.post(reverse("servers:toggle", args=[server.pk]), **HX)
    assert 'aria-checked="false"' in response.content.decode()


def test_page_offers_the_one_next_action_per_state(auth_client, server_factory):
    states = {
        "needs_authorization": "Authorize</button>",
        "token_only": "Add token</a>",
        "token_rejected": "Update token</a>",
        "unreachable": "Retry</button>",
        "unknown": "Check now</button>",
    }
    for status in states:
        server = server_factory()
        McpServer.objects.filter(pk=server.pk).update(
            status=status, status_message=f"msg-{status}"
        )
    body = auth_client.get(reverse("servers:list")).content.decode()
    for status, button in states.items():
        card = body.split(f'data-status="{status}"', 1)[1].split("</li>", 1)[0]
        assert button in card, status
        assert f"msg-{status}" in card
    assert (
        "Authorize</button>"
        not in body.split('data-status="token_only"', 1)[1].split("</li>", 1)[0]
    )

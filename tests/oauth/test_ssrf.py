"""Every URL the OAuth flow fetches goes through the guarded client.

The protected resource metadata URL comes from a server's header, the
authorization server URLs from that metadata, and the endpoints from the
authorization server's metadata: all chosen by remote parties. Each must be
refused when it points at a private, link-local or metadata address, before
any connection is made.
"""

from __future__ import annotations

import httpx
import pytest
from django.utils import timezone

from mcpsettings import outbound
from oauth import client as oauth
from oauth import services
from oauth.models import ClientRegistration, PendingAuthorization
from servers import services as server_services
from tests.oauth.fake_auth_server import FakeAuthorizationServer, FakeAuthServer

pytestmark = pytest.mark.django_db

MCP_URL = "https://mcp.example.com/mcp"


class PublicOnlyThroughFake(httpx.BaseTransport):
    """Requests to the fake's public hosts are answered by the fake; anything
    else goes through the real guarded transport, which must refuse it."""

    def __init__(self, fake: FakeAuthServer, public_hosts: set[str]):
        self.fake = httpx.MockTransport(fake)
        self.guarded = outbound.make_transport(outbound.OutboundPolicy(allow="false"))
        self.public_hosts = public_hosts
        self.guarded_requests: list[str] = []

    def handle_request(self, request):
        if request.url.host in self.public_hosts:
            return self.fake.handle_request(request)
        self.guarded_requests.append(str(request.url))
        return self.guarded.handle_request(request)


@pytest.fixture
def no_connections(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr("httpcore.SyncBackend.connect_tcp", refuse)
    return attempts


def test_a_metadata_url_from_the_header_cannot_reach_cloud_metadata(no_connections):
    fake = FakeAuthServer(server_url=MCP_URL)
    transport = PublicOnlyThroughFake(fake, {"mcp.example.com", "auth.example.com"})
    with pytest.raises(oauth.DiscoveryError) as excinfo:
        oauth.discover(
            httpx.Client(transport=transport),
            MCP_URL,
            challenge=oauth.BearerChallenge(
                resource_metadata="https://169.254.169.254/latest/meta-data/"
            ),
        )
    assert transport.guarded_requests == ["https://169.254.169.254/latest/meta-data/"]
    assert "169.254.169.254" in excinfo.value.message  # says what was tried
    assert no_connections == []


def test_authorization_servers_on_private_addresses_are_refused(no_connections):
    fake = FakeAuthServer(
        server_url=MCP_URL,
        listed_authorization_servers=["https://10.0.0.7", "https://192.168.1.1/tenant"],
    )
    transport = PublicOnlyThroughFake(fake, {"mcp.example.com"})
    with pytest.raises(oauth.DiscoveryError):
        oauth.discover(httpx.Client(transport=transport), MCP_URL)
    assert transport.guarded_requests
    assert all(
        "10.0.0.7" in url or "192.168.1.1" in url for url in transport.guarded_requests
    )
    assert no_connections == []


def test_a_token_endpoint_on_a_private_address_is_refused_at_exchange(
    monkeypatch, user, no_connections
):
    server = server_services.create_server(owner=user, url=MCP_URL)
    registration = ClientRegistration.objects.create(
        issuer="https://auth.example.com",
        redirect_uri="http://testserver/oauth/callback",
        kind="dcr",
        client_id="c",
        token_endpoint_auth_method="none",
    )
    PendingAuthorization.objects.create(
        state="s1",
        user=user,
        server=server,
        registration=registration,
        code_verifier="v" * 50,
        issuer="https://auth.example.com",
        authorization_endpoint="https://auth.example.com/authorize",
        token_endpoint="https://10.1.2.3/token",
        resource=MCP_URL,
        redirect_uri="http://testserver/oauth/callback",
        expires_at=timezone.now() + timezone.timedelta(minutes=5),
    )
    with pytest.raises(oauth.TokenError) as excinfo:
        services.complete_authorization(
            user=user,
            params={"state": "s1", "code": "abc", "iss": "https://auth.example.com"},
            http=outbound.make_client(policy=outbound.OutboundPolicy(allow="false")),
        )
    assert not isinstance(excinfo.value, oauth.TransientTokenError)
    assert "private or reserved" in excinfo.value.message or "blocked" in (
        excinfo.value.message
    )
    assert no_connections == []


def test_endpoints_in_as_metadata_must_be_https(no_connections):
    authorization_server = FakeAuthorizationServer(
        metadata_overrides={"token_endpoint": "http://auth.example.com/token"}
    )
    fake = FakeAuthServer(
        server_url=MCP_URL, authorization_servers=[authorization_server]
    )
    with pytest.raises(oauth.DiscoveryError):
        oauth.discover(fake.client(), MCP_URL)

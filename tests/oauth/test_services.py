from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from oauth import client as oauth
from oauth import services
from oauth.models import ClientRegistration, OAuthCredential, PendingAuthorization
from servers import services as server_services
from servers.models import AuditEvent, McpServer
from tests.oauth.world import MCP_URL

pytestmark = pytest.mark.django_db


def authorize_in_browser(world, authorization_url: str) -> dict[str, str]:
    """What a browser does: follow the AS's redirect back to our callback."""
    response = world.client().get(authorization_url)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("http://testserver/oauth/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(world, user, **kwargs):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL, **kwargs)
    params = authorize_in_browser(world, url)
    return services.complete_authorization(user=user, params=params), url


def test_add_and_authorize_creates_server_and_pending_together(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    query = parse_qs(urlsplit(url).query)
    pending = PendingAuthorization.objects.get(server=server)
    assert server.auth_kind == McpServer.AuthKind.OAUTH
    assert query["state"] == [pending.state]
    assert query["resource"] == [MCP_URL]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://testserver/oauth/callback"]
    assert pending.user == user
    assert pending.issuer == "https://auth.example.com"
    # The verifier is stored encrypted, never in the URL.
    with connection.cursor() as cursor:
        cursor.execute("SELECT code_verifier FROM oauth_pendingauthorization")
        (raw,) = cursor.fetchone()
    assert pending.code_verifier not in raw
    assert pending.code_verifier not in url


def test_add_and_authorize_writes_nothing_when_discovery_fails(world, user):
    world.resource = "https://elsewhere.example.com/mcp"
    with pytest.raises(oauth.ResourceMismatch):
        services.add_and_authorize(owner=user, url=MCP_URL)
    assert McpServer.objects.count() == 0
    assert PendingAuthorization.objects.count() == 0


def test_add_and_authorize_writes_nothing_when_registration_fails(world, user):
    world.authorization_server.registration_error = (
        400,
        {"error": "invalid_redirect_uri"},
    )
    with pytest.raises(oauth.RegistrationError):
        services.add_and_authorize(owner=user, url=MCP_URL)
    assert McpServer.objects.count() == 0
    assert ClientRegistration.objects.count() == 0


def test_callback_stores_the_credential_encrypted(world, user):
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    assert credential.access_token in world.authorization_server.access_tokens
    assert credential.refresh_token in world.authorization_server.refresh_tokens
    assert credential.resource == MCP_URL
    assert credential.issuer == "https://auth.example.com"
    assert credential.expires_at > timezone.now() + timedelta(minutes=50)
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM oauth_oauthcredential")
        raw = " ".join(cursor.fetchone())
    assert credential.access_token not in raw
    assert credential.refresh_token not in raw
    assert PendingAuthorization.objects.count() == 0
    assert AuditEvent.objects.filter(kind="authorized", server=server).exists()


def test_the_token_request_uses_the_stored_verifier_redirect_and_resource(world, user):
    connect(world, user)
    (token_request,) = world.requests_to("https://auth.example.com/token")
    form = token_request.form
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == "http://testserver/oauth/callback"
    assert form["resource"] == MCP_URL
    assert form["code_verifier"]


def test_a_state_is_single_use(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    services.complete_authorization(user=user, params=params)
    with pytest.raises(services.PendingAuthorizationInvalid):
        services.complete_authorization(user=user, params=params)
    assert len(world.requests_to("https://auth.example.com/token")) == 1


def test_another_users_state_is_refused_and_stays_usable_by_its_owner(
    world, user, other_user
):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    with pytest.raises(services.PendingAuthorizationInvalid):
        services.complete_authorization(user=other_user, params=params)
    assert not world.requests_to("https://auth.example.com/token")
    services.complete_authorization(user=user, params=params)
    assert OAuthCredential.objects.filter(server=server).exists()


def test_an_expired_pending_authorization_is_refused(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    PendingAuthorization.objects.update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.PendingAuthorizationExpired):
        services.complete_authorization(user=user, params=params)
    assert PendingAuthorization.objects.count() == 0
    assert not world.requests_to("https://auth.example.com/token")


def test_wrong_iss_never_reaches_the_token_endpoint_nor_shows_error_text(world, user):
    world.authorization_server.iss_in_response = "https://evil.example.com"
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    params["error_description"] = "<script>pwned</script>"
    with pytest.raises(oauth.IssMismatch) as excinfo:
        services.complete_authorization(user=user, params=params)
    assert "pwned" not in excinfo.value.message
    assert not world.requests_to("https://auth.example.com/token")
    server.refresh_from_db()
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert "pwned" not in server.status_message


def test_declined_consent_is_said_on_the_card(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    pending = PendingAuthorization.objects.get(server=server)
    params = {"state": pending.state, "error": "access_denied", "iss": pending.issuer}
    with pytest.raises(oauth.AuthorizationDenied):
        services.complete_authorization(user=user, params=params)
    server.refresh_from_db()
    assert server.status_message.startswith("Authorization was declined")


def test_a_server_deleted_during_consent_gets_no_credential(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    server_services.delete_server(server=server, actor=user)
    with pytest.raises(services.PendingAuthorizationInvalid):
        services.complete_authorization(user=user, params=params)
    assert OAuthCredential.objects.count() == 0


def test_registrations_are_reused_per_issuer(world, user, other_user):
    connect(world, user)
    services.add_and_authorize(owner=other_user, url=MCP_URL)
    assert len(world.requests_to("https://auth.example.com/register")) == 1
    assert ClientRegistration.objects.count() == 1


def test_dcr_asks_for_a_web_client_with_refresh_tokens(world, user):
    services.add_and_authorize(owner=user, url=MCP_URL)
    (request,) = world.requests_to("https://auth.example.com/register")
    body = request.json
    assert body["application_type"] == "web"
    assert body["redirect_uris"] == ["http://testserver/oauth/callback"]
    assert "refresh_token" in body["grant_types"]


def test_invalid_client_at_the_token_endpoint_drops_a_dcr_registration(world, user):
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    params = authorize_in_browser(world, url)
    world.authorization_server.clients.clear()  # the AS forgot us
    with pytest.raises(oauth.InvalidGrant):
        services.complete_authorization(user=user, params=params)
    assert ClientRegistration.objects.count() == 0
    services.start_authorization(user=user, server=server)
    assert len(world.requests_to("https://auth.example.com/register")) == 2


def test_a_pre_registered_client_wins_and_authenticates_with_basic(world, user):
    world.authorization_server.registration = False
    world.authorization_server.add_client(
        "admin-client", "s3cret", "client_secret_basic"
    )
    ClientRegistration.objects.create(
        issuer="https://auth.example.com",
        redirect_uri="http://testserver/oauth/callback",
        kind=ClientRegistration.Kind.PRE_REGISTERED,
        client_id="admin-client",
        client_secret="s3cret",
        token_endpoint_auth_method="client_secret_basic",
    )
    connect(world, user)
    (token_request,) = world.requests_to("https://auth.example.com/token")
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in token_request.form


def test_cimd_is_preferred_over_dcr_when_the_as_supports_it(world, user, settings):
    settings.OAUTH_CLIENT_METADATA_URL = (
        "https://app.example.com/oauth/client-metadata.json"
    )
    world.authorization_server.cimd_supported = True
    world.authorization_server.add_client(settings.OAUTH_CLIENT_METADATA_URL)
    server, url = services.add_and_authorize(owner=user, url=MCP_URL)
    assert parse_qs(urlsplit(url).query)["client_id"] == [
        settings.OAUTH_CLIENT_METADATA_URL
    ]
    assert not world.requests_to("https://auth.example.com/register")


def test_no_way_to_register_says_the_server_needs_a_token(world, user):
    world.authorization_server.registration = False
    with pytest.raises(oauth.NoRegistrationMethod):
        services.add_and_authorize(owner=user, url=MCP_URL)
    assert McpServer.objects.count() == 0


def test_scope_comes_from_the_challenge_and_step_up_keeps_the_previous_one(world, user):
    server, _ = connect(world, user, challenge=oauth.BearerChallenge(scope="mcp:read"))
    credential = OAuthCredential.objects.get(server=server)
    assert credential.requested_scope == "mcp:read"
    server.auth_challenge = {"scope": "mcp:write", "error": "insufficient_scope"}
    server.save()
    url = services.start_authorization(user=user, server=server)
    assert parse_qs(urlsplit(url).query)["scope"] == ["mcp:read mcp:write"]


def test_reauthorizing_with_the_same_client_replaces_without_revoking(world, user):
    # The AS may continue the grant: revoking the old refresh token would
    # revoke the new tokens with it.
    server, _ = connect(world, user)
    old = OAuthCredential.objects.get(server=server)
    params = authorize_in_browser(
        world, services.start_authorization(user=user, server=server)
    )
    services.complete_authorization(user=user, params=params)
    new = OAuthCredential.objects.get(server=server)
    assert new.access_token != old.access_token
    assert world.authorization_server.revoked == []


def test_reauthorizing_with_another_client_revokes_the_old_tokens(world, user):
    server, _ = connect(world, user)
    old = OAuthCredential.objects.get(server=server)
    # The AS forgot our client and we registered again: a different client.
    ClientRegistration.objects.filter(pk=old.registration_id).update(
        redirect_uri="https://elsewhere.example.com/cb"
    )
    params = authorize_in_browser(
        world, services.start_authorization(user=user, server=server)
    )
    services.complete_authorization(user=user, params=params)
    new = OAuthCredential.objects.get(server=server)
    assert new.registration_id != old.registration_id
    assert old.refresh_token in world.authorization_server.revoked


def test_an_abandoned_reauthorization_leaves_the_credential_alone(world, user):
    server, _ = connect(world, user)
    before = OAuthCredential.objects.get(server=server)
    services.start_authorization(user=user, server=server)  # never completed
    after = OAuthCredential.objects.get(server=server)
    assert (after.access_token, after.refresh_token) == (
        before.access_token,
        before.refresh_token,
    )


def test_disconnect_revokes_at_the_as_and_deletes_locally(
    world, user, django_capture_on_commit_callbacks
):
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.disconnect(server=server, actor=user) is True
    assert not OAuthCredential.objects.filter(server=server).exists()
    assert credential.refresh_token in world.authorization_server.revoked
    assert credential.access_token in world.authorization_server.revoked
    server.refresh_from_db()
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION


def test_editing_the_origin_drops_the_token_but_renaming_does_not(
    world, user, django_capture_on_commit_callbacks
):
    server, _ = connect(world, user)
    server_services.update_server(server=server, actor=user, url=server.url, name="New")
    assert OAuthCredential.objects.filter(server=server).exists()
    server_services.update_server(
        server=server, actor=user, url=server.url + "?x=1", name="New"
    )
    assert OAuthCredential.objects.filter(server=server).exists()
    with django_capture_on_commit_callbacks(execute=True):
        server_services.update_server(
            server=server, actor=user, url="https://other.example.com/mcp", name="New"
        )
    assert not OAuthCredential.objects.filter(server=server).exists()
    server.refresh_from_db()
    assert "URL changed" in server.status_message
    assert world.authorization_server.revoked


def test_deleting_a_server_revokes_its_tokens(
    world, user, django_capture_on_commit_callbacks
):
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    with django_capture_on_commit_callbacks(execute=True):
        server_services.delete_server(server=server, actor=user)
    assert credential.refresh_token in world.authorization_server.revoked


def test_revocation_failure_is_not_raised(
    world, user, django_capture_on_commit_callbacks
):
    server, _ = connect(world, user)
    world.routes[("POST", "https://auth.example.com/revoke")] = httpx.Response(503)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.disconnect(server=server, actor=user) is True
    assert not OAuthCredential.objects.filter(server=server).exists()


def test_fetch_challenge_reads_the_401(world, user):
    server = server_services.create_server(owner=user, url=MCP_URL)
    challenge = services.fetch_challenge(server, http=world.client())
    assert challenge.resource_metadata == world.prm_url
    server.refresh_from_db()
    assert server.auth_challenge["scope"] == "mcp:tools"

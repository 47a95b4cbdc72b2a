from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from oauth import services
from oauth.models import OAuthCredential, PendingAuthorization
from servers import services as server_services
from servers.models import McpServer
from tests.oauth.test_services import connect
from tests.oauth.world import MCP_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(user):
    return server_services.create_server(owner=user, url=MCP_URL)


def test_authorize_redirects_the_browser_to_the_as(world, auth_client, server):
    response = auth_client.post(reverse("oauth:authorize", args=[server.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("https://auth.example.com/authorize?")
    assert PendingAuthorization.objects.filter(server=server).count() == 1


def test_authorize_from_htmx_navigates_the_whole_page(world, auth_client, server):
    response = auth_client.post(
        reverse("oauth:authorize", args=[server.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("https://auth.example.com/authorize?")


def test_authorize_failure_says_why_on_the_settings_page(world, auth_client, server):
    world.authorization_server.registration = False
    response = auth_client.post(
        reverse("oauth:authorize", args=[server.pk]), follow=True
    )
    body = response.content.decode()
    assert "Could not start authorizing" in body
    assert "token" in body
    assert PendingAuthorization.objects.count() == 0


def test_callback_connects_and_lists_the_tools(world, auth_client, server, user):
    url = services.start_authorization(user=user, server=server)
    location = world.client().get(url).headers["Location"]
    path = urlsplit(location).path + "?" + urlsplit(location).query
    response = auth_client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("servers:list")
    server.refresh_from_db()
    assert server.status == McpServer.Status.CONNECTED
    assert [t["name"] for t in server.tools] == ["echo"]
    page = auth_client.get(reverse("servers:list")).content.decode()
    assert "is authorized and connected" in page
    credential = OAuthCredential.objects.get(server=server)
    assert credential.access_token not in page


def test_callback_with_an_unknown_state_explains_and_saves_nothing(world, auth_client):
    response = auth_client.get("/oauth/callback?state=forged&code=abc")
    assert response.status_code == 400
    assert "Authorization not completed" in response.content.decode()
    assert OAuthCredential.objects.count() == 0


def test_declined_consent_returns_to_the_page_with_a_message(
    world, auth_client, server, user
):
    services.start_authorization(user=user, server=server)
    pending = PendingAuthorization.objects.get()
    response = auth_client.get(
        "/oauth/callback",
        {"state": pending.state, "error": "access_denied", "iss": pending.issuer},
        follow=True,
    )
    assert "Authorization was declined" in response.content.decode()


def test_callback_requires_sign_in_and_comes_back_after(client):
    response = client.get("/oauth/callback?state=s&code=c")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/oauth/callback" in response["Location"]


def test_disconnect(world, auth_client, user):
    server, _ = connect(world, user)
    response = auth_client.post(
        reverse("oauth:disconnect", args=[server.pk]), follow=True
    )
    assert "Disconnected" in response.content.decode()
    assert not OAuthCredential.objects.filter(server=server).exists()


@pytest.mark.parametrize("name", ["oauth:authorize", "oauth:disconnect"])
def test_another_users_server_is_a_404(world, auth_client, other_user, name):
    theirs = server_services.create_server(owner=other_user, url=MCP_URL)
    assert auth_client.post(reverse(name, args=[theirs.pk])).status_code == 404
    assert PendingAuthorization.objects.count() == 0


def test_client_metadata_document_is_public_and_self_describing(client, settings):
    settings.OAUTH_CLIENT_METADATA_URL = (
        "https://app.example.com/oauth/client-metadata.json"
    )
    document = client.get("/oauth/client-metadata.json").json()
    assert document["client_id"] == settings.OAUTH_CLIENT_METADATA_URL
    assert document["redirect_uris"] == [settings.OAUTH_REDIRECT_URI]
    assert "refresh_token" in document["grant_types"]
    assert document["token_endpoint_auth_method"] == "none"


def test_client_metadata_is_absent_without_an_https_url(client, settings):
    settings.OAUTH_CLIENT_METADATA_URL = ""
    assert client.get("/oauth/client-metadata.json").status_code == 404

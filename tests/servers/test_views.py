import pytest
from django.urls import reverse

from servers.models import AuditEvent, McpServer, StaticToken

pytestmark = pytest.mark.django_db

SECRET = "tok-super-secret-value-42"


def test_settings_page_requires_sign_in(client):
    response = client.get(reverse("servers:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_empty_state_invites_adding_a_server(auth_client):
    response = auth_client.get(reverse("servers:list"))
    assert response.status_code == 200
    assert "No servers yet" in response.content.decode()
    assert "Add your first server" in response.content.decode()


def test_list_shows_only_my_servers(auth_client, server_factory, other_user):
    server_factory(url="https://mine.example.com/mcp", name="Mine")
    server_factory(
        owner=other_user, url="https://theirs.example.com/mcp", name="Theirs"
    )
    body = auth_client.get(reverse("servers:list")).content.decode()
    assert "Mine" in body
    assert "Theirs" not in body
    assert "theirs.example.com" not in body


def test_adding_a_server_with_a_token(auth_client, user):
    response = auth_client.post(
        reverse("servers:add"),
        {
            "url": "https://api.github.com/mcp",
            "name": "",
            "transport": "auto",
            "token": f"  {SECRET} ",
        },
    )
    assert response.status_code == 302
    server = McpServer.objects.get(owner=user)
    assert server.name == "github"
    assert server.static_token.token == SECRET
    page = auth_client.get(reverse("servers:list")).content.decode()
    assert "Added “github”." in page
    assert SECRET not in page


def test_bad_input_shows_the_reason_and_keeps_what_was_typed(auth_client):
    response = auth_client.post(
        reverse("servers:add"),
        {
            "url": "http://mcp.example.com/mcp",
            "name": "My tools",
            "transport": "sse",
            "token": SECRET,
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Use https://" in body
    assert 'value="http://mcp.example.com/mcp"' in body
    assert 'value="My tools"' in body
    # The token is write-only, even when the form is shown again.
    assert SECRET not in body
    assert McpServer.objects.count() == 0


def test_duplicate_name_error_is_shown_on_the_name_field(auth_client, server_factory):
    server_factory(name="Tools")
    response = auth_client.post(
        reverse("servers:add"),
        {"url": "https://b.example.com/mcp", "name": "Tools", "transport": "auto"},
    )
    assert response.status_code == 200
    assert "already have a server with this name" in response.content.decode()


def test_edit_page_never_renders_the_token(auth_client, server_factory):
    server = server_factory(token=SECRET)
    body = auth_client.get(reverse("servers:edit", args=[server.pk])).content.decode()
    assert "A token is saved" in body
    assert SECRET not in body


def test_edit_can_replace_and_clear_the_token(auth_client, server_factory):
    server = server_factory(token=SECRET)
    url = reverse("servers:edit", args=[server.pk])
    data = {"url": server.url, "name": "", "transport": "auto"}
    auth_client.post(url, {**data, "token": "new-token"})
    assert StaticToken.objects.get(server=server).token == "new-token"
    auth_client.post(url, {**data, "clear_token": "on"})
    assert not StaticToken.objects.filter(server=server).exists()
    response = auth_client.post(url, {**data, "token": "x", "clear_token": "on"})
    assert "not both" in response.content.decode()


def test_toggle_and_delete(auth_client, server_factory):
    server = server_factory()
    auth_client.post(reverse("servers:toggle", args=[server.pk]))
    server.refresh_from_db()
    assert server.enabled is False
    auth_client.post(reverse("servers:toggle", args=[server.pk]), {"enabled": "on"})
    server.refresh_from_db()
    assert server.enabled is True
    confirm = auth_client.get(reverse("servers:delete", args=[server.pk]))
    assert "cannot be undone" in confirm.content.decode()
    auth_client.post(reverse("servers:delete", args=[server.pk]))
    assert not McpServer.objects.filter(pk=server.pk).exists()
    assert AuditEvent.objects.filter(kind="server_deleted").exists()


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("servers:edit", "get"),
        ("servers:edit", "post"),
        ("servers:toggle", "post"),
        ("servers:check", "post"),
        ("servers:delete", "get"),
        ("servers:delete", "post"),
    ],
)
def test_another_users_server_is_a_404(
    auth_client, other_user, server_factory, name, method
):
    theirs = server_factory(owner=other_user, token=SECRET)
    response = getattr(auth_client, method)(
        reverse(name, args=[theirs.pk]),
        {"url": "https://evil.example.com/", "transport": "auto", "enabled": ""},
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.url != "https://evil.example.com/"
    assert theirs.enabled is True


def test_every_url_that_takes_a_server_id_is_covered_by_the_isolation_test():
    from servers import urls

    with_pk = {
        f"servers:{p.name}" for p in urls.urlpatterns if "<uuid:pk>" in str(p.pattern)
    }
    assert with_pk == {
        "servers:edit",
        "servers:toggle",
        "servers:delete",
        "servers:check",
    }


def test_posts_require_csrf(client, user, server_factory):
    from django.test import Client

    server = server_factory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = strict.post(reverse("servers:delete", args=[server.pk]))
    assert response.status_code == 403
    assert McpServer.objects.filter(pk=server.pk).exists()


def test_pages_carry_a_strict_content_security_policy(auth_client):
    csp = auth_client.get(reverse("servers:list"))["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp

import pytest
from django.core.exceptions import ValidationError

from servers import services
from servers.models import AuditEvent, McpServer, StaticToken

pytestmark = pytest.mark.django_db


def test_create_derives_the_name_from_the_host(user):
    server = services.create_server(owner=user, url="https://api.github.com/mcp")
    assert server.name == "github"
    assert server.name_is_custom is False
    assert server.auth_kind == McpServer.AuthKind.NONE


def test_derived_names_get_a_suffix_instead_of_clashing(user):
    first = services.create_server(owner=user, url="https://api.github.com/mcp")
    second = services.create_server(owner=user, url="https://copilot.github.com/mcp")
    third = services.create_server(owner=user, url="https://x.github.com/mcp")
    assert [first.name, second.name, third.name] == ["github", "github-2", "github-3"]


def test_a_typed_name_that_clashes_is_refused_and_nothing_is_written(user):
    services.create_server(owner=user, url="https://a.example.com/mcp", name="Tools")
    with pytest.raises(ValidationError) as excinfo:
        services.create_server(
            owner=user, url="https://b.example.com/mcp", name="Tools", token="abc"
        )
    assert "already have a server" in str(excinfo.value)
    assert McpServer.objects.count() == 1
    assert StaticToken.objects.count() == 0


def test_names_are_unique_per_owner_only(user, other_user):
    services.create_server(owner=user, url="https://a.example.com/mcp", name="Tools")
    other = services.create_server(
        owner=other_user, url="https://a.example.com/mcp", name="Tools"
    )
    assert other.name == "Tools"


def test_create_with_a_token_stores_it_encrypted_and_marks_bearer(user):
    server = services.create_server(
        owner=user, url="https://a.example.com/mcp", token="  tok-123  "
    )
    assert server.auth_kind == McpServer.AuthKind.BEARER
    assert server.static_token.token == "tok-123"
    kinds = list(AuditEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["server_added", "token_set"]


def test_create_refuses_an_injected_token(user):
    with pytest.raises(ValidationError):
        services.create_server(
            owner=user, url="https://a.example.com/mcp", token="a\r\nX-Evil: 1"
        )
    assert McpServer.objects.count() == 0


def test_create_validates_the_url_for_every_caller(user, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "false"
    with pytest.raises(ValidationError):
        services.create_server(owner=user, url="http://127.0.0.1:8000/mcp")
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "loopback"
    server = services.create_server(owner=user, url="http://127.0.0.1:8000/mcp")
    assert server.name == "localhost-8000"


def test_renaming_keeps_what_was_learnt_about_the_server(server_factory, user):
    server = server_factory(url="https://a.example.com/mcp")
    McpServer.objects.filter(pk=server.pk).update(
        status="connected", tools=[{"name": "x"}]
    )
    server.refresh_from_db()
    services.update_server(server=server, actor=user, url=server.url, name="Renamed")
    server.refresh_from_db()
    assert (server.name, server.name_is_custom) == ("Renamed", True)
    assert server.status == "connected"
    assert server.tools == [{"name": "x"}]


def test_changing_the_url_resets_status_and_tools(server_factory, user):
    server = server_factory(url="https://a.example.com/mcp")
    McpServer.objects.filter(pk=server.pk).update(
        status="connected", tools=[{"name": "x"}]
    )
    server.refresh_from_db()
    services.update_server(server=server, actor=user, url="https://mcp.linear.app/mcp")
    server.refresh_from_db()
    assert server.status == McpServer.Status.UNKNOWN
    assert server.tools == []
    # The name was derived, so it follows the new host.
    assert server.name == "linear"
    event = AuditEvent.objects.filter(kind="server_edited").get()
    assert event.detail["url"] == [
        "https://a.example.com/mcp",
        "https://mcp.linear.app/mcp",
    ]


def test_setting_and_clearing_a_token(server_factory, user):
    server = server_factory()
    services.set_static_token(server=server, actor=user, token="t1")
    services.set_static_token(server=server, actor=user, token="t2")
    assert StaticToken.objects.get(server=server).token == "t2"
    assert StaticToken.objects.count() == 1
    server.refresh_from_db()
    assert server.auth_kind == McpServer.AuthKind.BEARER
    assert services.clear_static_token(server=server, actor=user) is True
    assert services.clear_static_token(server=server, actor=user) is False
    server.refresh_from_db()
    assert server.auth_kind == McpServer.AuthKind.NONE
    assert AuditEvent.objects.filter(kind="token_cleared").count() == 1


def test_enable_disable_records_only_real_changes(server_factory, user):
    server = server_factory()
    services.set_enabled(server=server, actor=user, enabled=True)
    services.set_enabled(server=server, actor=user, enabled=False)
    services.set_enabled(server=server, actor=user, enabled=False)
    server.refresh_from_db()
    assert server.enabled is False
    assert AuditEvent.objects.filter(kind="server_disabled").count() == 1
    assert not AuditEvent.objects.filter(kind="server_enabled").exists()


def test_delete_removes_the_token_and_keeps_the_audit_trail(server_factory, user):
    server = server_factory(token="secret-token")
    services.delete_server(server=server, actor=user)
    assert McpServer.objects.count() == 0
    assert StaticToken.objects.count() == 0
    event = AuditEvent.objects.get(kind="server_deleted")
    assert event.server is None
    assert server.name in event.server_label

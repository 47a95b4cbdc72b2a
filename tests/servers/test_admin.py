"""Every admin page renders, and no secret value ever appears in its HTML."""

import pytest
from django.contrib import admin
from django.urls import reverse

from servers import services
from servers.models import AuditEvent

pytestmark = pytest.mark.django_db

SECRET = "admin-must-never-show-this-7f3a9c"


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        "root", password="pw-for-tests-only"
    )
    client.force_login(staff)
    return client


@pytest.fixture
def data(user):
    server = services.create_server(
        owner=user, url="https://a.example.com/mcp", token=SECRET
    )
    services.create_server(owner=user, url="https://b.example.com/mcp")
    return server


def admin_pages(obj_by_model):
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        yield reverse("admin:{}_{}_changelist".format(*info))
        yield reverse("admin:{}_{}_add".format(*info))
        obj = obj_by_model.get(model) or model._default_manager.first()
        if obj is not None:
            yield reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            yield reverse("admin:{}_{}_history".format(*info), args=[obj.pk])


def test_every_admin_page_renders_without_secrets(staff_client, data):
    pages = list(admin_pages({}))
    assert len(pages) >= 8
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code in {200, 403}, url
        assert SECRET not in response.content.decode(), url


def test_server_admin_shows_token_state_only(staff_client, data):
    body = staff_client.get(
        reverse("admin:servers_mcpserver_changelist")
    ).content.decode()
    assert "not set" in body
    assert ">set<" in body
    change = staff_client.get(reverse("admin:servers_mcpserver_change", args=[data.pk]))
    assert SECRET not in change.content.decode()


def test_server_admin_search_and_filters(staff_client, data):
    url = reverse("admin:servers_mcpserver_changelist")
    body = staff_client.get(url, {"q": "alice"}).content.decode()
    assert "a.example.com" in body and "b.example.com" in body
    body = staff_client.get(url, {"q": "b.example"}).content.decode()
    assert "b.example.com" in body and "a.example.com" not in body
    body = staff_client.get(url, {"auth_kind__exact": "bearer"}).content.decode()
    assert "a.example.com" in body and "b.example.com" not in body


def test_audit_log_is_read_only(staff_client, data):
    event = AuditEvent.objects.first()
    assert staff_client.get(reverse("admin:servers_auditevent_add")).status_code == 403
    response = staff_client.post(
        reverse("admin:servers_auditevent_change", args=[event.pk]), {"kind": "probe"}
    )
    assert response.status_code == 403
    assert (
        staff_client.post(
            reverse("admin:servers_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )

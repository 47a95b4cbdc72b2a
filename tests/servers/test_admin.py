"""Every admin page renders, and no secret value ever appears in its HTML."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from oauth.models import ClientRegistration, OAuthCredential, PendingAuthorization
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
    other = services.create_server(owner=user, url="https://b.example.com/mcp")
    registration = ClientRegistration.objects.create(
        issuer="https://as.example.com",
        redirect_uri="http://testserver/oauth/callback",
        kind="dcr",
        client_id="client-1",
        client_secret=SECRET + "-client-secret",
        token_endpoint_auth_method="client_secret_basic",
    )
    now = timezone.now()
    OAuthCredential.objects.create(
        server=other,
        registration=registration,
        access_token=SECRET + "-access",
        refresh_token=SECRET + "-refresh",
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        issuer=registration.issuer,
        token_endpoint="https://as.example.com/token",
        resource=other.url,
    )
    PendingAuthorization.objects.create(
        state=SECRET + "-state",
        user=user,
        server=other,
        registration=registration,
        code_verifier=SECRET + "-verifier",
        issuer=registration.issuer,
        authorization_endpoint="https://as.example.com/authorize",
        token_endpoint="https://as.example.com/token",
        resource=other.url,
        redirect_uri=registration.redirect_uri,
        expires_at=now + timedelta(minutes=10),
    )
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
    assert len(pages) >= 20
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


def test_admin_can_add_a_pre_registered_client_with_a_write_only_secret(staff_client):
    url = reverse("admin:oauth_clientregistration_add")
    form = staff_client.get(url).content.decode()
    assert "http://testserver/oauth/callback" in form
    response = staff_client.post(
        url,
        {
            "issuer": "https://login.example.com",
            "redirect_uri": "http://testserver/oauth/callback",
            "kind": "pre-registered",
            "client_id": "my-app",
            "token_endpoint_auth_method": "client_secret_basic",
            "new_client_secret": SECRET,
        },
    )
    assert response.status_code == 302
    registration = ClientRegistration.objects.get(client_id="my-app")
    assert registration.client_secret == SECRET
    change = staff_client.get(
        reverse("admin:oauth_clientregistration_change", args=[registration.pk])
    )
    assert SECRET not in change.content.decode()
    # Saving without typing a secret keeps it.
    staff_client.post(
        reverse("admin:oauth_clientregistration_change", args=[registration.pk]),
        {
            "issuer": "https://login.example.com",
            "redirect_uri": "http://testserver/oauth/callback",
            "kind": "pre-registered",
            "client_id": "my-app",
            "token_endpoint_auth_method": "client_secret_basic",
            "new_client_secret": "",
        },
    )
    registration.refresh_from_db()
    assert registration.client_secret == SECRET

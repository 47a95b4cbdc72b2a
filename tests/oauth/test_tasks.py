"""The Celery adapters for refresh (run eagerly here) and the admin actions
that use them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from mcpsettings.celery import app
from oauth import tasks
from oauth.models import OAuthCredential
from servers.models import AuditEvent
from tests.oauth.test_services import connect

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://auth.example.com/token"


@pytest.fixture(autouse=True)
def no_sweep_lock():
    cache.delete(tasks.SWEEP_LOCK_KEY)
    yield
    cache.delete(tasks.SWEEP_LOCK_KEY)


@pytest.fixture
def credential(world, user):
    world.authorization_server.rotate_refresh_tokens = True
    server, _ = connect(world, user)
    return OAuthCredential.objects.get(server=server)


def make_due(credential):
    now = timezone.now()
    OAuthCredential.objects.filter(pk=credential.pk).update(
        expires_at=now + timedelta(seconds=30), refresh_due_at=now
    )


def refresh_calls(world):
    return [
        r
        for r in world.requests_to(TOKEN_URL)
        if r.form.get("grant_type") == "refresh_token"
    ]


def test_beat_runs_the_sweep_at_the_configured_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-oauth-tokens"]
    assert entry["task"] == "oauth.tasks.refresh_due_credentials"
    assert entry["schedule"] == settings.OAUTH_REFRESH_SWEEP_SECONDS
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_the_sweep_refreshes_what_is_due(world, credential):
    make_due(credential)
    old = credential.access_token
    assert tasks.refresh_due_credentials.delay().get() == 1
    credential.refresh_from_db()
    assert credential.access_token != old
    assert credential.refresh_due_at > timezone.now()
    assert len(refresh_calls(world)) == 1


def test_a_second_sweep_within_the_interval_does_nothing(world, credential):
    assert tasks.refresh_due_credentials.delay().get() == 0
    make_due(credential)
    assert tasks.refresh_due_credentials.delay().get() == 0
    assert refresh_calls(world) == []


def test_the_refresh_task_reports_the_outcome(world, credential):
    assert tasks.refresh_credential_task.delay(credential.pk).get() == "not_due"
    forced = tasks.refresh_credential_task.delay(credential.pk, force=True).get()
    assert forced == "refreshed"


# -- admin ------------------------------------------------------------------------


def changelist():
    return reverse("admin:oauth_oauthcredential_changelist")


def test_admin_lists_refresh_state_and_users_per_server(
    admin_client, world, credential, other_user
):
    connect(world, other_user)  # a second user of the same server
    world.routes[("POST", TOKEN_URL)] = httpx.Response(503)
    make_due(credential)
    tasks.refresh_credential_task.delay(credential.pk)
    credential.refresh_from_db()
    response = admin_client.get(changelist())
    assert response.status_code == 200
    rows = {row.pk: row for row in response.context["cl"].result_list}
    assert [row._users for row in rows.values()] == [2, 2]
    content = response.content.decode()
    assert credential.last_error in content
    assert "Users connected" in content and "Next attempt at" in content


def test_admin_refresh_now_forces_active_credentials_only(
    admin_client, world, credential
):
    old = credential.access_token
    response = admin_client.post(
        changelist(), {"action": "refresh_now", "_selected_action": [credential.pk]}
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.access_token != old
    OAuthCredential.objects.filter(pk=credential.pk).update(
        status=OAuthCredential.Status.NEEDS_REAUTHORIZATION
    )
    response = admin_client.post(
        changelist(),
        {"action": "refresh_now", "_selected_action": [credential.pk]},
        follow=True,
    )
    assert "need re-authorization" in response.content.decode()
    assert len(refresh_calls(world)) == 1


def test_admin_revoke_revokes_at_the_server_and_deletes(
    admin_client, world, credential, django_capture_on_commit_callbacks
):
    refresh_token = credential.refresh_token
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist(), {"action": "revoke", "_selected_action": [credential.pk]}
        )
    assert response.status_code == 302
    assert not OAuthCredential.objects.filter(pk=credential.pk).exists()
    assert refresh_token in world.authorization_server.revoked
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.REVOKED, server=credential.server_id
    ).exists()


def test_admin_offers_no_delete_that_would_skip_revocation(admin_client, credential):
    response = admin_client.get(changelist())
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert {"refresh_now", "revoke"} <= set(actions)

from __future__ import annotations

import random
import threading
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from oauth import refresh
from oauth.models import OAuthCredential
from servers.models import McpServer
from tests.oauth.test_services import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def credential(world, user):
    world.authorization_server.rotate_refresh_tokens = True
    server, _ = connect(world, user)
    return OAuthCredential.objects.get(server=server)


def make_due(credential):
    OAuthCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() + timedelta(seconds=30)
    )


def test_due_time_is_a_share_of_the_lifetime_but_at_least_five_minutes(credential):
    now = timezone.now()
    credential.issued_at = now
    credential.expires_at = now + timedelta(hours=4)
    assert credential.expires_at - refresh.refresh_due_at(credential) == timedelta(
        hours=1
    )
    credential.expires_at = now + timedelta(minutes=10)
    assert credential.expires_at - refresh.refresh_due_at(credential) == timedelta(
        minutes=5
    )
    credential.expires_at = None
    assert refresh.refresh_due_at(credential) is None


def test_refresh_rotates_and_saves_in_one_update(world, credential):
    make_due(credential)
    old_refresh = credential.refresh_token
    result = refresh.refresh_credential(credential_id=credential.pk)
    assert result.outcome == "refreshed"
    credential.refresh_from_db()
    assert credential.refresh_token != old_refresh
    assert credential.refresh_token in world.authorization_server.refresh_tokens
    assert credential.lease_owner == "" and credential.lease_until is None
    (request,) = world.requests_to("https://auth.example.com/token")[1:]
    assert request.form["resource"] == credential.resource
    assert request.form["grant_type"] == "refresh_token"


def test_a_credential_not_due_is_left_alone(world, credential):
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "not_due"
    assert len(world.requests_to("https://auth.example.com/token")) == 1


def test_no_new_refresh_token_keeps_the_old_one(world, credential):
    world.authorization_server.rotate_refresh_tokens = False
    make_due(credential)
    old = credential.refresh_token
    refresh.refresh_credential(credential_id=credential.pk)
    credential.refresh_from_db()
    assert credential.refresh_token == old


def test_invalid_grant_means_reauthorization_and_no_more_attempts(world, credential):
    world.authorization_server.refresh_tokens.clear()
    make_due(credential)
    result = refresh.refresh_credential(credential_id=credential.pk)
    assert result.outcome == "needs_reauthorization"
    credential.refresh_from_db()
    assert credential.status == OAuthCredential.Status.NEEDS_REAUTHORIZATION
    server = McpServer.objects.get(pk=credential.server_id)
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert "Authorize again" in server.status_message
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "not_due"


def test_server_errors_back_off_and_keep_the_token(world, credential):
    world.routes[("POST", "https://auth.example.com/token")] = httpx.Response(503)
    make_due(credential)
    token = credential.access_token
    result = refresh.refresh_credential(credential_id=credential.pk)
    assert result.outcome == "retry"
    credential.refresh_from_db()
    assert credential.access_token == token
    assert credential.attempts == 1
    assert credential.next_attempt_at > timezone.now()
    assert credential.last_error
    assert credential.status == OAuthCredential.Status.ACTIVE


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    first = refresh.backoff_seconds(1, rng=rng)
    assert 15 <= first <= 30
    assert 240 <= refresh.backoff_seconds(5, rng=rng) <= 480
    assert refresh.backoff_seconds(50, rng=rng) <= refresh.BACKOFF_MAX_SECONDS


def test_a_held_lease_blocks_a_second_refresh(world, credential):
    make_due(credential)
    lease = refresh.claim(credential.pk, now=timezone.now())
    assert lease
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "busy"
    assert refresh.release(credential.pk, lease)
    assert (
        refresh.refresh_credential(credential_id=credential.pk).outcome == "refreshed"
    )


def test_an_expired_lease_can_be_taken_over(credential):
    now = timezone.now()
    assert refresh.claim(credential.pk, now=now)
    assert refresh.claim(credential.pk, now=now) is None
    later = now + timedelta(seconds=refresh.LEASE_SECONDS + 1)
    assert refresh.claim(credential.pk, now=later)


def test_a_result_is_discarded_when_the_lease_was_lost(world, credential, monkeypatch):
    make_due(credential)
    token = credential.access_token
    real_refresh = refresh.oauth.refresh

    def slow_refresh(*args, **kwargs):
        # Meanwhile, the lease expired and another worker took it.
        OAuthCredential.objects.filter(pk=credential.pk).update(lease_owner="other")
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(refresh.oauth, "refresh", slow_refresh)
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "busy"
    credential.refresh_from_db()
    assert credential.access_token == token


@pytest.mark.django_db(transaction=True)
def test_threads_racing_refresh_present_each_refresh_token_once(world, user):
    world.authorization_server.rotate_refresh_tokens = True
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    make_due(credential)
    results = []

    def worker():
        results.append(refresh.refresh_credential(credential_id=credential.pk).outcome)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6  # no thread died (e.g. on "database is locked")
    assert results.count("refreshed") == 1
    assert set(results) <= {"refreshed", "busy", "not_due"}
    presented = [
        r.form["refresh_token"]
        for r in world.requests_to("https://auth.example.com/token")
        if r.form.get("grant_type") == "refresh_token"
    ]
    assert len(presented) == len(set(presented)) == 1


def test_access_token_for_refreshes_an_expired_token(world, credential):
    OAuthCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    token = refresh.access_token_for(credential.server)
    assert token != credential.access_token
    assert token in world.authorization_server.access_tokens


def test_access_token_for_returns_a_fresh_token_without_a_request(world, credential):
    assert refresh.access_token_for(credential.server) == credential.access_token
    assert len(world.requests_to("https://auth.example.com/token")) == 1


def test_tokens_without_expiry_are_refreshed_only_when_forced(world, user):
    world.authorization_server.expires_in = None
    server, _ = connect(world, user)
    credential = OAuthCredential.objects.get(server=server)
    assert credential.expires_at is None
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "not_due"
    token = refresh.access_token_for(server, force_refresh=True)
    assert token != credential.access_token


def test_needs_reauthorization_is_raised_to_callers(world, credential):
    OAuthCredential.objects.filter(pk=credential.pk).update(
        status=OAuthCredential.Status.NEEDS_REAUTHORIZATION
    )
    with pytest.raises(refresh.NeedsReauthorization):
        refresh.access_token_for(credential.server)


def test_transient_failure_with_an_expired_token_is_not_reauthorization(
    world, credential
):
    world.routes[("POST", "https://auth.example.com/token")] = httpx.Response(503)
    OAuthCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(refresh.TokenUnavailable) as excinfo:
        refresh.access_token_for(credential.server)
    assert "retried automatically" in excinfo.value.message

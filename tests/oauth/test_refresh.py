from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.db import connection, transaction
from django.utils import timezone

from oauth import refresh
from oauth.models import ClientRegistration, OAuthCredential
from servers.models import AuditEvent, McpServer
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


def test_backoff_grows_and_is_capped(settings):
    rng = random.Random(1)
    first = refresh.backoff_seconds(1, rng=rng)
    assert 15 <= first <= 30
    assert 240 <= refresh.backoff_seconds(5, rng=rng) <= 480
    cap = settings.OAUTH_REFRESH_BACKOFF_MAX_SECONDS
    assert cap / 2 <= refresh.backoff_seconds(50, rng=rng) <= cap


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
        try:
            outcome = refresh.refresh_credential(credential_id=credential.pk).outcome
            results.append(outcome)
        finally:
            connection.close()  # each thread has its own; the test DB is dropped

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


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
def test_a_rejected_client_also_means_reauthorization(world, credential, error):
    world.routes[("POST", "https://auth.example.com/token")] = httpx.Response(
        400, json={"error": error}
    )
    make_due(credential)
    result = refresh.refresh_credential(credential_id=credential.pk)
    assert result == refresh.RefreshResult("needs_reauthorization", error)
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.NEEDS_REAUTHORIZATION, server=credential.server
    ).exists()


def test_a_refresh_stores_the_next_due_time(world, credential):
    make_due(credential)
    refresh.refresh_credential(credential_id=credential.pk)
    credential.refresh_from_db()
    assert credential.refresh_due_at == refresh.due_at(
        issued_at=credential.issued_at, expires_at=credential.expires_at
    )
    assert credential.last_refreshed_at == credential.issued_at


def test_a_backing_off_credential_waits_unless_forced(world, credential):
    world.routes[("POST", "https://auth.example.com/token")] = httpx.Response(503)
    make_due(credential)
    refresh.refresh_credential(credential_id=credential.pk)
    assert refresh.refresh_credential(credential_id=credential.pk).outcome == "not_due"
    del world.routes[("POST", "https://auth.example.com/token")]
    credential.refresh_from_db()
    later = credential.next_attempt_at + timedelta(seconds=1)
    result = refresh.refresh_credential(credential_id=credential.pk, now=later)
    assert result.outcome == "refreshed"
    credential.refresh_from_db()
    assert (credential.attempts, credential.last_error) == (0, "")


# -- the due selection, with a fixed clock -------------------------------------------

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_credential(user):
    registration = ClientRegistration.objects.create(
        issuer="https://auth.example.com",
        redirect_uri="http://testserver/oauth/callback",
        kind=ClientRegistration.Kind.DCR,
        client_id="client-1",
    )
    made = iter(range(1, 10_000))

    def make(*, lifetime=timedelta(hours=1), left=timedelta(hours=1), **fields):
        number = next(made)
        server = McpServer.objects.create(
            owner=user, name=f"s{number}", url=f"https://mcp{number}.example.com/mcp"
        )
        expires_at = NOW + left if lifetime else None
        values = {
            "access_token": f"at-{number}",
            "refresh_token": f"rt-{number}",
            "issued_at": (expires_at or NOW) - (lifetime or timedelta(0)),
            "expires_at": expires_at,
            "issuer": registration.issuer,
            "token_endpoint": "https://auth.example.com/token",
            "resource": server.url,
        }
        values["refresh_due_at"] = refresh.due_at(
            issued_at=values["issued_at"], expires_at=expires_at
        )
        values.update(fields)
        return OAuthCredential.objects.create(
            server=server, registration=registration, **values
        )

    return make


def due_ids(now=NOW):
    return list(refresh.due_credentials(now).values_list("pk", flat=True))


def test_the_lead_is_a_share_of_the_lifetime_with_a_floor(make_credential):
    # 4 h tokens are due 1 h ahead; 10 min tokens 5 min ahead (the floor).
    long_due = make_credential(lifetime=timedelta(hours=4), left=timedelta(minutes=59))
    make_credential(lifetime=timedelta(hours=4), left=timedelta(minutes=61))
    short_due = make_credential(
        lifetime=timedelta(minutes=10), left=timedelta(minutes=5)
    )
    make_credential(lifetime=timedelta(minutes=10), left=timedelta(minutes=6))
    assert sorted(due_ids()) == sorted([long_due.pk, short_due.pk])


def test_the_lead_follows_the_settings(make_credential, settings):
    settings.OAUTH_REFRESH_LEAD_SHARE = 0.5
    settings.OAUTH_REFRESH_MIN_LEAD_SECONDS = 0
    due = make_credential(lifetime=timedelta(hours=2), left=timedelta(minutes=59))
    make_credential(lifetime=timedelta(hours=2), left=timedelta(minutes=61))
    assert due_ids() == [due.pk]


def test_due_selection_skips_leased_backing_off_and_unrefreshable(make_credential):
    due = {"left": timedelta(minutes=1)}
    expected = [
        make_credential(**due, refresh_due_at=NOW),  # due exactly now
        make_credential(**due, lease_until=NOW - timedelta(seconds=1)),  # lease lapsed
        make_credential(**due, next_attempt_at=NOW),  # backoff over
    ]
    make_credential(**due, lease_until=NOW + timedelta(seconds=1))
    make_credential(**due, next_attempt_at=NOW + timedelta(seconds=1))
    make_credential(**due, status=OAuthCredential.Status.NEEDS_REAUTHORIZATION)
    make_credential(**due, refresh_token=None)
    make_credential(lifetime=None)  # never expires: only a 401 refreshes it
    make_credential(left=timedelta(hours=1))  # not due yet
    assert sorted(due_ids()) == sorted(c.pk for c in expected)


def test_most_urgent_first(make_credential):
    later = make_credential(left=timedelta(minutes=2))
    sooner = make_credential(left=timedelta(minutes=1))
    assert due_ids() == [sooner.pk, later.pk]


def test_the_due_selection_is_served_by_the_index(make_credential):
    for _ in range(3):
        make_credential(left=timedelta(minutes=1))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A three-row table is scanned whole unless the plan must index.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        plan = refresh.due_credentials(NOW).explain()
    assert "oauth_credential_due" in plan


def test_a_killed_worker_leaves_a_lease_that_expires(make_credential):
    credential = make_credential(left=timedelta(minutes=1))
    assert refresh.claim(credential.pk, now=NOW)  # ... and the worker dies
    assert due_ids(NOW + timedelta(seconds=refresh.LEASE_SECONDS - 1)) == []
    after = NOW + timedelta(seconds=refresh.LEASE_SECONDS + 1)
    assert due_ids(after) == [credential.pk]
    assert refresh.claim(credential.pk, now=after)


def test_sweep_schedules_rows_stored_without_a_due_time(make_credential):
    credential = make_credential(left=timedelta(minutes=1), refresh_due_at=None)
    make_credential(lifetime=None)
    batches = []
    assert refresh.sweep(enqueue=batches.append, now=NOW) == 1
    assert batches == [[credential.pk]]
    credential.refresh_from_db()
    assert credential.refresh_due_at == refresh.refresh_due_at(credential)


def test_sweep_hands_out_ids_in_batches(make_credential):
    made = [make_credential(left=timedelta(minutes=1)) for _ in range(5)]
    batches = []
    assert refresh.sweep(enqueue=batches.append, now=NOW, batch_size=2) == 5
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(sum(batches, [])) == sorted(c.pk for c in made)


def test_a_second_sweep_finds_the_credentials_reserved(make_credential):
    credential = make_credential(left=timedelta(minutes=1))
    first, second = [], []
    assert refresh.sweep(enqueue=first.extend, now=NOW) == 1
    assert refresh.sweep(enqueue=second.extend, now=NOW) == 0
    assert (first, second) == ([credential.pk], [])


def test_a_reservation_yields_to_a_refresh(make_credential):
    credential = make_credential(left=timedelta(minutes=1))
    refresh.sweep(enqueue=lambda ids: None, now=NOW)
    assert refresh.claim(credential.pk, now=NOW)  # the task, or code needing a token
    assert refresh.claim(credential.pk, now=NOW) is None  # ... but only one of them


def test_a_reservation_lapses_if_the_task_is_lost(make_credential):
    credential = make_credential(left=timedelta(minutes=1))
    refresh.sweep(enqueue=lambda ids: None, now=NOW)
    assert due_ids(NOW + timedelta(seconds=refresh.QUEUED_SECONDS - 1)) == []
    lapsed = NOW + timedelta(seconds=refresh.QUEUED_SECONDS + 1)
    assert due_ids(lapsed) == [credential.pk]


def test_a_duplicate_task_never_refreshes_twice(world, credential):
    make_due(credential)
    OAuthCredential.objects.filter(pk=credential.pk).update(refresh_due_at=None)
    queued = []
    refresh.sweep(enqueue=queued.extend)
    outcomes = [
        refresh.refresh_credential(credential_id=pk).outcome for pk in queued * 2
    ]
    assert outcomes == ["refreshed", "not_due"]
    assert len(world.requests_to("https://auth.example.com/token")) == 2

"""Refreshing OAuth credentials, safely across processes.

OAuth 2.1 rotates refresh tokens for public clients, and many authorization
servers revoke the whole grant when a used refresh token is presented again.
So no two processes may ever refresh the same credential at once. The guard
is a compare-and-set lease on the credential row (an UPDATE that only one
caller can win), which works on SQLite and PostgreSQL alike, unlike
``select_for_update`` that SQLite ignores. The token request runs outside any
transaction, and the result is saved only while the lease is still ours.

Code that needs a token *now* (a probe, a tool list) uses the same claim: if
another process is refreshing, it waits briefly for that result instead of
starting a second refresh.

Ahead of expiry, a sweep (``oauth.tasks``, run by Celery beat) finds what is
due with one indexed query on the stored ``refresh_due_at``, reserves those
rows so another sweep skips them, and hands the ids to workers. Whatever
runs twice (a beat, a task) costs at most a lost claim, never a second token
request.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mcpsettings import outbound
from oauth import client as oauth
from servers.audit import record
from servers.models import AuditEvent, McpServer

from .models import OAuthCredential

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind

# Longer than any token request may take (OAUTH_REFRESH_TIMEOUT_SECONDS),
# so a lease only expires under a refresh that is no longer running.
LEASE_SECONDS = 60
# Code that needs a token now treats it as expired this much early.
USE_SKEW = timedelta(seconds=60)
WAIT_FOR_OTHER_REFRESH_SECONDS = 10.0


class NeedsReauthorization(Exception):
    """The credential can no longer be refreshed; the user must authorize."""

    message = "Authorization expired or was revoked. Authorize again to connect."


class TokenUnavailable(Exception):
    """The token expired and refreshing failed for now; it will be retried."""

    def __init__(self, detail: str):
        self.message = (
            f"The access token expired and could not be refreshed yet ({detail}). "
            "It is retried automatically."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class RefreshResult:
    outcome: str  # "refreshed", "not_due", "busy", "needs_reauthorization", "retry"
    error: str = ""


def due_at(*, issued_at: datetime, expires_at: datetime | None) -> datetime | None:
    """When the sweep should refresh a token: a share of its lifetime before
    expiry, at least the minimum lead ahead (DESIGN.md "Refresh"). None for
    tokens that never expire: those are refreshed only on a 401."""
    if expires_at is None:
        return None
    lead = max(
        (expires_at - issued_at) * settings.OAUTH_REFRESH_LEAD_SHARE,
        timedelta(seconds=settings.OAUTH_REFRESH_MIN_LEAD_SECONDS),
    )
    return expires_at - lead


def refresh_due_at(credential: OAuthCredential) -> datetime | None:
    """``due_at`` for a stored credential, from its issue and expiry times."""
    return due_at(issued_at=credential.issued_at, expires_at=credential.expires_at)


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter, capped: retries of many
    credentials that failed together spread out instead of arriving at
    the authorization server in step."""
    rng = rng or random
    ceiling = min(
        settings.OAUTH_REFRESH_BACKOFF_MAX_SECONDS,
        settings.OAUTH_REFRESH_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0),
    )
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _is_due(credential: OAuthCredential, now: datetime) -> bool:
    if credential.next_attempt_at is not None and credential.next_attempt_at > now:
        return False  # backing off after a failure
    # The stored time is what the sweep selected on; the computed one covers
    # rows whose expiry was written without it. Either being reached is due,
    # so a sweep never keeps selecting a row its task then calls "not due".
    times = [t for t in (credential.refresh_due_at, refresh_due_at(credential)) if t]
    return bool(times) and min(times) <= now


# -- the lease --------------------------------------------------------------------

# A sweep marks what it queued with a reservation (a lease owned by
# "queued:<sweep>") so other sweeps leave those rows alone while their tasks
# wait in the broker. Unlike a lease it does not stop a refresh: the task, or
# code that needs a token now, takes it over. If the task is lost, the
# reservation lapses and a later sweep queues the credential again.
QUEUED = "queued:"
QUEUED_SECONDS = 120


def _unleased(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def claim(credential_id: int, *, now: datetime) -> str | None:
    """Take the refresh lease; return the lease id, or None if held."""
    lease = uuid.uuid4().hex
    won = (
        OAuthCredential.objects.filter(pk=credential_id)
        .filter(_unleased(now) | Q(lease_owner__startswith=QUEUED))
        .update(lease_until=now + timedelta(seconds=LEASE_SECONDS), lease_owner=lease)
    )
    return lease if won else None


def release(credential_id: int, lease: str, **changes) -> bool:
    """Write ``changes`` and drop the lease, only if it is still ours."""
    return bool(
        OAuthCredential.objects.filter(pk=credential_id, lease_owner=lease).update(
            lease_until=None, lease_owner="", **changes
        )
    )


def reserve(ids: list[int], *, now: datetime) -> list[int]:
    """Reserve those of ``ids`` that are still due and free for one sweep;
    return them, in the order given. Of two sweeps racing, each gets its own
    share (the UPDATE is a compare-and-set like ``claim``)."""
    reservation = QUEUED + uuid.uuid4().hex
    due_credentials(now).filter(pk__in=ids).update(
        lease_until=now + timedelta(seconds=QUEUED_SECONDS), lease_owner=reservation
    )
    got = set(
        OAuthCredential.objects.filter(pk__in=ids, lease_owner=reservation).values_list(
            "pk", flat=True
        )
    )
    return [pk for pk in ids if pk in got]


# -- the sweep --------------------------------------------------------------------


def due_credentials(now: datetime):
    """The sweep's one query: active, refreshable, due, not leased or queued,
    not backing off; most urgent first. Served by the (status,
    refresh_due_at) index. ``refresh_token`` is encrypted: only ``isnull``."""
    return (
        OAuthCredential.objects.filter(
            status=OAuthCredential.Status.ACTIVE,
            refresh_due_at__lte=now,
            refresh_token__isnull=False,
        )
        .filter(_unleased(now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("refresh_due_at")
    )


def schedule_unscheduled() -> int:
    """Give a due time to credentials stored without one.

    Whatever writes a token should store ``refresh_due_at`` with it; this
    catches rows that were written without (so the sweep would never see
    them), through the same index. Each row is set only while still unset
    for the same expiry, so a refresh saving meanwhile wins.
    """
    rows = OAuthCredential.objects.filter(
        status=OAuthCredential.Status.ACTIVE,
        refresh_due_at__isnull=True,
        expires_at__isnull=False,
        refresh_token__isnull=False,
    ).values_list("pk", "issued_at", "expires_at")
    fixed = 0
    for pk, issued_at, expires_at in list(rows):
        fixed += OAuthCredential.objects.filter(
            pk=pk, refresh_due_at__isnull=True, expires_at=expires_at
        ).update(refresh_due_at=due_at(issued_at=issued_at, expires_at=expires_at))
    return fixed


def sweep(
    *,
    enqueue: Callable[[list[int]], object],
    now: datetime | None = None,
    batch_size: int | None = None,
) -> int:
    """Reserve every due credential and hand the ids to ``enqueue`` batch by
    batch; return how many. A second sweep (a second beat) finds them
    reserved; should an id still be handed out twice, the second refresh
    loses the claim or finds the token fresh: never a second token request."""
    now = now or timezone.now()
    schedule_unscheduled()
    ids = list(due_credentials(now).values_list("pk", flat=True))
    size = batch_size or settings.OAUTH_REFRESH_BATCH_SIZE
    queued = 0
    for start in range(0, len(ids), size):
        reserved = reserve(ids[start : start + size], now=now)
        if reserved:
            enqueue(reserved)
            queued += len(reserved)
    return queued


# -- refreshing -------------------------------------------------------------------


def refresh_credential(
    *,
    credential_id: int,
    force: bool = False,
    http: httpx.Client | None = None,
    now: datetime | None = None,
) -> RefreshResult:
    """Refresh one credential if it is due (or ``force``), under the lease."""
    now = now or timezone.now()
    lease = claim(credential_id, now=now)
    if lease is None:
        return RefreshResult("busy")
    credential = (
        OAuthCredential.objects.select_related("registration", "server")
        # Not needed here; a server's tool list can be large.
        .defer("access_token", "server__tools", "server__auth_challenge")
        .filter(pk=credential_id)
        .first()
    )
    if credential is None:
        return RefreshResult("not_due")
    if credential.status != OAuthCredential.Status.ACTIVE or not (
        force or _is_due(credential, now)
    ):
        release(credential_id, lease)
        return RefreshResult("not_due")
    if not credential.refresh_token:
        return _needs_reauthorization(credential, lease, "no refresh token")
    try:
        tokens = oauth.refresh(
            http or token_client(),
            token_endpoint=credential.token_endpoint,
            client=_client(credential),
            refresh_token=credential.refresh_token,
            resource=credential.resource,
            now=timezone.now(),
        )
    except oauth.InvalidGrant as exc:
        return _needs_reauthorization(credential, lease, exc.error or "invalid_grant")
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        return _retry_later(credential, lease, exc, now=now)
    issued_at = timezone.now()
    saved = release(
        credential_id,
        lease,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        issued_at=issued_at,
        refresh_due_at=due_at(issued_at=issued_at, expires_at=tokens.expires_at),
        scope=tokens.scope or credential.scope,
        token_type=tokens.token_type or "Bearer",
        attempts=0,
        next_attempt_at=None,
        last_error="",
        last_refreshed_at=issued_at,
    )
    if not saved:
        # The lease expired mid-request and someone else took over; their
        # result stands. Ours is dropped (the AS rotated either way).
        logger.warning(
            "Refresh result of credential %s discarded: lease lost", credential_id
        )
        return RefreshResult("busy")
    record(Kind.REFRESH_OK, server=credential.server)
    return RefreshResult("refreshed")


_shared_client: tuple[tuple, httpx.Client] | None = None
_shared_client_lock = threading.Lock()


def token_client() -> httpx.Client:
    """The guarded client for token requests: one per process, reused.

    Building a client loads the CA bundle (about 50 ms, more than a whole
    refresh costs), and reuse keeps connections to token endpoints open.
    Keyed on the process, because a forked worker must not share its
    parent's sockets, and on what shapes the client, so a changed setting or
    a substituted factory (tests) gets a fresh one.
    """
    global _shared_client
    timeout = settings.OAUTH_REFRESH_TIMEOUT_SECONDS
    key = (
        os.getpid(),
        outbound.make_client,
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
        timeout,
    )
    with _shared_client_lock:
        if _shared_client is None or _shared_client[0] != key:
            defaults = outbound.policy_from_settings()
            client = outbound.make_client(
                connect_timeout=min(defaults.connect_timeout, timeout),
                read_timeout=min(defaults.read_timeout, timeout),
                total_timeout=min(defaults.total_timeout, timeout),
            )
            _shared_client = (key, client)
        return _shared_client[1]


def _client(credential: OAuthCredential) -> oauth.ClientRegistration:
    from .services import as_client

    return as_client(credential.registration)


def _needs_reauthorization(
    credential: OAuthCredential, lease: str, error: str
) -> RefreshResult:
    release(
        credential.pk,
        lease,
        status=OAuthCredential.Status.NEEDS_REAUTHORIZATION,
        last_error=f"The authorization server refused the refresh ({error}).",
        next_attempt_at=None,
    )
    McpServer.objects.filter(pk=credential.server_id).update(
        status=McpServer.Status.NEEDS_AUTHORIZATION,
        status_message=NeedsReauthorization.message,
    )
    record(
        Kind.NEEDS_REAUTHORIZATION, server=credential.server, detail={"error": error}
    )
    return RefreshResult("needs_reauthorization", error)


def _retry_later(
    credential: OAuthCredential, lease: str, exc: Exception, *, now: datetime
) -> RefreshResult:
    attempts = credential.attempts + 1
    message = getattr(exc, "message", None) or outbound.describe(exc)
    release(
        credential.pk,
        lease,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)),
        last_error=message[:500],
    )
    record(
        Kind.REFRESH_FAILED,
        server=credential.server,
        detail={"error": type(exc).__name__, "attempts": attempts},
    )
    return RefreshResult("retry", message)


# -- tokens for use now -----------------------------------------------------------


def _usable(credential: OAuthCredential, now: datetime) -> bool:
    return credential.expires_at is None or credential.expires_at - USE_SKEW > now


def access_token_for(
    server: McpServer, *, http: httpx.Client | None = None, force_refresh: bool = False
) -> str | None:
    """A valid access token for ``server``, refreshing first when needed.

    Returns None when the server has no OAuth credential. Raises
    NeedsReauthorization when the credential cannot be refreshed, and
    TokenUnavailable when refreshing failed for a reason that may pass.
    """
    deadline = time.monotonic() + WAIT_FOR_OTHER_REFRESH_SECONDS
    while True:
        credential = OAuthCredential.objects.filter(server=server).first()
        if credential is None:
            return None
        if credential.status != OAuthCredential.Status.ACTIVE:
            raise NeedsReauthorization()
        now = timezone.now()
        if not force_refresh and _usable(credential, now):
            return credential.access_token
        if not credential.refresh_token:
            if force_refresh or not _usable(credential, now):
                raise NeedsReauthorization()
            return credential.access_token
        result = refresh_credential(credential_id=credential.pk, force=True, http=http)
        if result.outcome == "refreshed":
            return OAuthCredential.objects.get(pk=credential.pk).access_token
        if result.outcome == "needs_reauthorization":
            raise NeedsReauthorization()
        if result.outcome == "retry":
            if _usable(credential, timezone.now()):
                return credential.access_token
            raise TokenUnavailable(result.error)
        # Another process holds the lease: wait for its result.
        if time.monotonic() > deadline:
            return credential.access_token if _usable(credential, now) else None
        time.sleep(0.2)
        force_refresh = False

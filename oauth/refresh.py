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
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.db.models import Q
from django.utils import timezone

from mcpsettings import outbound
from oauth import client as oauth
from servers.audit import record
from servers.models import AuditEvent, McpServer

from .models import OAuthCredential

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind

LEASE_SECONDS = 60
# Refresh when this share of the lifetime is left, but never later than
# MIN_LEAD before expiry (DESIGN.md "Refresh").
LEAD_SHARE = 0.25
MIN_LEAD = timedelta(minutes=5)
# Code that needs a token now treats it as expired this much early.
USE_SKEW = timedelta(seconds=60)
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
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


def refresh_due_at(credential: OAuthCredential) -> datetime | None:
    """When the sweep should refresh: a share of the lifetime before expiry,
    at least MIN_LEAD ahead. None for tokens that never expire."""
    if credential.expires_at is None:
        return None
    lifetime = credential.expires_at - credential.issued_at
    lead = max(lifetime * LEAD_SHARE, MIN_LEAD)
    return credential.expires_at - lead


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter, capped."""
    rng = rng or random
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


# -- the lease --------------------------------------------------------------------


def claim(credential_id: int, *, now: datetime) -> str | None:
    """Take the refresh lease; return the lease id, or None if held."""
    lease = uuid.uuid4().hex
    won = (
        OAuthCredential.objects.filter(pk=credential_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
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
        .filter(pk=credential_id)
        .first()
    )
    if credential is None:
        return RefreshResult("not_due")
    due = refresh_due_at(credential)
    if credential.status != OAuthCredential.Status.ACTIVE or not (
        force or (due is not None and due <= now)
    ):
        release(credential_id, lease)
        return RefreshResult("not_due")
    if not credential.refresh_token:
        return _needs_reauthorization(credential, lease, "no refresh token")
    try:
        tokens = oauth.refresh(
            http or outbound.make_client(),
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
    saved = release(
        credential_id,
        lease,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        issued_at=timezone.now(),
        scope=tokens.scope or credential.scope,
        token_type=tokens.token_type or "Bearer",
        attempts=0,
        next_attempt_at=None,
        last_error="",
        last_refreshed_at=timezone.now(),
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

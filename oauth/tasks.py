"""Celery adapters for token refresh; the rules live in ``oauth.refresh``.

Beat runs ``refresh_due_credentials`` every OAUTH_REFRESH_SWEEP_SECONDS. It
publishes one ``refresh_credential_task`` per due credential. Production runs
exactly one beat; a second one is harmless, because a sweep reserves what it
queues and every refresh claims its credential's lease first. The cache lock
below only spares the second beat the work.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from . import refresh

SWEEP_LOCK_KEY = "oauth:refresh-sweep"


@shared_task
def refresh_due_credentials() -> int:
    """Publish a refresh task for every due credential; return how many."""
    # Held (never released) for most of an interval, so of two beats ticking
    # out of phase only one sweeps per interval. Shared when the cache is
    # Redis; per process otherwise, where the lease alone keeps it safe.
    hold = max(1, int(settings.OAUTH_REFRESH_SWEEP_SECONDS * 0.8))
    if not cache.add(SWEEP_LOCK_KEY, "held", timeout=hold):
        return 0
    return refresh.sweep(enqueue=_publish)


def _publish(ids: list[int]) -> None:
    # One broker connection per batch instead of one per message.
    with refresh_credential_task.app.producer_or_acquire() as producer:
        for credential_id in ids:
            refresh_credential_task.apply_async((credential_id,), producer=producer)


@shared_task
def refresh_credential_task(credential_id: int, force: bool = False) -> str:
    """Refresh one credential if it is still due (or ``force``) under its
    lease; return the outcome. Failures are scheduled in the row
    (``next_attempt_at``) and picked up by a later sweep, not retried here."""
    return refresh.refresh_credential(credential_id=credential_id, force=force).outcome

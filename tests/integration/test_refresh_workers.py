"""Background refresh under real concurrency, against a strict token endpoint.

200 credentials fall due at once, three rounds in a row, then three more
while a third of the token requests fail (503, or a hang past the client's
timeout). The token endpoint (``token_endpoint.py``) rotates refresh tokens
and records any reuse. After every round each credential must have been
refreshed exactly once, its stored refresh token must be the endpoint's
current one (none lost), and nothing may need re-authorization.

Two harnesses run the same rounds:

* real processes: two ``celery worker`` processes and two ``celery beat``
  processes (one is expected in production, two must be harmless) on a
  queue of their own; on PostgreSQL + Redis in the CI's second pass, and on
  the embedded default (the SQLite file, the filesystem broker) otherwise;
* threads on whatever database the suite runs on (SQLite by default): six
  worker threads and two sweeping "beats".
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from oauth import refresh, tasks
from oauth.models import ClientRegistration, OAuthCredential
from servers.models import AuditEvent, McpServer
from tests.integration.token_endpoint import CLIENT_ID, CLIENT_SECRET, TokenEndpoint

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CREDENTIALS = 200
ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
# The broker database the worker processes use, apart from the suite's own.
REDIS_DB = int(os.environ.get("REFRESH_TEST_REDIS_DB", "13"))


class Fleet:
    """The credentials, and what the token endpoint knows about them."""

    def __init__(
        self, endpoint: TokenEndpoint, owner, count: int = CREDENTIALS
    ) -> None:
        self.endpoint = endpoint
        registration = ClientRegistration.objects.create(
            issuer=endpoint.url.removesuffix("/token"),
            redirect_uri="http://testserver/oauth/callback",
            kind=ClientRegistration.Kind.PRE_REGISTERED,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_endpoint_auth_method="client_secret_basic",
        )
        servers = McpServer.objects.bulk_create(
            McpServer(
                owner=owner,
                name=f"server {i}",
                url=f"https://mcp{i}.example.com/mcp",
                auth_kind=McpServer.AuthKind.OAUTH,
            )
            for i in range(count)
        )
        now = timezone.now()
        credentials = OAuthCredential.objects.bulk_create(
            OAuthCredential(
                server=server,
                registration=registration,
                access_token=f"at.{i}.0",
                refresh_token=endpoint.register(str(i), resource=server.url),
                issued_at=now,
                expires_at=now + timedelta(hours=1),
                refresh_due_at=now + timedelta(minutes=45),
                issuer=registration.issuer,
                token_endpoint=endpoint.url,
                resource=server.url,
            )
            for i, server in enumerate(servers)
        )
        self.keys = {credential.pk: str(i) for i, credential in enumerate(credentials)}

    def make_all_due(self) -> None:
        now = timezone.now()
        OAuthCredential.objects.update(
            issued_at=now - timedelta(minutes=55),
            expires_at=now + timedelta(minutes=5),
            refresh_due_at=now,
        )

    def round_done(self, number: int) -> bool:
        counts = self.endpoint.refreshes
        twice = [key for key in self.keys.values() if counts[key] > number]
        assert not twice, f"refreshed twice in round {number}: {twice[:10]}"
        if any(counts[key] < number for key in self.keys.values()):
            return False
        # Refreshed at the endpoint is not enough: the result must be saved.
        stored = dict(OAuthCredential.objects.values_list("pk", "refresh_token"))
        return all(
            stored[pk] == self.endpoint.current[key] for pk, key in self.keys.items()
        )

    def run_round(self, number: int, *, timeout: float, logs=lambda: "") -> float:
        started = time.monotonic()
        self.make_all_due()
        while not self.round_done(number):
            if time.monotonic() - started > timeout:
                missing = [
                    k for k in self.keys.values() if self.endpoint.refreshes[k] < number
                ]
                pytest.fail(
                    f"round {number} unfinished after {timeout} s: {len(missing)} "
                    f"credentials not refreshed, endpoint calls {self.endpoint.calls}, "
                    f"reuses {self.endpoint.reuses[:5]}\n{logs()}"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def assert_clean(self, rounds: int, *, settle: float) -> None:
        time.sleep(settle)  # a few more sweeps: nothing may happen
        assert self.endpoint.reuses == []
        assert self.endpoint.problems == []
        counts = {self.endpoint.refreshes[key] for key in self.keys.values()}
        assert counts == {rounds}
        statuses = set(OAuthCredential.objects.values_list("status", flat=True))
        assert statuses == {OAuthCredential.Status.ACTIVE}
        assert not OAuthCredential.objects.filter(lease_until__isnull=False).exists()
        assert not AuditEvent.objects.filter(
            kind=AuditEvent.Kind.NEEDS_REAUTHORIZATION
        ).exists()


def run_rounds(fleet: Fleet, *, hang: float, settle: float, logs=lambda: "") -> None:
    endpoint = fleet.endpoint
    timings = [fleet.run_round(1, timeout=60, logs=logs)]
    timings += [fleet.run_round(n, timeout=30, logs=logs) for n in (2, 3)]
    fleet.assert_clean(3, settle=settle)

    endpoint.fail_every, endpoint.hang_seconds = 3, hang
    timings += [fleet.run_round(n, timeout=45, logs=logs) for n in (4, 5, 6)]
    fleet.assert_clean(6, settle=settle)
    assert endpoint.failures >= CREDENTIALS  # a third of over 600 calls
    retried = AuditEvent.objects.filter(kind=AuditEvent.Kind.REFRESH_FAILED).count()
    assert retried >= endpoint.failures  # each failure was seen and retried
    assert set(OAuthCredential.objects.values_list("attempts", flat=True)) == {0}
    print("round times (s):", " ".join(f"{t:.1f}" for t in timings))


# -- real worker and beat processes ----------------------------------------------


def _redis_broker_url() -> str:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.fail(
            "On PostgreSQL this test runs real Celery workers and needs "
            "CELERY_BROKER_URL=redis://…; it is never skipped there."
        )
    parts = urlsplit(broker)
    url = urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {parts.netloc} is not reachable: {exc}")
    return url


def forget_queue(broker_url: str, queue: str) -> None:
    """Delete what a run left on the broker (the queue and its bindings)."""
    import redis

    client = redis.Redis.from_url(broker_url)
    keys = list(client.scan_iter(match=f"*{queue}*"))
    if keys:
        client.delete(*keys)


def _test_database_url() -> str:
    # The workers must use the database pytest-django created for this run.
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class Processes:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mcpsettings", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so stopping it stops its pool children.
            start_new_session=True,
        )
        self.started.append((name, process))

    def logs(self) -> str:
        tails = []
        for name, process in self.started:
            text = (self.tmp_path / f"{name}.log").read_text(errors="replace")
            tails.append(f"--- {name} (exit {process.poll()}) ---\n{text[-3000:]}")
        return "\n".join(tails)

    def stop(self) -> None:
        for _, process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_worker_processes_refresh_each_credential_once_per_round(user, tmp_path):
    """PostgreSQL + Redis in the CI's second pass; on the first pass the
    embedded default: the SQLite file and the filesystem broker."""
    run = uuid.uuid4().hex[:8]
    if ON_POSTGRES:
        database_url, broker_url = _test_database_url(), _redis_broker_url()
    else:
        database_url = f"sqlite:///{connection.settings_dict['NAME']}"
        broker_url = "filesystem://"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REFRESH_TEST_QUEUE": f"refresh-test-{run}",
        "OAUTH_REFRESH_SWEEP_SECONDS": "1",
        "REFRESH_TEST_TIMEOUT_SECONDS": "1",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "loopback",
        "MCPSETTINGS_VAR_DIR": str(tmp_path),
    }
    worker = ["worker", "-Q", env["REFRESH_TEST_QUEUE"], "-l", "WARNING"]
    worker += ["--concurrency", "8", "--without-gossip", "--without-mingle"]
    with TokenEndpoint() as endpoint:
        fleet = Fleet(endpoint, user)
        processes = Processes(tmp_path, env)
        try:
            for n in (1, 2):
                processes.start(f"worker{n}", *worker, "-n", f"w{n}-{run}@%h")
                schedule = str(tmp_path / f"beat{n}-schedule")
                processes.start(f"beat{n}", "beat", "-l", "WARNING", "-s", schedule)
            run_rounds(fleet, hang=1.5, settle=2.5, logs=processes.logs)
        finally:
            processes.stop()
            if ON_POSTGRES:
                forget_queue(env["CELERY_BROKER_URL"], env["REFRESH_TEST_QUEUE"])


# -- threads, on the suite's database (SQLite by default) ------------------------


def test_threads_refresh_each_credential_once_per_round(user, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "loopback"
    settings.OAUTH_REFRESH_BACKOFF_BASE_SECONDS = 0.1
    settings.OAUTH_REFRESH_BACKOFF_MAX_SECONDS = 0.5
    settings.OAUTH_REFRESH_TIMEOUT_SECONDS = 0.5
    work: queue.Queue[int | None] = queue.Queue()
    stop = threading.Event()

    def worker() -> None:
        try:
            while (credential_id := work.get()) is not None:
                tasks.refresh_credential_task(credential_id)
        finally:
            connection.close()

    def beat() -> None:
        # No sweep lock here: two sweeps racing must be harmless on their own.
        try:
            while not stop.wait(0.5):
                refresh.sweep(enqueue=lambda ids: [work.put(pk) for pk in ids])
        finally:
            connection.close()

    with TokenEndpoint() as endpoint:
        fleet = Fleet(endpoint, user)
        threads = [threading.Thread(target=worker) for _ in range(6)]
        threads += [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            run_rounds(fleet, hang=0.75, settle=1.2)
        finally:
            stop.set()
            for _ in range(6):
                work.put(None)
            for thread in threads:
                thread.join()

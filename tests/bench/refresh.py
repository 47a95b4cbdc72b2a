"""Benchmark: background token refresh at scale, on PostgreSQL + Redis.

What it measures. 10,000 credentials (``--credentials``) fall due at the same
moment T0, and one sweep is published at T0 (what the beat does every
minute; starting it by hand keeps the beat's phase out of the numbers). Two
real ``celery worker`` processes (``--workers``; ``--pool`` prefork or
threads, ``--concurrency`` 8 each) reserve, claim, refresh and save them
against the strict token endpoint of the integration tests
(``tests/integration/token_endpoint.py``: rotates refresh tokens, records
any reuse) on 127.0.0.1, which sleeps ``--latency`` ms (default 20) in every
answer.

Reported: refreshes per second (T0 to the last saved refresh); p50 / p99 lag
between "due" (T0) and "refreshed" (the saved ``last_refreshed_at``);
duplicate token-endpoint calls (calls beyond one per credential, plus any
refresh token presented twice; must be 0); worker CPU per refresh; and the
ratio to a raw loop that only POSTs to the token endpoint and runs one
UPDATE per credential, with the same processes and threads (``--workers`` x
``--concurrency``). Target: all refreshed in under a minute on a 2-core
machine, zero duplicates. Timings are printed, never asserted; the exit code
is 0 unless something crashes or a refresh went missing or was duplicated.

``--db-reuse-max N`` sets CELERY_DB_REUSE_MAX in the workers: without it,
Celery's Django fixup closes the database connection around every task.

It uses a database of its own, ``mcpsettings_bench_refresh`` on the
PostgreSQL server of DATABASE_URL (created, then dropped at the end), and a
queue of its own on Redis DB 13 (``--redis-db``) of CELERY_BROKER_URL's
server::

    .venv/bin/python -m tests.bench.refresh
    .venv/bin/python -m tests.bench.refresh --pool threads --db-reuse-max 1000
    .venv/bin/python -m tests.bench.refresh --credentials 2000 --quick
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
BENCH_DATABASE = "mcpsettings_bench_refresh"


def configure(args: argparse.Namespace) -> dict[str, str]:
    """Point this process (and the workers) at the bench database and queue."""
    database = urlsplit(
        os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/x"
    )
    if not database.scheme.startswith("postgres"):
        sys.exit("The refresh benchmark needs PostgreSQL (DATABASE_URL=postgres://…).")
    broker = urlsplit(os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0")
    if broker.scheme != "redis":
        sys.exit("The refresh benchmark needs Redis (CELERY_BROKER_URL=redis://…).")
    redis_url = urlunsplit(broker._replace(path=f"/{args.redis_db}"))
    run = uuid.uuid4().hex[:8]
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
        "DATABASE_URL": urlunsplit(database._replace(path=f"/{BENCH_DATABASE}")),
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "REFRESH_TEST_QUEUE": f"bench-refresh-{run}",
        "REFRESH_TEST_TIMEOUT_SECONDS": "20",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "loopback",
        "LOG_LEVEL": "WARNING",
    }
    if args.db_reuse_max:
        env["REFRESH_TEST_DB_REUSE_MAX"] = str(args.db_reuse_max)
    os.environ.update(env)
    return {**os.environ, **env}


def _admin(*statements: str) -> None:
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def create_database() -> None:
    _admin(
        f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)',
        f'CREATE DATABASE "{BENCH_DATABASE}"',
    )


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')


# -- the Celery workers --------------------------------------------------------


def start_workers(args, env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    workers = []
    for n in range(1, args.workers + 1):
        log = (logs / f"worker{n}.log").open("w")
        command = [sys.executable, "-m", "celery", "-A", "mcpsettings", "worker"]
        command += ["-Q", env["REFRESH_TEST_QUEUE"], "-n", f"bench{n}@%h"]
        command += ["--pool", args.pool, "--concurrency", str(args.concurrency)]
        command += ["--without-gossip", "--without-mingle", "-l", "WARNING"]
        workers.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def wait_until_ready(workers: list[subprocess.Popen], count: int) -> None:
    from mcpsettings.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(worker.poll() is not None for worker in workers):
            sys.exit("A worker exited during start-up; see its log.")
        if len(app.control.ping(timeout=1.0)) >= count:
            return
    sys.exit("The workers did not answer a ping within 60 s.")


def stop_workers(workers: list[subprocess.Popen]) -> None:
    import signal

    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


# -- the raw loop ----------------------------------------------------------------


def raw_process(work: list[tuple[int, str]], threads: int, url: str, auth: str, go):
    """One process of the raw loop: POST, then one UPDATE, per credential."""
    import django
    import httpx

    django.setup()
    from django.db import connection

    from oauth.models import OAuthCredential

    chunks = [work[i::threads] for i in range(threads)]
    pk_key = {pk: token.split(".")[1] for pk, token in work}
    failed: list[BaseException] = []

    def run(chunk: list[tuple[int, str]]) -> None:
        try:
            with httpx.Client(headers={"Authorization": auth}) as http:
                for pk, refresh_token in chunk:
                    resource = f"https://mcp{pk_key[pk]}.example.com/mcp"
                    form = {
                        "grant_type": "refresh_token",
                        "refresh_token": refresh_token,
                        "resource": resource,
                    }
                    answer = http.post(url, data=form).raise_for_status().json()
                    OAuthCredential.objects.filter(pk=pk).update(
                        access_token=answer["access_token"],
                        refresh_token=answer["refresh_token"],
                    )
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    go.wait()  # started (and Django set up) in every process
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    sys.exit(1 if failed else 0)


def run_raw_loop(args, endpoint) -> float:
    from oauth.models import OAuthCredential

    work = list(OAuthCredential.objects.values_list("pk", "refresh_token"))
    # Spawned, not forked: a forked child would inherit (and on start-up try
    # to close) this process's Redis connections.
    context = multiprocessing.get_context("spawn")
    go = context.Barrier(args.workers + 1)
    auth = endpoint.basic_auth
    processes = [
        context.Process(
            target=raw_process,
            args=(work[n :: args.workers], args.concurrency, endpoint.url, auth, go),
        )
        for n in range(args.workers)
    ]
    for process in processes:
        process.start()
    go.wait()
    started = time.monotonic()
    for process in processes:
        process.join()
    elapsed = time.monotonic() - started
    if any(process.exitcode for process in processes):
        sys.exit("The raw loop crashed.")
    return elapsed


# -- main ------------------------------------------------------------------------


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.refresh", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=20.0, help="ms (20)")
    parser.add_argument("--workers", type=int, default=2, help="processes (2)")
    parser.add_argument("--concurrency", type=int, default=8, help="per worker (8)")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument(
        "--db-reuse-max",
        type=int,
        default=0,
        help="set CELERY_DB_REUSE_MAX in the workers (default: as in settings)",
    )
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=300.0, help="s (300)")
    parser.add_argument("--quick", action="store_true", help="skip the raw loop")
    args = parser.parse_args(argv)

    env = configure(args)
    create_database()
    import django

    django.setup()
    try:
        return run(args, env)
    finally:
        drop_database()


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command

    from oauth import tasks
    from oauth.models import OAuthCredential
    from tests.integration.test_refresh_workers import Fleet, forget_queue
    from tests.integration.token_endpoint import TokenEndpoint

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{env['REFRESH_TEST_QUEUE']}"
    logs.mkdir(parents=True, exist_ok=True)

    with TokenEndpoint(latency=args.latency / 1000) as endpoint:
        print(f"Creating {args.credentials} credentials …", flush=True)
        fleet = Fleet(endpoint, owner, count=args.credentials)
        own_cpu = _cpu(resource.RUSAGE_SELF)
        workers = start_workers(args, env, logs)
        try:
            wait_until_ready(workers, args.workers)
            cache.delete(tasks.SWEEP_LOCK_KEY)
            fleet.make_all_due()
            t0 = OAuthCredential.objects.values_list("refresh_due_at", flat=True)[0]
            tasks.refresh_due_credentials.delay()
            print("Refreshing …", flush=True)
            deadline = time.monotonic() + args.timeout
            done = 0
            while done < args.credentials and time.monotonic() < deadline:
                time.sleep(0.5)
                done = OAuthCredential.objects.filter(last_refreshed_at__gte=t0).count()
        finally:
            stop_workers(workers)
            forget_queue(env["CELERY_BROKER_URL"], env["REFRESH_TEST_QUEUE"])
        worker_cpu = _cpu(resource.RUSAGE_CHILDREN)
        own_cpu = _cpu(resource.RUSAGE_SELF) - own_cpu
        refreshed = list(
            OAuthCredential.objects.filter(last_refreshed_at__gte=t0).values_list(
                "last_refreshed_at", flat=True
            )
        )
        lags = [(at - t0).total_seconds() for at in refreshed]
        elapsed = max(lags) if lags else float("nan")
        duplicates = (endpoint.calls - len(refreshed)) + len(endpoint.reuses)
        twice = sum(1 for count in endpoint.refreshes.values() if count > 1)
        print(f"Refreshed {len(refreshed)} in {elapsed:.1f} s.", flush=True)
        if not args.quick:
            print("Raw loop …", flush=True)
        raw = None if args.quick else run_raw_loop(args, endpoint)

    slots = f"{args.workers} x {args.concurrency} ({args.pool})"
    if args.db_reuse_max:
        slots += f", CELERY_DB_REUSE_MAX={args.db_reuse_max}"
    ours_rate = len(refreshed) / elapsed if lags else 0.0
    per = max(len(refreshed), 1) / 1000
    p50 = f"{statistics.median(lags):.1f} s" if lags else "-"
    p99 = f"{percentile(lags, 0.99):.1f} s" if lags else "-"
    print()
    print(
        f"Background refresh: {args.credentials} credentials due at once, "
        f"{args.latency:g} ms token endpoint, workers {slots}"
    )
    rows = [
        ("refreshed", f"{len(refreshed)} / {args.credentials}"),
        ("time to refresh all", f"{elapsed:.1f} s (target < 60 s)"),
        ("refreshes per second", f"{ours_rate:.0f}"),
        ("lag due -> refreshed p50", p50),
        ("lag due -> refreshed p99", p99),
        ("duplicate token-endpoint calls", f"{duplicates} (must be 0)"),
        ("credentials refreshed twice", f"{twice} (must be 0)"),
        (
            "CPU per refresh",
            f"workers {worker_cpu / per:.1f} ms (incl. start-up), "
            f"token endpoint + this script {own_cpu / per:.1f} ms",
        ),
    ]
    if raw is not None:
        raw_rate = args.credentials / raw
        rows += [
            ("raw loop (POST + 1 UPDATE)", f"{raw:.1f} s, {raw_rate:.0f} per second"),
            ("ours / raw throughput", f"{ours_rate / raw_rate:.2f}"),
        ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"  worker logs: {logs}")
    return 0 if len(refreshed) == args.credentials and not duplicates else 1


if __name__ == "__main__":
    sys.exit(main())

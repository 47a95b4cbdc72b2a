"""Benchmark: the settings page's render cost and the Add dialog's probe.

What it measures.

1. Rendering ``GET /servers/`` through Django's test client, signed in as a
   user with 10 and with 500 servers. The rows are written directly: a mix
   of auth kinds (none, static token, OAuth with a credential, OAuth waiting
   for authorization), statuses, enabled/disabled, tools on most, and a few
   credentials whose refresh failed (the card's retry line). Reported per
   size: database queries per render (``CaptureQueriesContext``; they must
   not grow with the number of servers, so the two sizes must match, and a
   mismatch is flagged) and the median wall time of ``--renders`` renders.
2. The probe behind the Add dialog against a local official-SDK MCP server
   (``tests.peers.mcp_server`` with ``--tools 5``, 9 tools in all), median of
   ``--probes`` round trips, each with a new HTTP client and connection:

   a) ours as the dialog runs it: ``servers.probing.probe_url`` (URL rules,
      the guarded outbound client, initialize → initialized → tools/list →
      DELETE);
   b) ours without the guard: ``servers.mcp_client.probe`` over a plain
      ``httpx.Client(trust_env=False)``;
   c) the official ``mcp`` SDK client: ``streamable_http_client`` +
      ``ClientSession`` (initialize + list_tools, DELETE on close).

   All three must list the same tools; the ratio is against the SDK.

Self-contained: Django runs on ``tests.settings`` with a throwaway test
database created and dropped by Django's test database machinery (SQLite in
the temp folder unless ``DATABASE_URL`` says otherwise); nothing under
``var/`` is touched. Numbers are printed, never asserted; the exit code is 0
unless something crashes.

Run::

    .venv/bin/python -m tests.bench.settings_page              # 20 renders, 15 probes
    .venv/bin/python -m tests.bench.settings_page --quick      # smoke test
    .venv/bin/python -m tests.bench.settings_page --show-queries
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

SIZES = (10, 500)
TOOLS_PER_SERVER = 6
ISSUER = "https://auth.example.com"


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


# --- data ------------------------------------------------------------------------


def seed(user, count: int) -> None:
    """``count`` servers for ``user``, written directly, in bulk."""
    from django.conf import settings
    from django.utils import timezone

    from oauth.models import ClientRegistration, OAuthCredential
    from servers.models import McpServer, StaticToken

    Status, Kind = McpServer.Status, McpServer.AuthKind
    now = timezone.now()
    registration, _ = ClientRegistration.objects.get_or_create(
        issuer=ISSUER,
        redirect_uri=settings.OAUTH_REDIRECT_URI,
        defaults={"kind": ClientRegistration.Kind.DCR, "client_id": "bench-client"},
    )
    tools = [
        {"name": f"tool_{n}", "title": "", "description": f"Does thing {n}. " * 8}
        for n in range(TOOLS_PER_SERVER)
    ]
    # (auth kind, status, credential?, tools?)
    layouts = [
        (Kind.NONE, Status.CONNECTED, False, True),
        (Kind.BEARER, Status.CONNECTED, False, True),
        (Kind.OAUTH, Status.CONNECTED, True, True),
        (Kind.OAUTH, Status.NEEDS_AUTHORIZATION, False, False),
        (Kind.BEARER, Status.TOKEN_REJECTED, False, True),
        (Kind.NONE, Status.UNREACHABLE, False, False),
        (Kind.OAUTH, Status.CONNECTED, True, True),  # refresh failing, see below
        (Kind.NONE, Status.TOKEN_ONLY, False, False),
    ]
    servers, statics, credentials = [], [], []
    for i in range(count):
        kind, status, has_credential, has_tools = layouts[i % len(layouts)]
        server = McpServer(
            owner=user,
            name=f"server-{i:04d}",
            url=f"https://mcp{i}.example.com/mcp",
            auth_kind=kind,
            status=status,
            status_message=f"Status of server {i}.",
            tools=tools if has_tools else [],
            enabled=i % 5 != 4,
            last_checked_at=now,
        )
        servers.append(server)
        if kind == Kind.BEARER:
            statics.append(StaticToken(server=server, token=f"static-token-{i}"))
        if has_credential:
            failing = i % len(layouts) == 6
            credentials.append(
                OAuthCredential(
                    server=server,
                    registration=registration,
                    access_token=f"access-{i}",
                    refresh_token=f"refresh-{i}",
                    expires_at=now + timedelta(hours=1),
                    issued_at=now,
                    refresh_due_at=now + timedelta(minutes=45),
                    scope="mcp:tools",
                    issuer=ISSUER,
                    token_endpoint=f"{ISSUER}/token",
                    resource=server.url,
                    attempts=2 if failing else 0,
                    last_error="The authorization server did not answer."
                    if failing
                    else "",
                    next_attempt_at=now + timedelta(minutes=5) if failing else None,
                )
            )
    McpServer.objects.bulk_create(servers)
    StaticToken.objects.bulk_create(statics)
    OAuthCredential.objects.bulk_create(credentials)


# --- 1. rendering ----------------------------------------------------------------


def bench_render(count: int, renders: int, *, show_queries: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    user = get_user_model().objects.create_user(username=f"bench-{count}")
    seed(user, count)
    client = Client()
    client.force_login(user)
    url = reverse("servers:list")

    warm = client.get(url)  # templates compiled, session and caches warm
    assert warm.status_code == 200, warm.status_code
    cards = warm.content.decode().count('<li class="card')
    assert cards == count, f"{cards} cards rendered for {count} servers"

    times, queries, last = [], [], []
    for _ in range(renders):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
        assert response.status_code == 200
        queries.append(len(captured))
        last = captured.captured_queries
    if show_queries:
        print(f"\nQueries of one render with {count} servers:")
        for n, query in enumerate(last, 1):
            print(f"  {n}. {query['sql'][:300]}")
    return {
        "servers": count,
        "queries": sorted(set(queries)),
        "median_ms": statistics.median(times) * 1000,
        "min_ms": min(times) * 1000,
        "kib": len(response.content) / 1024,
    }


# --- 2. probing ------------------------------------------------------------------


def ours_dialog(user, url: str) -> Callable[[], list[str]]:
    from django.core.cache import cache

    from servers.probing import probe_url

    def run() -> list[str]:
        report = probe_url(user=user, url=url, transport="auto", token="")
        assert report.outcome == "connected", (report.outcome, report.message)
        return list(report.tools)

    def before() -> None:
        cache.clear()  # the dialog's rate limit (30 a minute) is not measured

    run.before = before
    return run


def ours_plain(url: str) -> Callable[[], list[str]]:
    import httpx

    from servers.mcp_client import probe

    def run() -> list[str]:
        # No proxy or netrc lookups (~6 ms here), like the guarded client,
        # whose own transport keeps httpx from mounting proxies.
        with httpx.Client(timeout=10, trust_env=False) as http:
            result = probe(http, url, timeout=10)
        assert result.ok, result.message
        return [tool.name for tool in result.tools]

    return run


def sdk(url: str, loop: asyncio.AbstractEventLoop) -> Callable[[], list[str]]:
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def list_tools() -> list[str]:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.list_tools()
            return [tool.name for tool in result.tools]

    def run() -> list[str]:
        return loop.run_until_complete(list_tools())

    return run


def bench_probe(probes: int) -> tuple[list[dict], list[str]]:
    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings

    from tests.peers.mcp_server import start_mcp_server

    user = get_user_model().objects.create_user(username="bench-probe")
    loop = asyncio.new_event_loop()
    try:
        with (
            start_mcp_server(tools=5) as url,
            override_settings(OUTBOUND_ALLOW_PRIVATE_NETWORKS="loopback"),
        ):
            clients = {
                "ours: servers.probing.probe_url": ours_dialog(user, url),
                "ours: mcp_client.probe, plain httpx": ours_plain(url),
                "SDK: streamable_http_client + ClientSession": sdk(url, loop),
            }
            times: dict[str, list[float]] = {name: [] for name in clients}
            tools: dict[str, list[str]] = {}
            for name, run in clients.items():  # warm-up: imports, first connection
                getattr(run, "before", lambda: None)()
                tools[name] = run()
            for _ in range(probes):  # interleaved, so drift hits all alike
                for name, run in clients.items():
                    getattr(run, "before", lambda: None)()
                    start = time.perf_counter()
                    names = run()
                    times[name].append(time.perf_counter() - start)
                    assert names == tools[name]
    finally:
        loop.close()
    reference = statistics.median(times["SDK: streamable_http_client + ClientSession"])
    rows = [
        {
            "client": name,
            "median_ms": statistics.median(values) * 1000,
            "min_ms": min(values) * 1000,
            "ratio": statistics.median(values) / reference,
            "tools": len(tools[name]),
        }
        for name, values in times.items()
    ]
    same = {tuple(names) for names in tools.values()}
    notes = (
        [] if len(same) == 1 else [f"FLAG: the clients listed different tools: {tools}"]
    )
    return rows, notes


# --- main ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--probes", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 renders, 3 probes")
    parser.add_argument("--show-queries", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.renders, args.probes = 3, 3

    setup_django()
    import logging

    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    logging.disable(logging.WARNING)  # the page logs nothing worth a line here
    setup_test_environment()
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False
    )
    try:
        renders = [
            bench_render(n, args.renders, show_queries=args.show_queries) for n in SIZES
        ]
        probe_rows, notes = bench_probe(args.probes)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()

    print(
        f"\nSettings page, GET /servers/ via the test client ({args.renders} renders)"
    )
    print(f"{'servers':>8} {'queries':>8} {'median ms':>10} {'min ms':>8} {'KiB':>7}")
    for row in renders:
        queries = "/".join(str(q) for q in row["queries"])
        print(
            f"{row['servers']:>8} {queries:>8} {row['median_ms']:>10.1f}"
            f" {row['min_ms']:>8.1f} {row['kib']:>7.0f}"
        )
    counts = {tuple(row["queries"]) for row in renders}
    if len(counts) == 1 and len(renders[0]["queries"]) == 1:
        print(f"queries per render: {renders[0]['queries'][0]} for every size (OK)")
    else:
        notes.append(
            "FLAG: queries per render differ between sizes or renders: "
            + ", ".join(f"{r['servers']} servers → {r['queries']}" for r in renders)
        )
    per_card = (renders[-1]["median_ms"] - renders[0]["median_ms"]) / (
        SIZES[-1] - SIZES[0]
    )
    print(f"marginal cost per card: {per_card:.3f} ms")

    print(
        f"\nProbe round trip, local SDK server with {probe_rows[0]['tools']} tools"
        f" ({args.probes} probes, new client each)"
    )
    print(f"{'client':<46} {'median ms':>10} {'min ms':>8} {'vs SDK':>7}")
    for row in probe_rows:
        print(
            f"{row['client']:<46} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f}"
            f" {row['ratio']:>6.2f}x"
        )
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

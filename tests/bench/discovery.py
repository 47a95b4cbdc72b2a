"""Benchmark: cold start to an authorization URL, ours vs the official MCP SDK.

What it measures. One local fake MCP server + authorization server (threaded
``http.server`` on 127.0.0.1, one port per layout) sleeps ``--latency`` ms
(default 50) before answering every request and records each request's start
and end. It serves four metadata layouts (the conformance suite's
metadata-default and metadata-var1..3):

1. ``header-prm/root-as``: the 401 names a custom PRM URL; issuer without a
   path, metadata at ``/.well-known/oauth-authorization-server``.
2. ``path-prm/oidc``: no ``resource_metadata``; path-inserted PRM; issuer
   without a path whose only metadata is ``/.well-known/openid-configuration``.
3. ``root-prm/path-issuer``: no ``resource_metadata``; path-inserted PRM 404,
   root PRM ok; issuer ``/tenant1``, metadata at
   ``/.well-known/oauth-authorization-server/tenant1``.
4. ``custom-prm/oidc-append``: the 401 names a custom PRM URL; issuer
   ``/tenant1`` whose only metadata is
   ``/tenant1/.well-known/openid-configuration``.

For each layout and each of ``--runs`` runs (default 5) it times, from the
unauthenticated MCP ``initialize`` POST to "authorization URL ready", with a
cold start (no cached metadata, no registration, so DCR):

a) ours: ``oauth.client`` over a plain ``httpx.Client``: POST → 401 →
   ``discover(..., challenge=bearer_challenge(response))`` → DCR
   (``build_registration_request`` + ``register``) → ``build_authorization_url``;
b) the SDK: ``mcp.client.auth.OAuthClientProvider`` as the ``auth`` of an
   ``httpx2.AsyncClient`` sending the same POST, with an in-memory
   ``TokenStorage``; its ``redirect_handler`` takes the time and the URL and
   raises, so the flow stops there (no ``/authorize``, no ``/token``);
c) the dependency-chain limit: challenge → PRM → AS metadata → registration
   is 4 sequential round trips, so 4 × latency is the best possible.

Reported per layout: median wall time, the number of HTTP requests the server
saw and the round-trip depth (the longest chain of requests that did not
overlap in time, from the recorded intervals). Clients are constructed before
the clock starts; connections are opened inside the timed region. Lower
priority candidates our client leaves in flight are counted once they land.

Targets (printed, never asserted; the exit code is 0 unless something
crashes): never slower than the SDK; within 1.2x of the dependency-chain
limit.

Run::

    .venv/bin/python -m tests.bench.discovery            # 5 runs per layout
    .venv/bin/python -m tests.bench.discovery --quick    # 1 run (smoke test)
    .venv/bin/python -m tests.bench.discovery --runs 9 --latency 100 --trace
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from oauth.client import (
    bearer_challenge,
    build_authorization_url,
    build_registration_request,
    choose_registration_method,
    discover,
    new_pkce,
    new_state,
    register,
    requested_scope,
)

MCP_PATH = "/mcp"
REDIRECT_URI = "http://127.0.0.1:8000/oauth/callback"
CLIENT_NAME = "mcpsettings benchmark"
CHAIN_ROUND_TRIPS = 4  # challenge → PRM → AS metadata → registration (DCR)
PROTOCOL_VERSION = "2025-11-25"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": PROTOCOL_VERSION,
}
SLOWER_THAN_LIMIT = 1.2
# Same depth, same latency: a difference this small is timer noise.
TIE = 0.02


# -- the fake server --------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where one fake deployment publishes its metadata."""

    key: str
    header_prm: bool  # the 401 carries resource_metadata (pointing at prm_path)
    prm_path: str
    issuer_path: str
    as_metadata_path: str


LAYOUTS = (
    Layout(
        "1 header-prm/root-as",
        header_prm=True,
        prm_path="/custom/resource-metadata.json",
        issuer_path="",
        as_metadata_path="/.well-known/oauth-authorization-server",
    ),
    Layout(
        "2 path-prm/oidc",
        header_prm=False,
        prm_path="/.well-known/oauth-protected-resource" + MCP_PATH,
        issuer_path="",
        as_metadata_path="/.well-known/openid-configuration",
    ),
    Layout(
        "3 root-prm/path-issuer",
        header_prm=False,
        prm_path="/.well-known/oauth-protected-resource",
        issuer_path="/tenant1",
        as_metadata_path="/.well-known/oauth-authorization-server/tenant1",
    ),
    Layout(
        "4 custom-prm/oidc-append",
        header_prm=True,
        prm_path="/custom/resource-metadata.json",
        issuer_path="/tenant1",
        as_metadata_path="/tenant1/.well-known/openid-configuration",
    ),
)


@dataclass(frozen=True)
class Record:
    layout: str
    method: str
    path: str
    status: int
    started: float
    ended: float


@dataclass
class Recorder:
    """Every request of every layout, with perf_counter start and end times."""

    records: list[Record] = field(default_factory=list)
    in_flight: int = 0
    last_activity: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.last_activity = time.perf_counter()

    def end(self, record: Record) -> None:
        with self.lock:
            self.in_flight -= 1
            self.records.append(record)
            self.last_activity = time.perf_counter()

    def reset(self) -> None:
        with self.lock:
            self.records = []

    def settle(self, quiet: float = 0.03, timeout: float = 5.0) -> list[Record]:
        """Wait until nothing is in flight and nothing arrived for ``quiet`` s."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                idle = time.perf_counter() - self.last_activity
                if self.in_flight == 0 and idle >= quiet:
                    return sorted(self.records, key=lambda r: r.started)
            time.sleep(0.005)
        raise RuntimeError("the fake server did not go quiet")


Response = tuple[int, dict[str, str], bytes]


class LayoutServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, layout: Layout, recorder: Recorder, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.layout = layout
        self.recorder = recorder
        self.latency = latency
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.server_url = self.base + MCP_PATH
        self.issuer = self.base + layout.issuer_path
        self.client_ids = itertools.count(1)

    def respond(self, method: str, path: str, body: bytes) -> Response:
        layout = self.layout
        path = urlsplit(path).path
        if method == "POST" and path == MCP_PATH:
            challenge = "Bearer"
            if layout.header_prm:
                challenge += f' resource_metadata="{self.base}{layout.prm_path}"'
            error = {"error": "invalid_token", "error_description": "no token"}
            return _json(401, error, {"WWW-Authenticate": challenge})
        if method == "GET" and path == layout.prm_path:
            return _json(
                200,
                {
                    "resource": self.server_url,
                    "authorization_servers": [self.issuer],
                    "scopes_supported": ["mcp"],
                    "bearer_methods_supported": ["header"],
                },
            )
        if method == "GET" and path == layout.as_metadata_path:
            return _json(200, self.metadata())
        if method == "POST" and path == layout.issuer_path + "/register":
            return self.registration(body)
        return _json(404, {"error": "not_found"})

    def metadata(self) -> dict[str, Any]:
        issuer = self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + "/authorize",
            "token_endpoint": issuer + "/token",
            "registration_endpoint": issuer + "/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "scopes_supported": ["mcp"],
        }

    def registration(self, body: bytes) -> Response:
        request = json.loads(body or b"{}")
        if not request.get("redirect_uris"):
            return _json(400, {"error": "invalid_redirect_uri"})
        # RFC 7591 §2: the default method is client_secret_basic.
        method = request.get("token_endpoint_auth_method") or "client_secret_basic"
        client = {
            **request,
            "client_id": f"client-{next(self.client_ids)}",
            "client_id_issued_at": int(time.time()),
            "token_endpoint_auth_method": method,
        }
        if method != "none":
            client["client_secret"] = "secret"
            client["client_secret_expires_at"] = 0
        return _json(201, client)


def _json(
    status: int, document: Any, headers: dict[str, str] | None = None
) -> Response:
    headers = {"Content-Type": "application/json", **(headers or {})}
    return status, headers, json.dumps(document).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    disable_nagle_algorithm = True  # headers and body are two writes
    server: LayoutServer

    def do_GET(self) -> None:  # http.server dispatches on the method name
        self.handle_one()

    def do_POST(self) -> None:
        self.handle_one()

    def handle_one(self) -> None:
        started = time.perf_counter()
        server = self.server
        server.recorder.begin()
        status = 0
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            time.sleep(server.latency)
            status, headers, payload = server.respond(self.command, self.path, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            path = urlsplit(self.path).path
            server.recorder.end(
                Record(
                    server.layout.key,
                    self.command,
                    path,
                    status,
                    started,
                    time.perf_counter(),
                )
            )

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeWorld:
    """One fake MCP server + AS per layout, all recording into one Recorder."""

    def __init__(self, latency: float) -> None:
        self.recorder = Recorder()
        self.servers = [
            LayoutServer(layout, self.recorder, latency) for layout in LAYOUTS
        ]
        self.threads = [
            threading.Thread(target=server.serve_forever, daemon=True)
            for server in self.servers
        ]

    def __enter__(self) -> FakeWorld:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


# -- the clients ------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    records: list[Record]
    authorization_url: str

    @property
    def requests(self) -> int:
        return len(self.records)

    @property
    def depth(self) -> int:
        return round_trip_depth(self.records)


def run_ours(server: LayoutServer) -> Run:
    """Our flow, cold: POST → 401 → discover → DCR → authorization URL."""
    recorder = server.recorder
    recorder.settle()
    recorder.reset()
    http = httpx.Client()
    try:
        start = time.perf_counter()
        url = ours_authorization_url(http, server.server_url)
        seconds = time.perf_counter() - start
        # discover() leaves lower-priority candidates in flight: let them land
        # (and be counted) before the client closes under them.
        records = recorder.settle()
    finally:
        http.close()
    return Run(seconds, records, url)


def ours_authorization_url(http: httpx.Client, server_url: str) -> str:
    response = http.post(server_url, json=INITIALIZE, headers=MCP_HEADERS)
    if response.status_code != 401:
        raise RuntimeError(f"expected a 401, got {response.status_code}")
    challenge = bearer_challenge(response)
    found = discover(http, server_url, challenge=challenge, allow_http_loopback=True)
    metadata = found.authorization_server
    method = choose_registration_method(
        metadata, has_preregistered=False, cimd_url=None
    )
    if method != "dcr":
        raise RuntimeError(f"expected DCR, got {method}")
    scope = requested_scope(
        challenge_scope=challenge.scope if challenge else None,
        resource_scopes_supported=found.protected_resource.scopes_supported,
        authorization_server_scopes_supported=metadata.scopes_supported,
    )
    request = build_registration_request(
        metadata, client_name=CLIENT_NAME, redirect_uris=[REDIRECT_URI], scope=scope
    )
    registration = register(http, metadata, request)
    pkce = new_pkce()
    return build_authorization_url(
        metadata,
        client_id=registration.client_id,
        redirect_uri=REDIRECT_URI,
        state=new_state(),
        code_challenge=pkce.code_challenge,
        resource=found.resource,
        scope=scope,
    )


class StopAtAuthorization(Exception):
    """Raised by the SDK's redirect handler: the benchmark ends there."""


def run_sdk(server: LayoutServer) -> Run:
    """The official SDK's OAuthClientProvider, cold, stopped at the redirect."""
    recorder = server.recorder
    recorder.settle()
    recorder.reset()
    seconds, url = asyncio.run(_sdk_flow(server.server_url))
    return Run(seconds, recorder.settle(), url)


async def _sdk_flow(server_url: str) -> tuple[float, str]:
    import httpx2
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

    class MemoryStorage:
        def __init__(self) -> None:
            self.tokens: OAuthToken | None = None
            self.client_info: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client_info

        async def set_client_info(self, info: OAuthClientInformationFull) -> None:
            self.client_info = info

    reached: list[tuple[float, str]] = []

    async def redirect_handler(url: str) -> None:
        reached.append((time.perf_counter(), url))
        raise StopAtAuthorization

    async def callback_handler() -> AuthorizationCodeResult:
        raise AssertionError("the benchmark stops at the redirect")

    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=sdk_client_metadata(),
        storage=MemoryStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as client:
        start = time.perf_counter()
        with contextlib.suppress(StopAtAuthorization):
            await client.post(server_url, json=INITIALIZE, headers=MCP_HEADERS)
    if not reached:
        raise RuntimeError("the SDK never reached its redirect handler")
    at, url = reached[0]
    return at - start, url


def sdk_client_metadata() -> Any:
    from mcp.shared.auth import OAuthClientMetadata

    return OAuthClientMetadata(
        client_name=CLIENT_NAME,
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        application_type="web",
    )


def check_authorization_url(server: LayoutServer, url: str, who: str) -> None:
    """Both clients must have found the right AS and registered with it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    problems = [
        what
        for what, ok in (
            ("endpoint", endpoint == server.issuer + "/authorize"),
            ("client_id", (one("client_id") or "").startswith("client-")),
            ("S256", one("code_challenge_method") == "S256"),
            ("resource", one("resource") == server.server_url),
            ("state", bool(one("state"))),
        )
        if not ok
    ]
    if problems:
        raise RuntimeError(
            f"{who} built a wrong authorization URL for {server.layout.key} "
            f"({', '.join(problems)}): {url}"
        )


# -- analysis ---------------------------------------------------------------


def round_trip_depth(records: Sequence[Record]) -> int:
    """Longest chain of requests each starting after the previous one ended."""
    ordered = sorted(records, key=lambda r: r.ended)
    chain: list[int] = []
    for index, record in enumerate(ordered):
        before = [chain[j] for j in range(index) if ordered[j].ended <= record.started]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


@dataclass(frozen=True)
class Result:
    layout: str
    ours: list[Run]
    sdk: list[Run]
    limit: float

    @staticmethod
    def _ms(runs: list[Run]) -> float:
        return statistics.median(run.seconds for run in runs) * 1000

    @staticmethod
    def _int(runs: list[Run], value: Callable[[Run], int]) -> str:
        values = sorted(value(run) for run in runs)
        median = statistics.median_low(values)
        if values[0] == values[-1]:
            return str(median)
        return f"{median} ({values[0]}-{values[-1]})"

    def row(self) -> list[str]:
        ours_ms, sdk_ms = self._ms(self.ours), self._ms(self.sdk)
        return [
            self.layout,
            f"{ours_ms:.1f}",
            self._int(self.ours, lambda run: run.requests),
            self._int(self.ours, lambda run: run.depth),
            f"{sdk_ms:.1f}",
            self._int(self.sdk, lambda run: run.requests),
            self._int(self.sdk, lambda run: run.depth),
            f"{ours_ms / sdk_ms:.2f}",
            f"{ours_ms / self.limit:.2f}",
        ]

    def verdict(self) -> str:
        ours_ms, sdk_ms = self._ms(self.ours), self._ms(self.sdk)
        if ours_ms <= sdk_ms:
            not_slower = "yes"
        elif ours_ms <= sdk_ms * (1 + TIE):
            not_slower = f"tie (within {TIE:.0%} timing noise)"
        else:
            not_slower = "NO"
        near_limit = ours_ms <= self.limit * SLOWER_THAN_LIMIT
        return (
            f"  {self.layout}: not slower than the SDK: "
            f"{not_slower} ({ours_ms / sdk_ms:.2f}x); "
            f"within {SLOWER_THAN_LIMIT}x of the limit: "
            f"{'yes' if near_limit else 'NO'} ({ours_ms / self.limit:.2f}x)"
        )


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def trace(name: str, run: Run) -> None:
    origin = run.records[0].started if run.records else 0.0
    print(f"  {name} ({run.seconds * 1000:.1f} ms):")
    for record in run.records:
        print(
            f"    {(record.started - origin) * 1000:7.1f} → "
            f"{(record.ended - origin) * 1000:7.1f} ms  {record.status}  "
            f"{record.method:4} {record.path}"
        )


# -- main -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.discovery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per layout (5)")
    parser.add_argument("--quick", action="store_true", help="1 run, for smoke tests")
    parser.add_argument(
        "--latency", type=float, default=50.0, help="ms added per request (50)"
    )
    parser.add_argument(
        "--trace", action="store_true", help="print each request of the last runs"
    )
    args = parser.parse_args(argv)
    runs = 1 if args.quick else max(1, args.runs)
    latency = args.latency / 1000
    limit_ms = CHAIN_ROUND_TRIPS * args.latency
    # The SDK logs a traceback for every exception out of its flow, including
    # the one our redirect handler raises on purpose.
    logging.getLogger("mcp.client.auth").setLevel(logging.CRITICAL)

    results: list[Result] = []
    with FakeWorld(latency) as world:
        # Warm up imports, pydantic models and the first thread pool.
        run_ours(world.servers[0])
        run_sdk(world.servers[0])
        for server in world.servers:
            ours: list[Run] = []
            sdk: list[Run] = []
            for _ in range(runs):
                ours.append(run_ours(server))
                sdk.append(run_sdk(server))
                check_authorization_url(server, ours[-1].authorization_url, "ours")
                check_authorization_url(server, sdk[-1].authorization_url, "the SDK")
            results.append(Result(server.layout.key, ours, sdk, limit_ms))
            if args.trace:
                print(f"{server.layout.key}:")
                trace("ours", ours[-1])
                trace("SDK", sdk[-1])

    print(
        f"Cold start to authorization URL (DCR), {args.latency:g} ms per request, "
        f"median of {runs} run(s); limit = {CHAIN_ROUND_TRIPS} round trips = "
        f"{limit_ms:g} ms"
    )
    header = [
        "layout",
        "ours ms",
        "ours requests",
        "ours depth",
        "SDK ms",
        "SDK requests",
        "SDK depth",
        "ours/SDK",
        "ours/limit",
    ]
    print(table([header, *(result.row() for result in results)]))
    print(
        f"Targets: never slower than the SDK; within {SLOWER_THAN_LIMIT}x of the "
        "dependency-chain limit."
    )
    for result in results:
        print(result.verdict())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real token endpoint on 127.0.0.1 for refresh tests and the benchmark.

A threaded HTTP/1.1 server (keep-alive, so clients pool connections like
they would against a real authorization server). It answers only
``grant_type=refresh_token`` and behaves like a strict OAuth 2.1 server:
every refresh rotates the refresh token and the used one is dead, so a
second presentation is refused with ``invalid_grant`` *and recorded as a
reuse*: for these tests any reuse is a failure.

Tokens name their credential (``rt.<key>.<generation>``), so the server can
count refreshes per credential and check that each request carries that
credential's resource and the client's authentication.

Knobs: ``latency`` (seconds slept before answering), ``fail_every`` (every
n-th call fails, before touching any state) alternating between an
immediate 503 and a hang of ``hang_seconds`` (longer than the client's
timeout) followed by a 503 nobody reads.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

CLIENT_ID = "refresh-test-client"
CLIENT_SECRET = "refresh-test-secret"


class TokenEndpoint:
    def __init__(self, *, latency: float = 0.0, expires_in: int = 3600) -> None:
        self.latency = latency
        self.expires_in = expires_in
        self.fail_every = 0
        self.hang_seconds = 0.0
        self.calls = 0
        self.failures = 0
        self.current: dict[str, str] = {}  # key -> the one valid refresh token
        self.resources: dict[str, str] = {}
        self.used: set[str] = set()
        self.refreshes: Counter[str] = Counter()
        self.reuses: list[str] = []
        self.problems: list[str] = []
        self._generation: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- set up -------------------------------------------------------------------

    def register(self, key: str, *, resource: str) -> str:
        """A credential's first refresh token."""
        token = f"rt.{key}.0"
        with self._lock:
            self.current[key] = token
            self.resources[key] = resource
        return token

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/token"

    @property
    def basic_auth(self) -> str:
        raw = f"{CLIENT_ID}:{CLIENT_SECRET}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def start(self) -> TokenEndpoint:
        endpoint = self

        class Handler(_Handler):
            pass

        Handler.endpoint = endpoint
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        # Many workers connect at once; the default backlog of 5 turns a
        # burst into SYN retries (a second each).
        server.request_queue_size = 256
        server.daemon_threads = True
        server.server_bind()
        server.server_activate()
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TokenEndpoint:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------

    def answer(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        hang = 0.0
        with self._lock:
            self.calls += 1
            failing = bool(self.fail_every) and self.calls % self.fail_every == 0
            if failing:
                self.failures += 1
                hang = self.hang_seconds if self.failures % 2 == 0 else 0.0
        if failing:
            time.sleep(hang)
            return 503, {"error": "temporarily_unavailable"}
        if self.latency:
            time.sleep(self.latency)
        presented = form.get("refresh_token", "")
        key = presented.split(".")[1] if presented.count(".") == 2 else ""
        with self._lock:
            if form.get("grant_type") != "refresh_token":
                self.problems.append(f"grant_type {form.get('grant_type')!r}")
                return 400, {"error": "unsupported_grant_type"}
            if authorization != self.basic_auth:
                self.problems.append(f"client authentication missing for {key}")
                return 401, {"error": "invalid_client"}
            if form.get("resource") != self.resources.get(key):
                self.problems.append(f"resource {form.get('resource')!r} for {key}")
            if self.current.get(key) != presented:
                if presented in self.used:
                    self.reuses.append(presented)
                return 400, {"error": "invalid_grant"}
            self.used.add(presented)
            self._generation[key] += 1
            generation = self._generation[key]
            self.current[key] = f"rt.{key}.{generation}"
            self.refreshes[key] += 1
        return 200, {
            "access_token": f"at.{key}.{generation}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.current[key],
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body go out in two writes; with Nagle on, the body waits
    # for the client's delayed ACK (40 ms on Linux) on every response.
    disable_nagle_algorithm = True
    endpoint: TokenEndpoint

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if self.path != "/token":
            status, body = 404, {"error": "not_found"}
        else:
            status, body = self.endpoint.answer(
                form, self.headers.get("Authorization", "")
            )
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up waiting (the "timeout" failures): expected.
            self.close_connection = True

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

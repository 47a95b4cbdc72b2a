"""A real MCP server from the official ``mcp`` SDK, run as a subprocess.

Test peer for ``servers.mcp_client``: the SDK's ``MCPServer`` with a few
tools, serving on 127.0.0.1 only.

* ``/mcp``: Streamable HTTP. The SDK routes by the ``MCP-Protocol-Version``
  header: handshake versions (2024-11-05 … 2025-11-25) get the stateful
  transport with ``Mcp-Session-Id``; 2026-07-28 gets the stateless
  single-exchange entry (no ``initialize``, ``server/discover``).
* ``/sse`` + ``/messages/``: the legacy HTTP+SSE transport (2024-11-05).

Options:

``--port P``             0 picks a free port; the URL is printed on stdout as
                         ``MCP_PEER_URL http://127.0.0.1:P/mcp``.
``--require-token T``    every request needs ``Authorization: Bearer T``;
                         otherwise 401 with ``WWW-Authenticate: Bearer`` and
                         no OAuth metadata (a static-token server).
``--delay S``            sleep S seconds before handling each HTTP request.
``GET /healthz``         answers 200 at once (readiness; no token, no delay).
``--tools N``            register N extra tools ``tool_001`` … .
``--page-size K``        paginate ``tools/list`` with K tools per page.

Run: ``python -m tests.peers.mcp_server --port 0 --require-token secret``.
Tests use :func:`start_mcp_server`.
"""

import argparse
import contextlib
import hmac
import os
import select
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

URL_LINE_PREFIX = "MCP_PEER_URL "
HEALTH_PATH = "/healthz"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- the server (runs in the subprocess) -----------------------------------


def build_app(*, require_token: str | None, delay: float, tools: int, page_size: int):
    """Return the ASGI app: Streamable HTTP at /mcp plus legacy SSE at /sse.

    Annotations stay eagerly evaluated in this module (no ``from __future__
    import annotations``): the SDK reads tool signatures, and ``Context`` is
    imported locally.
    """
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp_types import ListToolsResult, PaginatedRequestParams

    server = MCPServer(
        "mcp-client-test-peer",
        version="1.0.0",
        instructions="Test peer.",
        log_level="WARNING",
    )

    @server.tool(title="Echo", description="Return the text it is given.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Log a message to the client, then echo.")
    async def log_then_echo(text: str, ctx: Context) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await ctx.info(f"about to echo {text}")
        return f"echo: {text}"

    @server.tool(description="Sleep, then answer.")
    async def sleep(seconds: float) -> str:
        await anyio.sleep(seconds)
        return "slept"

    for index in range(1, tools + 1):
        name = f"tool_{index:03d}"

        def make(number: int):
            def extra() -> str:
                return f"extra {number}"

            return extra

        server.add_tool(make(index), name=name, description=f"Extra tool {index}.")

    if page_size > 0:

        async def paginated_list_tools(ctx: Any, params: PaginatedRequestParams | None):
            everything = await server.list_tools()
            start = int(params.cursor) if params and params.cursor else 0
            end = start + page_size
            next_cursor = str(end) if end < len(everything) else None
            return ListToolsResult(tools=everything[start:end], next_cursor=next_cursor)

        server._lowlevel_server.add_request_handler(
            "tools/list", PaginatedRequestParams, paginated_list_tools
        )

    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    # The legacy transport's routes join the same app, whose lifespan runs
    # the Streamable HTTP session manager.
    app.router.routes.extend(server.sse_app(host="127.0.0.1").routes)

    asgi = app
    if require_token is not None:
        asgi = _RequireToken(asgi, require_token)
    if delay > 0:
        asgi = _Delay(asgi, delay)
    return HealthCheck(asgi)


class HealthCheck:
    """ASGI middleware: ``GET /healthz`` answers at once (no token, no delay)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await self.app(scope, receive, send)


class _RequireToken:
    """ASGI middleware: 401 ``WWW-Authenticate: Bearer`` unless the token matches."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is not None and hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        challenge = b"Bearer" if given is None else b'Bearer error="invalid_token"'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", challenge),
                    (b"content-type", b"text/plain"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"Unauthorized"})


class _Delay:
    """ASGI middleware: wait before handling each HTTP request."""

    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            import anyio

            await anyio.sleep(self.seconds)
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--require-token", default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--tools", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=0)
    args = parser.parse_args(argv)

    import uvicorn

    app = build_app(
        require_token=args.require_token,
        delay=args.delay,
        tools=args.tools,
        page_size=args.page_size,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    print(f"{URL_LINE_PREFIX}http://127.0.0.1:{port}/mcp", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


# --- the fixture helper (runs in the test process) -------------------------


@contextlib.contextmanager
def start_mcp_server(
    *,
    require_token: str | None = None,
    delay: float = 0.0,
    tools: int = 0,
    page_size: int = 0,
    startup_timeout: float = 20.0,
) -> Iterator[str]:
    """Run the peer in a subprocess; yield its Streamable HTTP URL (``…/mcp``).

    The legacy SSE endpoint of the same process is the URL with ``/mcp``
    replaced by ``/sse``. The process is killed on exit.
    """
    command = [sys.executable, "-m", "tests.peers.mcp_server", "--port", "0"]
    if require_token is not None:
        command += ["--require-token", require_token]
    if delay:
        command += ["--delay", str(delay)]
    if tools:
        command += ["--tools", str(tools)]
    if page_size:
        command += ["--page-size", str(page_size)]
    process = subprocess.Popen(
        command,
        cwd=_PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = _read_url(process, deadline=time.monotonic() + startup_timeout)
        _wait_until_listening(url, process, deadline=time.monotonic() + startup_timeout)
        yield url
    finally:
        _stop(process)


def _read_url(process: subprocess.Popen, *, deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"MCP peer exited early with status {process.returncode}"
            )
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.startswith(URL_LINE_PREFIX):
                return line[len(URL_LINE_PREFIX) :].strip()
    raise RuntimeError("MCP peer did not report its URL in time")


def _wait_until_listening(
    url: str, process: subprocess.Popen, *, deadline: float
) -> None:
    import httpx

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"MCP peer exited early with status {process.returncode}"
            )
        try:
            health = url.removesuffix("/mcp") + HEALTH_PATH
            if httpx.get(health, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("MCP peer did not answer in time")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=3)
    if process.stdout is not None:
        process.stdout.close()


if __name__ == "__main__":
    main()

"""Run the OAuth test peers as subprocesses: the AS and the protected MCP server.

* :func:`start_authorization_server` runs ``tests/node/provider.mjs``
  (oidc-provider 9 on the Node 22 from ``tests/node/node_modules``) and
  yields an :class:`AuthServer`; see that file's header for its features,
  its interaction pages and its ``POST /__test__/revoke-all`` hook.
* :func:`start_protected_mcp_server` runs ``tests.peers.protected_mcp_server``
  (the SDK's ``MCPServer`` trusting that issuer) and yields its ``…/mcp`` URL.
* :func:`node_available` tells whether ``npm ci`` was run in ``tests/node``.

Both processes bind 127.0.0.1 on a free port (picked by the process itself,
so there is no race) and run in their own process group, which is killed on
exit, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = PROJECT_ROOT / "tests" / "node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin" / "node"
OIDC_PROVIDER_DIR = NODE_DIR / "node_modules" / "oidc-provider"
PROVIDER_SCRIPT = NODE_DIR / "provider.mjs"

READY_PREFIX = "READY "
URL_LINE_PREFIX = "MCP_PEER_URL "


@dataclass(frozen=True)
class AuthServer:
    """A running oidc-provider: ``issuer`` is ``http://127.0.0.1:<port>``."""

    issuer: str
    port: int
    process: subprocess.Popen

    def url(self, path: str) -> str:
        return self.issuer + path

    def revoke_all(self) -> int:
        """Drop every grant and token (clients and sessions stay)."""
        response = httpx.post(self.url("/__test__/revoke-all"), timeout=5)
        response.raise_for_status()
        return response.json()["revoked"]


def node_available() -> bool:
    """Whether ``tests/node/node_modules`` has Node 22 and oidc-provider."""
    return NODE_BIN.exists() and (OIDC_PROVIDER_DIR / "package.json").exists()


@contextlib.contextmanager
def start_authorization_server(
    *,
    interactive: str = "auto",
    access_token_ttl: int = 120,
    rotate_refresh: bool = True,
    require_offline_access: bool = False,
    resource_prefix: str = "http://127.0.0.1:",
    resource_scopes: str = "mcp:tools",
    startup_timeout: float = 20.0,
) -> Iterator[AuthServer]:
    """Run ``provider.mjs`` on a free port; yield it once it prints ``READY``."""
    if interactive not in ("auto", "form"):
        raise ValueError(f"interactive must be 'auto' or 'form', not {interactive!r}")
    if not node_available():
        raise RuntimeError(
            f"oidc-provider is not installed: {NODE_BIN} or {OIDC_PROVIDER_DIR} "
            "is missing. Run `npm ci` in tests/node."
        )
    env = {
        **os.environ,
        "PORT": "0",
        "INTERACTIVE": interactive,
        "ACCESS_TOKEN_TTL": str(int(access_token_ttl)),
        "ROTATE_REFRESH": "true" if rotate_refresh else "false",
        "REQUIRE_OFFLINE_ACCESS": "true" if require_offline_access else "false",
        "RESOURCE_PREFIX": resource_prefix,
        "RESOURCE_SCOPES": resource_scopes,
        "NODE_ENV": "test",
    }
    process = _spawn([str(NODE_BIN), str(PROVIDER_SCRIPT)], cwd=NODE_DIR, env=env)
    try:
        issuer = _read_line(
            process,
            READY_PREFIX,
            "authorization server",
            deadline=time.monotonic() + startup_timeout,
        )
        port = int(issuer.rsplit(":", 1)[1])
        yield AuthServer(issuer=issuer, port=port, process=process)
    finally:
        _stop(process)


@contextlib.contextmanager
def start_protected_mcp_server(
    issuer: str, *, scope: str = "mcp:tools", startup_timeout: float = 20.0
) -> Iterator[str]:
    """Run the protected MCP server for ``issuer``; yield its ``…/mcp`` URL."""
    command = [
        sys.executable,
        "-m",
        "tests.peers.protected_mcp_server",
        "--port",
        "0",
        "--issuer",
        issuer,
        "--scope",
        scope,
    ]
    process = _spawn(
        command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        deadline = time.monotonic() + startup_timeout
        url = _read_line(process, URL_LINE_PREFIX, "protected MCP server", deadline)
        _wait_healthy(url.removesuffix("/mcp") + "/healthz", process, deadline)
        yield url
    finally:
        _stop(process)


# --- process plumbing -------------------------------------------------------


def _spawn(command: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None,  # inherited: shows up in pytest's captured output
        text=True,
        start_new_session=True,  # own process group, killed as a whole
    )


def _read_line(
    process: subprocess.Popen, prefix: str, what: str, deadline: float
) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            if line:
                continue
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early with status {process.returncode}")
    raise RuntimeError(f"{what} did not print {prefix.strip()!r} in time")


def _wait_healthy(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"protected MCP server exited early with status {process.returncode}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError("protected MCP server did not answer /healthz in time")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    # Whatever the leader left behind in its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.stdout is not None:
        process.stdout.close()

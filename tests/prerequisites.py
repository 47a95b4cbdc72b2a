"""Prerequisites of the tests that use real parts (chromium, the Node peers,
network namespaces): missing ones skip the test on a developer's machine but
fail it in CI (CI=true), where everything must run."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def require_node_peers() -> None:
    from tests.peers.oauth_peers import node_available

    if not node_available():
        skip_or_fail("tests/node/node_modules is missing (run `npm ci` in tests/node)")

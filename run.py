#!/usr/bin/env python3
"""The two quickstart commands, for a machine with only Python >= 3.11 and pip.

    python3 run.py serve     # the app on the embedded default (manage.py dev)
    python3 run.py test      # the whole test suite (extra args go to pytest)

Each creates ./.venv on first use and installs the pinned requirements
(requirements/app.txt or requirements/test.txt) whenever they change.
Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LOCKS = {
    "serve": ROOT / "requirements" / "app.txt",
    "test": ROOT / "requirements" / "test.txt",
}


def ensure_environment(lock: Path) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may meet an old python3
        sys.exit("MCP Settings needs Python 3.11 or newer.")
    if not PYTHON.exists():
        print("Creating a virtual environment in .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = VENV / f".installed-{lock.stem}"
    # test.txt is a superset of app.txt, so a test install also serves.
    stamps = [stamp, VENV / ".installed-test"] if lock.stem == "app" else [stamp]
    if any(s.exists() and s.read_text() == digest for s in stamps):
        return
    print(f"Installing {lock.relative_to(ROOT)} …", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(lock),
        ],
        check=True,
    )
    stamp.write_text(digest)


def ensure_node_peers() -> None:
    """The real test peers (oidc-provider, the MCP conformance harness and a
    Node 22 runtime for it) come from tests/node/package-lock.json. Tests
    that need them skip without npm, except in CI."""
    folder = ROOT / "tests" / "node"
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: tests that need Node peers will be skipped.", flush=True)
        return
    lock = folder / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = folder / "node_modules" / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("Installing tests/node (npm ci) …", flush=True)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
    )
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in LOCKS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(LOCKS[command])
    os.chdir(ROOT)
    if command == "serve":
        args = [str(PYTHON), "manage.py", "dev", *rest]
    else:
        ensure_node_peers()
        args = [str(PYTHON), "-m", "pytest", *rest]
    try:
        return subprocess.run(args).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``oauth.client`` stays free of Django: standard library and httpx only."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import oauth.client

PACKAGE = Path(oauth.client.__file__).parent
REPO = PACKAGE.parent.parent
ALLOWED_THIRD_PARTY = {"httpx"}


def test_importing_every_client_module_never_loads_django():
    modules = sorted(f"oauth.client.{path.stem}" for path in PACKAGE.glob("*.py"))
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'django']\n"
        "print(json.dumps(sorted(loaded)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(result.stdout) == []


def test_client_modules_import_only_the_standard_library_and_httpx():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                    f"{path.name} imports {name}"
                )


def test_every_client_module_says_it_must_not_import_django():
    for path in PACKAGE.glob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert "Django" in docstring, path.name

"""Production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="mcpsettings.settings",
        MCPSETTINGS_VAR_DIR=str(tmp_path),
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_refuses_to_start_without_secrets(missing, tmp_path):
    env = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLWV4YWN0bHktMzItYnl0ZXMtb2s=",
    }
    del env[missing]
    result = start_django(env, tmp_path)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_starts_with_secrets(tmp_path):
    result = start_django(
        {
            "DJANGO_SECRET_KEY": "x" * 50,
            "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLWV4YWN0bHktMzItYnl0ZXMtb2s=",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_rejects_an_unknown_outbound_policy(tmp_path):
    result = start_django(
        {
            "DJANGO_SECRET_KEY": "x" * 50,
            "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLWV4YWN0bHktMzItYnl0ZXMtb2s=",
            "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "yes please",
        },
        tmp_path,
    )
    assert result.returncode != 0
    assert "OUTBOUND_ALLOW_PRIVATE_NETWORKS must be" in result.stderr

"""`manage.py dev` really runs the app, a Celery worker and beat, and stops them."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=90.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_dev_command_runs_the_app_with_worker_and_beat(tmp_path):
    port = free_port()
    # A fresh machine: no configuration at all, only what a shell has.
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["MCPSETTINGS_VAR_DIR"] = str(tmp_path)
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "dev", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def login_page_served():
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/accounts/login/").status_code
                    == 200
                )
            except httpx.HTTPError:
                return False

        assert wait_for(login_page_served), log.read_text()
        assert wait_for(lambda: "ready." in log.read_text()), log.read_text()
        assert wait_for(lambda: "beat: Starting" in log.read_text()), log.read_text()
        output = log.read_text()

        # Keys were generated into the dev env file, not taken from anywhere.
        dev_env = (tmp_path / "dev.env").read_text()
        assert "DJANGO_SECRET_KEY=" in dev_env and "FIELD_ENCRYPTION_KEYS=" in dev_env
        # SQLite in WAL mode, migrations applied.
        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert (
                db.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 10
            )
        # The demo account works with the printed password.
        password = (tmp_path / "demo-password.txt").read_text().strip()
        assert f"Demo account: demo / {password}" in output
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            browser.get("/accounts/login/")
            response = browser.post(
                "/accounts/login/",
                data={
                    "username": "demo",
                    "password": password,
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
                headers={"Referer": f"http://127.0.0.1:{port}/accounts/login/"},
            )
            assert response.status_code == 302
            assert browser.get("/servers/").status_code == 200
        assert "this machine (loopback)" in output
        assert processes_mentioning(str(tmp_path / "celerybeat-schedule"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # The worker (and its beat child) stop with the app.
    assert wait_for(
        lambda: not processes_mentioning(str(tmp_path / "celerybeat-schedule")),
        timeout=30,
    ), log.read_text()

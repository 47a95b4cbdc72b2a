"""Run the whole app locally on the embedded default.

One command, no services: applies migrations (SQLite in WAL mode), creates a
demo account on first run and prints its credentials, starts a Celery worker
with embedded beat on the ``filesystem://`` broker as a child process, then
runs the development server. The worker stops when the server stops.

Under the autoreloader this command runs twice: once as the watcher (which
owns the worker) and again in each reloaded child (server only).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from mcpsettings.celery import ensure_filesystem_broker_folders

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Run the app locally: migrate, demo account, Celery worker + beat, server."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--noreload", action="store_true")
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not start the Celery worker."
        )

    def handle(self, *args, addrport, noreload, no_worker, **options):
        is_reloaded_child = os.environ.get("RUN_MAIN") == "true"
        worker = None
        if not is_reloaded_child:
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            call_command("migrate", interactive=False, verbosity=1)
            self._announce_demo_account(addrport)
            if not no_worker:
                worker = self._start_worker()
            # SIGTERM (a supervisor, a test) must still stop the worker.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            call_command("runserver", addrport, use_reloader=not noreload)
        finally:
            if worker is not None:
                self._stop_worker(worker)

    def _announce_demo_account(self, addrport: str) -> None:
        password_file = settings.VAR_DIR / "demo-password.txt"
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_user(
                DEMO_USERNAME, password=password, is_staff=True, is_superuser=True
            )
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        password = (
            password_file.read_text().strip()
            if password_file.exists()
            else "(changed since first run)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\nMCP Settings is starting at http://{addrport}/\n"
                f"  Demo account: {DEMO_USERNAME} / {password}  (also an admin)\n"
                f"  Outbound requests may reach: "
                f"{_describe_outbound(settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS)}\n"
            )
        )
        self.stdout.flush()

    def _start_worker(self) -> subprocess.Popen:
        ensure_filesystem_broker_folders()
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mcpsettings",
            "worker",
            "--beat",
            "--pool=solo",
            "--loglevel=INFO",
            f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
        ]
        self.stdout.write(
            f"Starting Celery worker with beat (broker {settings.CELERY_BROKER_URL})"
        )
        # A session of its own: Ctrl-C reaches the server, and this command
        # then stops the worker cleanly instead of racing it.
        return subprocess.Popen(command, start_new_session=True)

    def _stop_worker(self, worker: subprocess.Popen) -> None:
        if worker.poll() is not None:
            return
        self.stdout.write("Stopping Celery worker…")
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _describe_outbound(allow: str) -> str:
    return {
        "false": "public internet only",
        "loopback": "public internet and this machine (loopback) — development only",
        "true": "public internet, this machine and private networks — development only",
    }[allow]

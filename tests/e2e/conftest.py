"""Real-browser fixtures: Debian's chromium driven by Playwright, and the app
served by pytest-django's ``live_server``.

Nothing here is specific to one page. A test module asks for:

* ``page`` (pytest-playwright), launched from ``/usr/bin/chromium``; the
  browser Playwright would download is never used;
* ``app_url``: the live server's base URL on ``127.0.0.1`` (the host the
  OAuth test peers accept in redirect URIs), with the settings a browser test
  needs pointed at it (``SITE_URL``, ``OAUTH_REDIRECT_URI``, ``ALLOWED_HOSTS``);
* ``sign_in``: create a user and sign in through the real login form;
* ``screenshot``: save a full-page PNG under ``test-artifacts/screenshots/``
  (git-ignored).

A missing chromium skips the test, except in CI (``CI=true``), where it fails.
Tests using these fixtures need ``@pytest.mark.django_db(transaction=True)``:
the live server answers from another thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.prerequisites import require_node_peers, skip_or_fail

# Playwright's sync API runs an event loop in the test thread, which makes
# Django refuse ORM calls there ("SynchronousOnlyOperation") although the
# test thread never runs async code of its own.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }


@pytest.fixture
def app_url(live_server, settings) -> str:
    """The live server's base URL, with the app configured to live there."""
    url = live_server.url.replace("://localhost:", "://127.0.0.1:")
    settings.SITE_URL = url
    settings.OAUTH_REDIRECT_URI = f"{url}/oauth/callback"
    settings.CSRF_TRUSTED_ORIGINS = [url]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1", "localhost"]
    return url


@pytest.fixture
def sign_in(app_url, django_user_model) -> Callable:
    """``sign_in(page, username="alice")``: create the user, sign in through the
    real login form, and return the user once the settings page is shown."""

    def sign_in(page, username: str = "alice"):
        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD
        )
        page.goto(f"{app_url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{app_url}/servers/")
        return user

    return sign_in


@pytest.fixture
def screenshot() -> Callable:
    """``screenshot(page, "name")``: a full-page PNG in test-artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take


# -- real peers shared by the e2e modules (one per module) -----------------------


@pytest.fixture(scope="module")
def require_node() -> None:
    require_node_peers()


@pytest.fixture(scope="module")
def form_auth_server(require_node):
    """oidc-provider with its real login and consent pages."""
    from tests.peers.oauth_peers import start_authorization_server

    with start_authorization_server(interactive="form") as server:
        yield server


@pytest.fixture(scope="module")
def form_mcp_url(form_auth_server):
    """An official mcp SDK server protected by ``form_auth_server``."""
    from tests.peers.oauth_peers import start_protected_mcp_server

    with start_protected_mcp_server(form_auth_server.issuer) as url:
        yield url

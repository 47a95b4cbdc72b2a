"""Drive the product's own OAuth code under the official MCP conformance suite.

Used as the harness's client command (reference/mcp-authorization.md §B.8):

    conformance client --command "python manage.py mcp_client_conformance \\
        --settings=tests.conformance.settings" --scenario auth/metadata-default

The harness appends the MCP server URL as the last argument and sets
MCP_CONFORMANCE_PROTOCOL_VERSION (which wire to speak), MCP_CONFORMANCE_SCENARIO
and sometimes MCP_CONFORMANCE_CONTEXT (pre-registered client credentials).

Everything goes through the same services and views as the web UI: the
settings page's server row, the authorize view (302 to the AS), and the
callback view. The only adapter-specific step is the "browser": the mock AS
approves at once, so following its single redirect with httpx stands in for
the user's consent. Exit 0 when the scripted MCP calls succeed, 2 with a
one-line reason on stderr when the client refuses or gives up.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.urls import reverse

from mcpsettings import outbound
from oauth import client as oauth
from oauth.models import ClientRegistration, OAuthCredential
from oauth.refresh import NeedsReauthorization, TokenUnavailable, access_token_for
from oauth.services import save_challenge
from servers import services as server_services
from servers.mcp_client import STATELESS_VERSIONS, AuthRequired, McpError, McpSession
from servers.models import McpServer

# MCP 2026-07-28: retry step-up "no more than a few times".
MAX_STEP_UPS = 2
MAX_AUTHORIZATIONS = 3


class Abort(CommandError):
    """The client refuses to go on; the message says why, in one line."""


class Command(BaseCommand):
    help = "Run the MCP client flow against a conformance-suite server URL."

    def add_arguments(self, parser):
        parser.add_argument("url", help="The MCP server URL (appended by the harness).")

    def handle(self, *args, url, **options):
        started = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION") or "2025-11-25"
        scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
        context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
        self.log(f"scenario={scenario} wire={version}")

        user, _ = get_user_model().objects.get_or_create(username="conformance")
        self.pre_register(context)
        server = server_services.create_server(
            owner=user, url=url, transport=McpServer.Transport.STREAMABLE_HTTP
        )
        browser = Client()
        browser.force_login(user)
        http = outbound.make_client()
        try:
            self.run(http, browser, server, version)
        except (
            Abort,
            oauth.OAuthError,
            httpx.HTTPError,
            McpError,
            NeedsReauthorization,
        ) as exc:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.stderr.write(f"ABORT: {message}")
            sys.exit(2)
        finally:
            self.log(f"total {1000 * (time.monotonic() - started):.0f} ms")
            os.remove(settings.DATABASES["default"]["NAME"])

    def pre_register(self, context: dict) -> None:
        """Credentials the harness hands over stand for an admin's entry."""
        if not (context.get("client_id") and context.get("issuer")):
            return
        secret = context.get("client_secret")
        ClientRegistration.objects.update_or_create(
            issuer=context["issuer"],
            redirect_uri=settings.OAUTH_REDIRECT_URI,
            defaults={
                "kind": ClientRegistration.Kind.PRE_REGISTERED,
                "client_id": context["client_id"],
                "client_secret": secret,
                "token_endpoint_auth_method": (
                    "client_secret_basic" if secret else "none"
                ),
            },
        )

    def run(self, http: httpx.Client, browser: Client, server: McpServer, version):
        authorizations = step_ups = 0
        while True:
            try:
                self.session(http, server, version)
                self.log(f"done after {authorizations} authorization(s)")
                return
            except AuthRequired as exc:
                challenge = oauth.bearer_challenge(exc.www_authenticate)
                if exc.status == 403:
                    if not challenge or challenge.error != "insufficient_scope":
                        raise Abort("The server refused access (HTTP 403).") from None
                    step_ups += 1
                    if step_ups > MAX_STEP_UPS:
                        raise Abort(
                            "Gave up after repeated step-up requests."
                        ) from None
                authorizations += 1
                if authorizations > MAX_AUTHORIZATIONS:
                    raise Abort("Too many authorization attempts.") from None
                server.refresh_from_db()
                save_challenge(server, challenge)
                self.authorize(browser, server)

    def session(self, http, server: McpServer, version: str):
        def token() -> str | None:
            try:
                return access_token_for(server, http=http)
            except (NeedsReauthorization, TokenUnavailable):
                return None

        def fresh_token() -> str | None:
            try:
                return access_token_for(server, http=http, force_refresh=True)
            except (NeedsReauthorization, TokenUnavailable):
                return None

        with McpSession(
            http,
            server.url,
            token_provider=token,
            on_unauthorized=fresh_token,
            transport="streamable-http",
            protocol_version=version,
            client_info=("mcp-settings-conformance", "1"),
        ) as session:
            if version not in STATELESS_VERSIONS:
                session.initialize()
            tools = session.list_tools()
            if tools:
                session.call_tool(tools[0].name, {})

    def authorize(self, browser: Client, server: McpServer) -> None:
        """The user clicks Authorize, consents at the AS, and comes back."""
        t0 = time.monotonic()
        response = browser.post(reverse("oauth:authorize", args=[server.pk]))
        location = response.headers.get("Location", "")
        if not location.startswith(("http://", "https://")):
            raise Abort(self.page_error(browser) or "Authorization could not start.")
        self.log(f"authorization URL ready in {1000 * (time.monotonic() - t0):.0f} ms")

        # The "browser": the mock AS approves at once with one redirect.
        answer = httpx.get(location, follow_redirects=False, timeout=10)
        back = answer.headers.get("Location", "")
        if not back.startswith(settings.OAUTH_REDIRECT_URI):
            raise Abort(f"The authorization server answered HTTP {answer.status_code}.")
        parts = urlsplit(back)
        callback = browser.get(f"{parts.path}?{parts.query}")
        if (
            callback.status_code != 302
            or not OAuthCredential.objects.filter(
                server=server, status=OAuthCredential.Status.ACTIVE
            ).exists()
        ):
            raise Abort(self.page_error(browser, callback) or "The callback failed.")
        self.log(f"authorized in {1000 * (time.monotonic() - t0):.0f} ms")

    def page_error(self, browser: Client, response=None) -> str:
        """The message the settings page (or the callback page) shows."""
        if response is None or response.status_code == 302:
            response = browser.get(reverse("servers:list"))
        text = response.content.decode()
        found = re.findall(r'class="message error">([^<]+)<', text) or re.findall(
            r"<p>([^<]+)</p>", text
        )
        return found[0].strip() if found else ""

    def log(self, text: str) -> None:
        self.stderr.write(f"[mcp-settings] {text}")

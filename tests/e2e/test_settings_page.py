"""The settings page in a real browser: the Add dialog, its probe, OAuth.

Debian's chromium (Playwright) against the app on pytest-django's live
server, and real peers on 127.0.0.1, nothing mocked: the official SDK's MCP
server (open, slow, or token-only) and oidc-provider with its login and
consent forms in front of a protected SDK server.

Probes are counted twice: on the network (``page.on("request")``) and in the
page, where an init script wraps ``XMLHttpRequest.prototype.send`` to note
whether the dialog was open at the moment a request left, and a
MutationObserver records every probe result ever inserted, so "never shown"
means never, not just "not shown at the end".

Screenshots of each state go to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from oauth.models import OAuthCredential, PendingAuthorization
from servers import services
from servers.checks import check_server
from servers.models import McpServer
from tests.peers.mcp_server import start_mcp_server
from tests.peers.oauth_peers import (
    AuthServer,
    start_authorization_server,
    start_protected_mcp_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_TOOLS = ["echo", "add", "log_then_echo", "sleep"]
OPEN_TOOLS = [*BASE_TOOLS, "tool_001", "tool_002", "tool_003"]  # tools=3
PROTECTED_TOOLS = ["echo", "whoami"]
# The slow peer sleeps this long before each HTTP request. A probe makes four
# (initialize, initialized, tools/list, DELETE), so its answer, 5 tools,
# would come about 4 × SLOW_DELAY seconds after it was sent.
SLOW_DELAY = 1.0
SLOW_PROBE_SECONDS = 4 * SLOW_DELAY + 0.5
DEBOUNCE_SECONDS = 0.7
KEY_DELAY_MS = 40
IDLE_TEXT = "Type the server's URL: it is checked as you type."
SPINNER = re.compile(r"\bhtmx-request\b")


# --- peers (module scope: started once) ------------------------------------------


@pytest.fixture(scope="module")
def open_url() -> Iterator[str]:
    with start_mcp_server(tools=3) as url:
        yield url


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    with start_mcp_server(delay=SLOW_DELAY, tools=1) as url:
        yield url


@pytest.fixture(scope="module")
def token_url() -> Iterator[str]:
    """401 with a bare ``WWW-Authenticate: Bearer`` (and no OAuth metadata
    anywhere) unless the token is ``right``."""
    with start_mcp_server(require_token="right") as url:
        yield url


@pytest.fixture(scope="module")
def closed_url() -> str:
    """An MCP URL on a port of 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"


# --- per test ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _app(app_url, settings) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "loopback"
    assert not settings.OAUTH_CLIENT_METADATA_URL  # so DCR at oidc-provider
    # Probe rate limits and Add submissions are counted in the cache, keyed by
    # user id, and ids are reused after every transactional test.
    cache.clear()


# Runs before any page script. window.__sends: every XHR as it leaves, with
# whether the Add dialog was open then. window.__results: every probe result
# ever inserted into the page, whether or not it stays.
INSTRUMENT = """
window.__sends = [];
window.__results = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url) {
  this.__url = String(url);
  return open.apply(this, arguments);
};
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function () {
  const dialog = document.getElementById("add-dialog");
  window.__sends.push({ url: this.__url, dialogOpen: !!(dialog && dialog.open) });
  return send.apply(this, arguments);
};
new MutationObserver((mutations) => {
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      const found = node.matches(".probe-result")
        ? [node] : [...node.querySelectorAll(".probe-result")];
      for (const el of found) {
        window.__results.push({
          outcome: el.dataset.outcome,
          text: el.textContent.replace(/\\s+/g, " ").trim(),
        });
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def is_probe(request) -> bool:
    return request.method == "POST" and urlsplit(request.url).path == "/servers/probe/"


def form_of(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.post_data or "").items()}


class Probes:
    """Every probe POST the page sends (network view), with its form fields."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sent: list[dict] = []
        page.on("request", lambda r: self.sent.append(form_of(r)) if is_probe(r) else 0)

    def urls(self) -> list[str]:
        return [probe.get("url", "") for probe in self.sent]

    def in_page(self) -> list[dict]:
        """The same probes as seen leaving the page (needs INSTRUMENT)."""
        sends = self.page.evaluate("window.__sends")
        return [s for s in sends if urlsplit(s["url"]).path == "/servers/probe/"]

    def expect_none_after_close(self) -> None:
        in_page = self.in_page()
        assert len(in_page) == len(self.sent), (in_page, self.sent)
        assert all(send["dialogOpen"] for send in in_page), in_page


class Dialog:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.element = page.locator("#add-dialog")
        self.url = page.locator("#add-url")
        self.token = page.locator("#add-token")
        self.area = page.locator("#probe-area")
        self.result = page.locator("#probe-area .probe-result")
        self.primary = page.locator("#probe-area [data-primary]")
        self.error = page.locator("#dialog-error")

    def open(self) -> Dialog:
        self.page.locator(".page-head [data-open-dialog]").click()
        expect(self.element).to_be_visible()
        return self

    def type_url(self, url: str, delay: int = KEY_DELAY_MS) -> None:
        self.url.press_sequentially(url, delay=delay)

    @staticmethod
    def clear(field) -> None:
        field.press("Control+a")
        field.press("Backspace")

    def expect_outcome(self, outcome: str, *words: str) -> None:
        expect(self.result).to_have_attribute("data-outcome", outcome, timeout=15_000)
        for text in words:
            expect(self.result).to_contain_text(text)

    def expect_idle(self) -> None:
        expect(self.result).to_have_count(0)
        expect(self.area.locator(".probe-idle")).to_have_text(IDLE_TEXT)
        expect(self.area).to_have_attribute("data-next-action", "")
        expect(self.area).not_to_have_class(SPINNER)
        expect(self.primary).to_have_text("Add server")
        expect(self.primary).to_be_disabled()
        expect(self.url).to_have_value("")
        expect(self.error).to_be_empty()

    def tools(self):
        return self.result.locator(".tool-chips li")


def shown_results(page: Page) -> list[dict]:
    return page.evaluate("window.__results")


def servers_of(user):
    return McpServer.objects.filter(owner=user)


def card(page: Page, server: McpServer):
    return page.locator(f"#server-{server.pk}")


def expect_card_tools(page: Page, server: McpServer, names: list[str]) -> None:
    tools = card(page, server).locator("details.tools")
    expect(tools.locator("summary")).to_have_text(f"{len(names)} tools")
    tools.locator("summary").click()
    expect(tools).to_have_attribute("open", "")
    expect(tools.locator("li code")).to_have_text(names)


def expect_message(page: Page, text: str) -> None:
    expect(page.locator("ul.messages")).to_contain_text(text)


def wait_until(page: Page, moment: float) -> None:
    """Let time pass (``time.monotonic()`` reaching ``moment``) with the
    browser's events flowing."""
    page.wait_for_timeout(max(0.0, moment - time.monotonic()) * 1000)


# --- 1. typing probes once; Add ------------------------------------------------------


def test_typing_a_url_probes_once_and_adds_a_connected_server(
    page, sign_in, open_url, screenshot
):
    user = sign_in(page)
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    screenshot(page, "01-empty-page")
    probes = Probes(page)
    dialog = Dialog(page).open()
    expect(dialog.url).to_be_focused()
    dialog.expect_idle()
    screenshot(page, "02-dialog-idle")

    dialog.type_url(open_url)  # about 1 s of keystrokes, 40 ms apart

    dialog.expect_outcome(
        "connected", "Connection successful", "The server answered and offers 7 tools."
    )
    expect(dialog.tools()).to_have_text(OPEN_TOOLS)
    expect(dialog.result).to_contain_text("It will be added as “localhost-")
    expect(dialog.area).to_have_attribute("data-next-action", "add")
    expect(dialog.primary).to_have_text("Add server")
    expect(dialog.primary).to_be_enabled()
    assert probes.urls() == [open_url]  # once, not once per keystroke
    screenshot(page, "03-outcome-connected")

    dialog.primary.click()

    expect(page.locator(".cards > li")).to_have_count(1)
    (server,) = servers_of(user)
    assert server.status == McpServer.Status.CONNECTED
    assert server.url == open_url
    assert [tool["name"] for tool in server.tools] == OPEN_TOOLS
    expect(dialog.element).to_be_hidden()
    expect_message(page, f"Added “{server.name}”. 7 tools available.")
    expect(card(page, server)).to_have_attribute("data-status", "connected")
    expect(card(page, server).locator(".status-line")).to_have_text(
        "Connected · 7 tools available."
    )
    expect(card(page, server).locator(".badge")).to_have_text("No credential")
    expect_card_tools(page, server, OPEN_TOOLS)
    screenshot(page, "04-card-connected")
    assert probes.urls() == [open_url]  # leaving the field did not probe again


# --- 2. a slow probe overtaken by a fast one -----------------------------------------


def test_a_slow_probe_overtaken_by_a_new_url_never_shows(
    page, sign_in, slow_url, open_url, screenshot
):
    page.add_init_script(INSTRUMENT)
    sign_in(page)
    probes = Probes(page)
    dialog = Dialog(page).open()
    with page.expect_request(lambda r: is_probe(r) and form_of(r)["url"] == slow_url):
        dialog.type_url(slow_url)
    slow_answer_due = time.monotonic() + SLOW_PROBE_SECONDS
    expect(dialog.area).to_have_class(SPINNER)
    expect(dialog.area.locator(".probe-progress")).to_be_visible()
    screenshot(page, "02b-dialog-checking")

    dialog.clear(dialog.url)
    dialog.type_url(open_url)

    dialog.expect_outcome("connected", "offers 7 tools")
    assert time.monotonic() < slow_answer_due  # B really did overtake A
    wait_until(page, slow_answer_due)
    assert probes.urls() == [slow_url, open_url]
    shown = shown_results(page)
    assert len(shown) == 1, shown  # A's answer (5 tools) was never shown
    assert "offers 7 tools" in shown[0]["text"] and "tool_003" in shown[0]["text"]
    expect(dialog.tools()).to_have_text(OPEN_TOOLS)
    expect(dialog.primary).to_be_enabled()


# --- 3. closing the dialog sends and shows nothing -----------------------------------


@pytest.mark.parametrize("reopen_at_once", [False, True])
def test_closing_before_the_debounce_sends_no_probe(
    page, sign_in, open_url, reopen_at_once
):
    page.add_init_script(INSTRUMENT)
    sign_in(page)
    probes = Probes(page)
    dialog = Dialog(page).open()
    dialog.type_url(open_url, delay=5)
    page.keyboard.press("Escape")  # well within 700 ms of the last key
    expect(dialog.element).to_be_hidden()
    if reopen_at_once:  # while the typing's debounce timer still runs
        dialog.open()
    page.wait_for_timeout((DEBOUNCE_SECONDS + 0.8) * 1000)

    assert probes.sent == []
    probes.expect_none_after_close()
    if not reopen_at_once:
        dialog.open()
    dialog.expect_idle()
    assert shown_results(page) == []


def test_closing_with_a_probe_in_flight_shows_nothing_on_reopen(
    page, sign_in, slow_url
):
    page.add_init_script(INSTRUMENT)
    sign_in(page)
    probes = Probes(page)
    dialog = Dialog(page).open()
    with page.expect_request(is_probe):
        dialog.type_url(slow_url)
    slow_answer_due = time.monotonic() + SLOW_PROBE_SECONDS
    expect(dialog.area).to_have_class(SPINNER)

    page.keyboard.press("Escape")
    expect(dialog.element).to_be_hidden()
    wait_until(page, slow_answer_due)
    dialog.open()

    dialog.expect_idle()
    assert probes.urls() == [slow_url]
    probes.expect_none_after_close()
    assert shown_results(page) == []


def test_cancel_right_after_typing_sends_nothing(page, sign_in, open_url):
    page.add_init_script(INSTRUMENT)
    sign_in(page)
    probes = Probes(page)
    dialog = Dialog(page).open()
    dialog.type_url(open_url, delay=5)

    dialog.element.get_by_role("button", name="Cancel").click()

    expect(dialog.element).to_be_hidden()
    page.wait_for_timeout((DEBOUNCE_SECONDS + 0.8) * 1000)
    probes.expect_none_after_close()
    # Leaving the URL field for Cancel abandons it: no probe at all.
    assert probes.sent == []
    dialog.open()
    dialog.expect_idle()
    assert shown_results(page) == []


# --- 4. each outcome, in its words ---------------------------------------------------


def test_token_only_then_token_rejected_then_accepted(
    page, sign_in, token_url, screenshot
):
    user = sign_in(page)
    probes = Probes(page)
    dialog = Dialog(page).open()

    dialog.url.fill(token_url)

    # A bare ``WWW-Authenticate: Bearer`` with no OAuth metadata anywhere is
    # "auth_without_oauth" in servers/probing.py (discovery finds nothing), not
    # "token_only" (which needs OAuth metadata this app cannot use).
    dialog.expect_outcome(
        "auth_without_oauth",
        "Authentication required",
        "This server requires authentication and offers no sign-in this app can "
        "use. Paste a token or API key in the Token field.",
    )
    expect(dialog.area).to_have_attribute("data-next-action", "")
    expect(dialog.primary).to_have_text("Add server")
    expect(dialog.primary).to_be_disabled()
    screenshot(page, "05-outcome-auth-without-oauth")

    dialog.token.press_sequentially("wrong", delay=KEY_DELAY_MS)
    dialog.expect_outcome(
        "token_rejected",
        "Token rejected",
        "The server rejected this token. Check that it is current and has access "
        "to this server, then paste it again.",
    )
    expect(dialog.primary).to_be_disabled()
    screenshot(page, "06-outcome-token-rejected")

    dialog.clear(dialog.token)
    dialog.token.press_sequentially("right", delay=KEY_DELAY_MS)
    dialog.expect_outcome("connected", "offers 4 tools")
    expect(dialog.primary).to_be_enabled()
    assert [p.get("token", "") for p in probes.sent] == ["", "wrong", "right"]

    dialog.primary.click()

    expect(page.locator(".cards > li")).to_have_count(1)
    (server,) = servers_of(user)
    assert server.status == McpServer.Status.CONNECTED
    assert server.auth_kind == McpServer.AuthKind.BEARER
    expect(card(page, server)).to_have_attribute("data-status", "connected")
    expect(card(page, server).locator(".badge")).to_have_text("Token saved")
    assert "right" not in page.content()  # write-only


@pytest.mark.parametrize(
    "outcome", ["not_mcp", "unreachable", "invalid_url", "oauth_available"]
)
def test_probe_outcome_words(
    page, sign_in, screenshot, settings, request, app_url, closed_url, outcome
):
    if outcome == "not_mcp":
        url = f"{app_url}/mcp"  # this very app: an HTML 404 page
        words = ["Not an MCP endpoint", "Check the path: MCP servers usually end in"]
    elif outcome == "unreachable":
        url = closed_url
        words = [
            "Unreachable",
            f"Could not connect to 127.0.0.1 on port {urlsplit(url).port}: the "
            "connection was refused or the host is unreachable.",
        ]
    elif outcome == "invalid_url":
        url = request.getfixturevalue("open_url")
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = "false"  # as in production
        words = ["Check the input", "Use https://."]
    else:
        url = request.getfixturevalue("form_mcp_url")
        issuer = request.getfixturevalue("form_auth_server").issuer
        words = [
            "Authorization required",
            f"This server signs in with OAuth at {issuer}. Add it and authorize "
            "to connect.",
        ]
    sign_in(page)
    dialog = Dialog(page).open()

    dialog.url.fill(url)

    dialog.expect_outcome(outcome, *words)
    if outcome == "oauth_available":
        expect(dialog.area).to_have_attribute("data-next-action", "authorize")
        expect(dialog.primary).to_have_text("Add & Authorize")
        expect(dialog.primary).to_be_enabled()
    else:
        expect(dialog.area).to_have_attribute("data-next-action", "")
        expect(dialog.primary).to_have_text("Add server")
        expect(dialog.primary).to_be_disabled()
    screenshot(page, f"07-outcome-{outcome.replace('_', '-')}")


# --- 5, 6. Add & Authorize with the real authorization server ------------------------


def add_and_authorize(page: Page, url: str, form_auth_server: AuthServer) -> None:
    """From the settings page to the AS's consent page, signing in there."""
    dialog = Dialog(page).open()
    dialog.url.fill(url)
    dialog.expect_outcome("oauth_available")
    dialog.primary.click()
    page.wait_for_url(f"{form_auth_server.issuer}/interaction/**")
    page.fill("#username", "test-user")
    page.fill("#password", "test-password")
    page.click("#login")
    expect(page.locator("#allow")).to_be_visible()


def test_add_and_authorize_round_trip(
    page, sign_in, app_url, form_auth_server, form_mcp_url, screenshot
):
    user = sign_in(page)
    add_and_authorize(page, form_mcp_url, form_auth_server)
    expect(page.locator("#resources")).to_contain_text(form_mcp_url)
    screenshot(page, "08-as-consent")

    page.click("#allow")

    page.wait_for_url(f"{app_url}/servers/")
    (server,) = servers_of(user)
    assert server.auth_kind == McpServer.AuthKind.OAUTH
    assert server.status == McpServer.Status.CONNECTED, server.status_message
    assert OAuthCredential.objects.get(server=server).issuer == form_auth_server.issuer
    assert not PendingAuthorization.objects.exists()
    expect(page.locator("ul.messages .message")).to_have_class("message success")
    expect_message(page, f"“{server.name}” is authorized and connected.")
    expect(card(page, server)).to_have_attribute("data-status", "connected")
    expect(card(page, server).locator(".status-line")).to_have_text(
        "Connected · 2 tools available."
    )
    expect(card(page, server).locator(".badge")).to_have_text("OAuth")
    facts = card(page, server).locator(".facts")
    expect(facts).to_contain_text(form_auth_server.issuer)
    expect_card_tools(page, server, PROTECTED_TOOLS)
    screenshot(page, "09-card-oauth-connected")


def test_declined_consent_leaves_a_card_to_authorize(
    page, sign_in, app_url, form_auth_server, form_mcp_url, screenshot
):
    user = sign_in(page)
    add_and_authorize(page, form_mcp_url, form_auth_server)

    page.click("#deny")

    page.wait_for_url(f"{app_url}/servers/")
    (server,) = servers_of(user)
    assert server.status == McpServer.Status.NEEDS_AUTHORIZATION
    assert not OAuthCredential.objects.exists()
    expect(page.locator("ul.messages .message")).to_have_class("message warning")
    expect_message(page, "Authorization was declined.")
    expect(card(page, server)).to_have_attribute("data-status", "needs_authorization")
    expect(card(page, server).locator(".status-line")).to_have_text(
        "Needs authorization · Authorization was declined. Authorize again to connect."
    )
    actions = card(page, server).locator(".card-actions")
    expect(actions.locator(".primary")).to_have_text("Authorize")
    expect(actions.get_by_role("button", name="Disconnect")).to_have_count(0)
    screenshot(page, "10-card-declined")


# --- 7. one submission, one server ---------------------------------------------------

# Both requests at once with the dialog's form and submission id, as a browser
# without htmx's hx-sync "drop" would send them: the server must add once.
TWO_POSTS = """async () => {
  const form = document.getElementById("add-form");
  const post = () => fetch(form.getAttribute("action"), {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    headers: { "HX-Request": "true", "X-CSRFToken": form.csrfmiddlewaretoken.value },
  }).then((r) => r.headers.get("HX-Redirect"));
  return Promise.all([post(), post()]);
}"""


@pytest.mark.parametrize("gesture", ["dblclick", "enter_and_click", "two_posts"])
def test_a_double_submission_adds_one_server(page, sign_in, open_url, gesture):
    user = sign_in(page)
    dialog = Dialog(page).open()
    dialog.url.fill(open_url)
    dialog.expect_outcome("connected")
    expect(dialog.primary).to_be_enabled()

    if gesture == "dblclick":
        dialog.primary.dblclick()
    elif gesture == "enter_and_click":
        box = dialog.primary.bounding_box()
        dialog.url.press("Enter")
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    else:
        assert page.evaluate(TWO_POSTS) == ["/servers/", "/servers/"]
        page.goto(page.url)

    expect(page.locator(".cards > li")).to_have_count(1)
    page.wait_for_timeout(500)  # a second submission would have landed by now
    assert servers_of(user).count() == 1
    expect(page.locator("ul.messages .message")).to_have_count(1)


# --- 8. a failure before the redirect adds nothing -----------------------------------


def test_authorize_failing_before_the_redirect_adds_nothing(
    page, sign_in, app_url, require_node, screenshot
):
    user = sign_in(page)
    with (
        start_authorization_server(interactive="auto") as doomed,
        start_protected_mcp_server(doomed.issuer) as url,
    ):
        dialog = Dialog(page).open()
        dialog.url.fill(url)
        dialog.expect_outcome("oauth_available")
        # The authorization server goes away between the probe and the click.
        doomed.process.terminate()
        doomed.process.wait(timeout=5)

        dialog.primary.click()

        expect(dialog.error).to_contain_text(
            "Nothing was added. No usable authorization server metadata was found."
        )
        expect(dialog.error).to_contain_text(doomed.issuer)
    expect(dialog.element).to_be_visible()
    expect(dialog.error).to_be_focused()
    assert page.evaluate(
        "document.getElementById('add-dialog').contains(document.activeElement)"
    )
    expect(dialog.primary).to_have_text("Add & Authorize")
    expect(dialog.primary).to_be_enabled()  # the user can try again
    assert page.url == f"{app_url}/servers/"
    assert not servers_of(user).exists()
    assert not PendingAuthorization.objects.exists()
    screenshot(page, "11-dialog-error")


# --- 9. re-authorize, disconnect, delete ---------------------------------------------


def test_reauthorize_disconnect_and_delete(
    page, sign_in, app_url, form_auth_server, form_mcp_url, screenshot
):
    user = sign_in(page)
    add_and_authorize(page, form_mcp_url, form_auth_server)
    page.click("#allow")
    page.wait_for_url(f"{app_url}/servers/")
    (server,) = servers_of(user)
    first = OAuthCredential.objects.get(server=server)
    requests = []
    page.on("request", lambda r: requests.append(r.url))

    # Still signed in at the AS, with a grant for these scopes: it shows no
    # page and sends the browser straight back with a new code.
    with (
        page.expect_response(
            lambda r: r.url.startswith(f"{app_url}/oauth/callback?")
        ) as callback,
        page.expect_navigation(url=f"{app_url}/servers/"),
    ):
        card(page, server).get_by_role("button", name="Re-authorize").click()

    assert callback.value.status == 302
    assert any(url.startswith(f"{form_auth_server.issuer}/auth?") for url in requests)
    second = OAuthCredential.objects.get(server=server)
    assert second.pk != first.pk and second.access_token != first.access_token
    server.refresh_from_db()
    assert server.status == McpServer.Status.CONNECTED, server.status_message
    expect_message(page, f"“{server.name}” is authorized and connected.")
    expect(card(page, server)).to_have_attribute("data-status", "connected")
    expect(card(page, server).locator(".badge")).to_have_text("OAuth")

    card(page, server).get_by_role("button", name="Disconnect").click()

    expect_message(page, f"Disconnected “{server.name}”. Its tokens were deleted here")
    assert not OAuthCredential.objects.exists()
    expect(card(page, server)).to_have_attribute("data-status", "needs_authorization")
    expect(card(page, server).locator(".status-line")).to_have_text(
        "Needs authorization · Disconnected. Authorize again to connect."
    )
    expect(card(page, server).locator(".badge")).to_have_text("No credential")
    expect(card(page, server).locator(".card-actions .primary")).to_have_text(
        "Authorize"
    )
    screenshot(page, "12-card-disconnected")

    card(page, server).get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name=f"Delete “{server.name}”?")).to_be_visible()
    page.get_by_role("button", name="Delete server").click()

    expect_message(page, f"Deleted “{server.name}”.")
    assert page.url == f"{app_url}/servers/"
    expect(page.locator(".cards > li")).to_have_count(0)
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    assert not servers_of(user).exists()


# --- 10. keyboard only ---------------------------------------------------------------


def test_keyboard_only(page, sign_in, open_url):
    user = sign_in(page)
    opener = page.locator(".page-head [data-open-dialog]")
    for _ in range(10):
        page.keyboard.press("Tab")
        if opener.evaluate("el => el === document.activeElement"):
            break
    expect(opener).to_be_focused()

    page.keyboard.press("Enter")

    dialog = Dialog(page)
    expect(dialog.element).to_be_visible()
    expect(dialog.url).to_be_focused()
    page.keyboard.type(open_url, delay=KEY_DELAY_MS)
    dialog.expect_outcome("connected")
    page.keyboard.press("Enter")

    expect(page.locator(".cards > li")).to_have_count(1)
    (server,) = servers_of(user)
    assert server.status == McpServer.Status.CONNECTED
    expect(card(page, server)).to_have_attribute("data-status", "connected")


# --- cards in each state -------------------------------------------------------------


def test_cards_in_each_state(
    page, sign_in, app_url, open_url, token_url, closed_url, form_mcp_url, screenshot
):
    user = sign_in(page)
    # name: (url, token, status, status words, the card's primary action)
    cards = {
        "open": (open_url, "", "connected", "Connected · 7 tools", None),
        "needs-token": (token_url, "", "token_only", "Needs a token", "Add token"),
        "bad-token": (
            token_url,
            "x",
            "token_rejected",
            "Token rejected",
            "Update token",
        ),
        "oauth": (form_mcp_url, "", "needs_authorization", "Needs auth", "Authorize"),
        "gone": (closed_url, "", "unreachable", "Unreachable", "Retry"),
        "web-page": (f"{app_url}/mcp", "", "not_mcp", "Not an MCP endpoint", "Retry"),
    }
    for name, (url, token, *_) in cards.items():
        check_server(
            services.create_server(owner=user, url=url, name=name, token=token)
        )

    page.reload()

    for name, (_, _, status, words, action) in cards.items():
        server = servers_of(user).get(name=name)
        assert server.status == status, (name, server.status_message)
        expect(card(page, server)).to_have_attribute("data-status", status)
        expect(card(page, server).locator(".status-line")).to_contain_text(words)
        primary = card(page, server).locator(".card-actions .primary")
        if action is None:
            expect(primary).to_have_count(0)
        else:
            expect(primary).to_have_text(action)
    screenshot(page, "13-cards-each-state")

    # Retry re-checks through htmx and swaps just that card.
    gone = servers_of(user).get(name="gone")
    page.evaluate("window.__samePage = true")
    with page.expect_response(lambda r: r.url.endswith(f"/servers/{gone.pk}/check/")):
        card(page, gone).get_by_role("button", name="Retry").click()
    expect(card(page, gone)).to_have_attribute("data-status", "unreachable")
    assert page.evaluate("window.__samePage") is True
    checked = servers_of(user).get(name="gone").last_checked_at
    assert checked > gone.last_checked_at

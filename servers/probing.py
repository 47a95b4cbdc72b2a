"""The probe behind the Add dialog: what is at this URL, and what to do next.

Runs, through the guarded client with short timeouts: MCP initialize and
tools/list → on 401 read ``WWW-Authenticate`` → OAuth discovery. Each
outcome has its own words and next action (DESIGN.md "Probe"; the seed's
decision table in seed-behaviour.md §2.2, with its gaps §10.3 items 24-25
closed: token-only servers, 401 without OAuth, and which network failure).

A pasted token that is rejected is reported as such without consulting
OAuth ("static config wins", seed §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError

from mcpsettings import outbound
from oauth import client as oauth

from . import rules
from .mcp_client import ProbeOutcome, probe

PROBES_PER_MINUTE = 30
# A probe answers within ~10 s even against a black hole or a trickling
# server: the whole MCP session gets 6 s, each discovery request 2 s.
PROBE_POLICY_TIMEOUTS = {
    "connect_timeout": 3.0,
    "read_timeout": 5.0,
    "total_timeout": 6.0,
}
MCP_PROBE_TIMEOUT = 6.0
DISCOVERY_TIMEOUTS = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 2.0}


class Outcome:
    CONNECTED = "connected"
    TOKEN_REJECTED = "token_rejected"
    OAUTH_AVAILABLE = "oauth_available"
    TOKEN_ONLY = "token_only"
    AUTH_WITHOUT_OAUTH = "auth_without_oauth"
    FORBIDDEN = "forbidden"
    NOT_MCP = "not_mcp"
    UNREACHABLE = "unreachable"
    BLOCKED = "blocked"
    SERVER_ERROR = "server_error"
    INVALID_URL = "invalid_url"
    RATE_LIMITED = "rate_limited"


# What the primary button of the dialog does after each outcome.
NEXT_ACTION = {
    Outcome.CONNECTED: "add",
    Outcome.OAUTH_AVAILABLE: "authorize",
}


@dataclass(frozen=True)
class ProbeReport:
    outcome: str
    title: str
    message: str
    tools: tuple[str, ...] = ()
    challenge: dict = field(default_factory=dict)

    @property
    def next_action(self) -> str | None:
        return NEXT_ACTION.get(self.outcome)

    @property
    def tone(self) -> str:
        if self.outcome == Outcome.CONNECTED:
            return "ok"
        if self.outcome in (Outcome.OAUTH_AVAILABLE, Outcome.TOKEN_ONLY):
            return "info"
        if self.outcome in (Outcome.TOKEN_REJECTED, Outcome.AUTH_WITHOUT_OAUTH):
            return "warn"
        return "error"


def rate_limited(user) -> bool:
    """At most PROBES_PER_MINUTE probes per user: a probe makes the server
    send requests to a URL of the user's choosing."""
    key = f"probe-rate:{user.pk}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=60)
        count = 1
    return count > PROBES_PER_MINUTE


def probe_client(timeouts: dict = PROBE_POLICY_TIMEOUTS) -> httpx.Client:
    policy = outbound.policy_from_settings()
    return outbound.make_client(
        policy=outbound.OutboundPolicy(allow=policy.allow, **timeouts)
    )


def probe_url(
    *, user, url: str, transport: str, token: str, http: httpx.Client | None = None
) -> ProbeReport:
    if rate_limited(user):
        return ProbeReport(
            Outcome.RATE_LIMITED,
            "Too many checks",
            f"You checked {PROBES_PER_MINUTE} URLs in the last minute. "
            "Wait a moment, then try again.",
        )
    try:
        url = rules.normalize_server_url(
            url, allow_private=settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS
        )
        token = rules.clean_token(token) if token.strip() else ""
    except ValidationError as exc:
        return ProbeReport(Outcome.INVALID_URL, "Check the input", exc.messages[0])
    given = http
    http = given or probe_client()
    result = probe(
        http,
        url,
        token=token or None,
        transport=transport,
        timeout=MCP_PROBE_TIMEOUT,
        total_timeout=MCP_PROBE_TIMEOUT,
    )
    if result.ok:
        names = tuple(tool.name for tool in result.tools)
        count = len(names)
        return ProbeReport(
            Outcome.CONNECTED,
            "Connection successful",
            f"The server answered and offers {count} tool{'s' if count != 1 else ''}.",
            tools=names,
        )
    if result.outcome is ProbeOutcome.AUTH_REQUIRED:
        if token:
            return ProbeReport(
                Outcome.TOKEN_REJECTED,
                "Token rejected",
                "The server rejected this token. Check that it is current and "
                "has access to this server, then paste it again.",
            )
        challenge = oauth.bearer_challenge(list(result.www_authenticate))
        return classify_authorization(
            given or probe_client(DISCOVERY_TIMEOUTS), url, challenge
        )
    return describe_failure(result)


def classify_authorization(
    http: httpx.Client, url: str, challenge: oauth.BearerChallenge | None
) -> ProbeReport:
    """A 401 without a token: can this app authorize, or is a token needed?"""
    from oauth.models import ClientRegistration
    from oauth.services import allow_http_loopback, challenge_as_dict

    challenge_data = challenge_as_dict(challenge)
    try:
        discovery = oauth.discover(
            http, url, challenge=challenge, allow_http_loopback=allow_http_loopback()
        )
        metadata = discovery.authorization_server
        oauth.choose_registration_method(
            metadata,
            has_preregistered=ClientRegistration.objects.filter(
                issuer=metadata.issuer,
                redirect_uri=settings.OAUTH_REDIRECT_URI,
                kind=ClientRegistration.Kind.PRE_REGISTERED,
            ).exists(),
            cimd_url=settings.OAUTH_CLIENT_METADATA_URL or None,
        )
    except oauth.NoRegistrationMethod:
        return _token_only(challenge_data)
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        if isinstance(exc, oauth.DiscoveryError) and _advertises_oauth(exc):
            # OAuth is advertised but unusable here (seed §2.3 step 3).
            return _token_only(challenge_data, reason=exc.message)
        return ProbeReport(
            Outcome.AUTH_WITHOUT_OAUTH,
            "Authentication required",
            "This server requires authentication and offers no sign-in this app "
            "can use. Paste a token or API key in the Token field.",
            challenge=challenge_data,
        )
    return ProbeReport(
        Outcome.OAUTH_AVAILABLE,
        "Authorization required",
        f"This server signs in with OAuth at {metadata.issuer}. Add it and "
        "authorize to connect.",
        challenge=challenge_data,
    )


def _advertises_oauth(exc: oauth.DiscoveryError) -> bool:
    # Protected resource metadata was found (so an AS was named) but the AS
    # failed validation: these errors only arise after that point.
    return isinstance(
        exc, oauth.IssuerMismatch | oauth.PkceUnsupported | oauth.InsecureEndpoint
    )


def _token_only(challenge: dict, reason: str = "") -> ProbeReport:
    detail = f" ({reason})" if reason else ""
    return ProbeReport(
        Outcome.TOKEN_ONLY,
        "Access token required",
        "This server uses OAuth, but not in a way this app can sign in with"
        f"{detail}. Paste a personal access token or API key in the Token field, "
        "then check again.",
        challenge=challenge,
    )


def describe_failure(result) -> ProbeReport:
    error = result.error
    if isinstance(error, outbound.BlockedAddress | outbound.InsecureScheme):
        return ProbeReport(Outcome.BLOCKED, "Address not allowed", error.message)
    if result.outcome is ProbeOutcome.FORBIDDEN:
        return ProbeReport(
            Outcome.FORBIDDEN,
            "Access refused",
            "The server refused access (HTTP 403). The account or token may lack "
            "permission for this server.",
        )
    if result.outcome is ProbeOutcome.NOT_MCP:
        return ProbeReport(
            Outcome.NOT_MCP,
            "Not an MCP endpoint",
            f"{result.message} Check the path: MCP servers usually end in /mcp "
            "(or /sse for older ones).",
        )
    if result.outcome in (ProbeOutcome.SERVER_ERROR, ProbeOutcome.PROTOCOL_ERROR):
        return ProbeReport(
            Outcome.SERVER_ERROR,
            "Server error",
            f"{result.message} Try again later.",
        )
    message = outbound.describe(error) if error else result.message
    return ProbeReport(Outcome.UNREACHABLE, "Unreachable", message)

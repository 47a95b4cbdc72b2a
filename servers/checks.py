"""Checking a saved server: connect with its credential, list its tools, and
record what happened on the server's card.

The credential is the static token, or a valid OAuth access token (refreshed
first when due, under the refresh lease). A 401 with an OAuth credential
refreshes once and retries once (seed-behaviour.md §10.3 item 20).
"""

from __future__ import annotations

import httpx
from django.utils import timezone

from mcpsettings import outbound
from oauth import client as oauth
from oauth.refresh import NeedsReauthorization, TokenUnavailable, access_token_for

from .audit import record
from .mcp_client import ProbeOutcome, ProbeResult, probe
from .models import AuditEvent, McpServer, StaticToken

Status = McpServer.Status
MAX_TOOLS_KEPT = 200


def check_server(server: McpServer, *, http: httpx.Client | None = None) -> McpServer:
    """Probe ``server`` with its credential and save status, message, tools."""
    http = http or outbound.make_client()
    try:
        result = _probe_with_credential(server, http)
    except NeedsReauthorization as exc:
        return _save(server, Status.NEEDS_AUTHORIZATION, exc.message)
    except TokenUnavailable as exc:
        return _save(server, Status.ERROR, exc.message)
    return _save_result(server, result, http)


def _probe_with_credential(server: McpServer, http: httpx.Client) -> ProbeResult:
    if server.auth_kind == McpServer.AuthKind.OAUTH:
        result = probe(
            http,
            server.url,
            token=access_token_for(server, http=http),
            transport=server.transport,
        )
        if result.outcome is ProbeOutcome.AUTH_REQUIRED:
            token = access_token_for(server, http=http, force_refresh=True)
            if token:
                result = probe(
                    http, server.url, token=token, transport=server.transport
                )
        return result
    static = StaticToken.objects.filter(server=server).first()
    return probe(
        http,
        server.url,
        token=static.token if static else None,
        transport=server.transport,
    )


def _save_result(
    server: McpServer, result: ProbeResult, http: httpx.Client
) -> McpServer:
    if result.ok:
        tools = [
            {"name": t.name, "title": t.title or "", "description": t.description or ""}
            for t in result.tools[:MAX_TOOLS_KEPT]
        ]
        count = len(result.tools)
        noun = "tool" if count == 1 else "tools"
        return _save(server, Status.CONNECTED, f"{count} {noun} available.", tools)
    if result.outcome in (ProbeOutcome.AUTH_REQUIRED, ProbeOutcome.FORBIDDEN):
        return _save_auth_failure(server, result, http)
    if result.outcome is ProbeOutcome.NOT_MCP:
        return _save(server, Status.NOT_MCP, result.message)
    if result.outcome in (ProbeOutcome.SERVER_ERROR, ProbeOutcome.PROTOCOL_ERROR):
        return _save(server, Status.ERROR, result.message)
    message = outbound.describe(result.error) if result.error else result.message
    return _save(server, Status.UNREACHABLE, message)


def _save_auth_failure(
    server: McpServer, result: ProbeResult, http: httpx.Client
) -> McpServer:
    from oauth.services import save_challenge

    challenge = oauth.bearer_challenge(list(result.www_authenticate))
    save_challenge(server, challenge)
    insufficient = bool(challenge and challenge.error == "insufficient_scope")
    if server.auth_kind == McpServer.AuthKind.BEARER:
        return _save(
            server,
            Status.TOKEN_REJECTED,
            "The server rejected the saved token. Paste a new one.",
        )
    if server.auth_kind == McpServer.AuthKind.OAUTH:
        message = (
            "The server needs more permissions. Re-authorize to grant them."
            if insufficient
            else "The server no longer accepts the authorization. Authorize again."
        )
        return _save(server, Status.NEEDS_AUTHORIZATION, message)
    if result.outcome is ProbeOutcome.FORBIDDEN:
        return _save(server, Status.ERROR, "The server refused access (HTTP 403).")
    from .probing import Outcome, classify_authorization

    report = classify_authorization(http, server.url, challenge)
    if report.outcome == Outcome.OAUTH_AVAILABLE:
        return _save(
            server,
            Status.NEEDS_AUTHORIZATION,
            "This server signs in with OAuth. Authorize to connect.",
        )
    return _save(
        server,
        Status.TOKEN_ONLY,
        "This server needs a token. Add a personal access token or API key.",
    )


def _save(
    server: McpServer, status: str, message: str, tools: list | None = None
) -> McpServer:
    server.status = status
    server.status_message = (message or "")[:500]
    if tools is not None:
        server.tools = tools
    server.last_checked_at = timezone.now()
    fields = ["status", "status_message", "last_checked_at", "updated_at"]
    if tools is not None:
        fields.append("tools")
    server.save(update_fields=fields)
    record(AuditEvent.Kind.PROBE, server=server, detail={"status": status})
    return server

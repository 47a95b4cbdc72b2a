"""Writes to servers and their static tokens. Keyword-only, owner explicit.

Each service validates its input with ``servers.rules`` (so every caller,
not only the forms, gets the same rules), writes in one transaction and
records an audit event.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import rules
from .audit import record
from .models import NAME_MAX_LENGTH, AuditEvent, McpServer, StaticToken

Kind = AuditEvent.Kind


def _allow_private() -> str:
    return settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS


def _resource_of(url: str) -> tuple[str, str, str]:
    """Origin and path: what an OAuth token is bound to (the query is not)."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path


def _free_name(owner, base: str, *, exclude_pk=None) -> str:
    """``base``, or ``base-2``, ``base-3``… when the owner already uses it."""
    base = (base or "server")[:NAME_MAX_LENGTH]
    taken = set(
        McpServer.objects.filter(owner=owner, name__startswith=base)
        .exclude(pk=exclude_pk)
        .values_list("name", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: NAME_MAX_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _resolve_name(owner, name: str, url: str, *, exclude_pk=None) -> tuple[str, bool]:
    name = (name or "").strip()
    if not name:
        return _free_name(owner, rules.derive_name(url), exclude_pk=exclude_pk), False
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            {"name": f"Use at most {NAME_MAX_LENGTH} characters."}, code="too_long"
        )
    clash = McpServer.objects.filter(owner=owner, name=name).exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError(
            {"name": "You already have a server with this name. Pick another."},
            code="duplicate",
        )
    return name, True


@transaction.atomic
def create_server(
    *,
    owner,
    url: str,
    name: str = "",
    transport: str = McpServer.Transport.AUTO,
    token: str = "",
) -> McpServer:
    url = rules.normalize_server_url(url, allow_private=_allow_private())
    token = rules.clean_token(token) if token and token.strip() else ""
    name, custom = _resolve_name(owner, name, url)
    try:
        with transaction.atomic():
            server = McpServer.objects.create(
                owner=owner,
                name=name,
                name_is_custom=custom,
                url=url,
                transport=transport,
                auth_kind=McpServer.AuthKind.BEARER
                if token
                else McpServer.AuthKind.NONE,
            )
    except IntegrityError:
        # Another request took the name between the check and the insert.
        raise ValidationError(
            {"name": "You already have a server with this name. Pick another."}
        ) from None
    record(Kind.SERVER_ADDED, actor=owner, server=server, detail={"url": url})
    if token:
        StaticToken.objects.create(server=server, token=token)
        record(Kind.TOKEN_SET, actor=owner, server=server)
    return server


@transaction.atomic
def update_server(
    *,
    server: McpServer,
    actor,
    url: str,
    name: str = "",
    transport: str | None = None,
) -> McpServer:
    """Edit a server. A new URL or transport resets what was learnt about it.

    Renaming never touches the connection. A new origin or path (the OAuth
    resource) also drops OAuth tokens, which are revoked after commit.
    """
    url = rules.normalize_server_url(url, allow_private=_allow_private())
    new_name, custom = _resolve_name(server.owner, name, url, exclude_pk=server.pk)
    changes = {}
    if new_name != server.name:
        changes["name"] = [server.name, new_name]
    url_changed = url != server.url
    if url_changed:
        changes["url"] = [server.url, url]
    if transport and transport != server.transport:
        changes["transport"] = [server.transport, transport]
        server.transport = transport
    if url_changed or "transport" in changes:
        server.status = McpServer.Status.UNKNOWN
        server.status_message = ""
        server.tools = []
        server.last_checked_at = None
    resource_changed = url_changed and _resource_of(url) != _resource_of(server.url)
    server.name, server.name_is_custom, server.url = new_name, custom, url
    server.save()
    if resource_changed:
        from oauth.services import drop_credential_for_new_resource

        drop_credential_for_new_resource(server=server, actor=actor)
    if changes:
        record(Kind.SERVER_EDITED, actor=actor, server=server, detail=changes)
    return server


@transaction.atomic
def set_static_token(*, server: McpServer, actor, token: str) -> StaticToken:
    token = rules.clean_token(token)
    static, _ = StaticToken.objects.update_or_create(
        server=server, defaults={"token": token}
    )
    if server.auth_kind != McpServer.AuthKind.OAUTH:
        server.auth_kind = McpServer.AuthKind.BEARER
    server.status = McpServer.Status.UNKNOWN
    server.status_message = ""
    server.save(update_fields=["auth_kind", "status", "status_message", "updated_at"])
    record(Kind.TOKEN_SET, actor=actor, server=server)
    return static


@transaction.atomic
def clear_static_token(*, server: McpServer, actor) -> bool:
    deleted, _ = StaticToken.objects.filter(server=server).delete()
    if not deleted:
        return False
    if server.auth_kind == McpServer.AuthKind.BEARER:
        server.auth_kind = McpServer.AuthKind.NONE
    server.status = McpServer.Status.UNKNOWN
    server.status_message = ""
    server.save(update_fields=["auth_kind", "status", "status_message", "updated_at"])
    record(Kind.TOKEN_CLEARED, actor=actor, server=server)
    return True


def set_enabled(*, server: McpServer, actor, enabled: bool) -> McpServer:
    if server.enabled != enabled:
        server.enabled = enabled
        server.save(update_fields=["enabled", "updated_at"])
        record(
            Kind.SERVER_ENABLED if enabled else Kind.SERVER_DISABLED,
            actor=actor,
            server=server,
        )
    return server


@transaction.atomic
def delete_server(*, server: McpServer, actor) -> None:
    from oauth.services import detach_credential

    detach_credential(server=server, actor=actor, message="")
    record(Kind.SERVER_DELETED, actor=actor, server=server, detail={"url": server.url})
    server.delete()

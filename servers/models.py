"""MCP servers, their static tokens and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from mcpsettings.crypto import EncryptedTextField

URL_MAX_LENGTH = 2048
NAME_MAX_LENGTH = 64


class McpServer(models.Model):
    class Transport(models.TextChoices):
        AUTO = "auto", "Automatic"
        STREAMABLE_HTTP = "streamable-http", "Streamable HTTP"
        SSE = "sse", "HTTP + SSE (legacy)"

    class AuthKind(models.TextChoices):
        NONE = "none", "No credential"
        BEARER = "bearer", "Static token"
        OAUTH = "oauth", "OAuth"

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        CONNECTED = "connected", "Connected"
        NEEDS_AUTHORIZATION = "needs_authorization", "Needs authorization"
        TOKEN_ONLY = "token_only", "Needs a token"
        TOKEN_REJECTED = "token_rejected", "Token rejected"
        UNREACHABLE = "unreachable", "Unreachable"
        NOT_MCP = "not_mcp", "Not an MCP endpoint"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_servers"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    # False while the name is still derived from the URL's host.
    name_is_custom = models.BooleanField(default=False)
    # Validated and normalised by servers.rules, not by URLField.
    url = models.CharField(max_length=URL_MAX_LENGTH)
    transport = models.CharField(
        max_length=20, choices=Transport.choices, default=Transport.AUTO
    )
    auth_kind = models.CharField(
        max_length=10, choices=AuthKind.choices, default=AuthKind.NONE
    )
    enabled = models.BooleanField(default=True)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.UNKNOWN, db_index=True
    )
    status_message = models.CharField(max_length=500, blank=True)
    tools = models.JSONField(default=list, blank=True)
    # The last Bearer challenge the server sent (resource_metadata, scope,
    # error): where authorization starts. Public information, never a secret.
    auth_challenge = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP server"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], name="unique_server_name_per_owner"
            )
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("servers:edit", args=[self.pk])

    @property
    def next_action(self) -> str | None:
        """The one action a card offers for this state (seed §6.3, with the
        token-only and silent-error gaps of §10.3 closed). Needs the
        annotations of ``servers_owned_by``."""
        Status = self.Status
        authorized = getattr(self, "oauth_issuer", None) is not None
        if self.status == Status.NEEDS_AUTHORIZATION:
            return "reauthorize" if authorized else "authorize"
        if self.status == Status.TOKEN_ONLY:
            return "add_token"
        if self.status == Status.TOKEN_REJECTED:
            return "update_token"
        if self.status in (Status.UNREACHABLE, Status.NOT_MCP, Status.ERROR):
            return "retry"
        if self.status == Status.UNKNOWN:
            return "check"
        return None

    @property
    def has_static_token(self) -> bool:
        # Reads the reverse one-to-one without decrypting anything.
        return StaticToken.objects.filter(server_id=self.pk).exists()


class StaticToken(models.Model):
    """A bearer token or API key pasted by the owner. Write-only."""

    server = models.OneToOneField(
        McpServer, on_delete=models.CASCADE, related_name="static_token"
    )
    token = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Token for {self.server}"

    def __repr__(self):
        return f"<StaticToken server={self.server_id}>"


class AuditEvent(models.Model):
    class Kind(models.TextChoices):
        SERVER_ADDED = "server_added", "Server added"
        SERVER_EDITED = "server_edited", "Server edited"
        SERVER_DELETED = "server_deleted", "Server deleted"
        SERVER_ENABLED = "server_enabled", "Server enabled"
        SERVER_DISABLED = "server_disabled", "Server disabled"
        TOKEN_SET = "token_set", "Static token set"
        TOKEN_CLEARED = "token_cleared", "Static token cleared"
        PROBE = "probe", "Connection checked"
        AUTHORIZATION_STARTED = "authorization_started", "Authorization started"
        AUTHORIZED = "authorized", "Authorized"
        AUTHORIZATION_FAILED = "authorization_failed", "Authorization failed"
        REFRESH_OK = "refresh_ok", "Token refreshed"
        REFRESH_FAILED = "refresh_failed", "Token refresh failed"
        NEEDS_REAUTHORIZATION = "needs_reauthorization", "Needs re-authorization"
        REVOKED = "revoked", "Tokens revoked"
        REGISTERED = "registered", "Client registered"
        KEY_ROTATION = "key_rotation", "Encryption keys rotated"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    server = models.ForeignKey(
        McpServer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # Kept after the server is deleted, so the log still says which one.
    server_label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.server_label}".strip()

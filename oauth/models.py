"""Client registrations, pending authorizations and OAuth credentials.

Secrets (client secrets, PKCE verifiers, access and refresh tokens) live in
encrypted fields; everything that must be queried (issuer, expiry, state)
sits in plain columns beside them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mcpsettings.crypto import EncryptedTextField
from servers.models import McpServer

URL_MAX = 2048


class ClientRegistration(models.Model):
    """How this deployment is known to one authorization server.

    Keyed by (issuer, redirect URI) and shared by every user: registering once
    per AS instead of once per click avoids piling up orphan clients there.
    Never sent to another issuer (MCP 2026-07-28, SEP-2352).
    """

    class Kind(models.TextChoices):
        PRE_REGISTERED = "pre-registered", "Pre-registered by an admin"
        CIMD = "cimd", "Client ID metadata document"
        DCR = "dcr", "Dynamic client registration"

    issuer = models.CharField(max_length=URL_MAX)
    redirect_uri = models.CharField(max_length=URL_MAX)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    client_id = models.CharField(max_length=URL_MAX)
    client_secret = EncryptedTextField(null=True, blank=True)
    token_endpoint_auth_method = models.CharField(max_length=40, default="none")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "redirect_uri"], name="one_registration_per_issuer"
            )
        ]

    def __str__(self):
        return f"{self.issuer} ({self.get_kind_display()})"

    def __repr__(self):
        return f"<ClientRegistration {self.issuer} {self.kind}>"


class PendingAuthorization(models.Model):
    """One authorization request in flight: created before the redirect to the
    AS, consumed (deleted) exactly once by the callback."""

    state = models.CharField(max_length=128, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    server = models.ForeignKey(
        McpServer, on_delete=models.CASCADE, related_name="pending_authorizations"
    )
    registration = models.ForeignKey(ClientRegistration, on_delete=models.CASCADE)
    code_verifier = EncryptedTextField()
    # The AS pinned across the redirect: no re-discovery at the callback.
    issuer = models.CharField(max_length=URL_MAX)
    iss_parameter_supported = models.BooleanField(default=False)
    authorization_endpoint = models.CharField(max_length=URL_MAX)
    token_endpoint = models.CharField(max_length=URL_MAX)
    revocation_endpoint = models.CharField(max_length=URL_MAX, blank=True)
    resource = models.CharField(max_length=URL_MAX)
    scope = models.CharField(max_length=2000, blank=True)
    redirect_uri = models.CharField(max_length=URL_MAX)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"Authorization of {self.server} (expires {self.expires_at:%H:%M})"

    def __repr__(self):
        return f"<PendingAuthorization server={self.server_id}>"


class OAuthCredential(models.Model):
    """The tokens for one server. Replaced whole only when a callback
    succeeds, so an abandoned re-authorization never corrupts it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_REAUTHORIZATION = "needs_reauthorization", "Needs re-authorization"

    server = models.OneToOneField(
        McpServer, on_delete=models.CASCADE, related_name="oauth_credential"
    )
    registration = models.ForeignKey(
        ClientRegistration, on_delete=models.PROTECT, related_name="credentials"
    )
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(null=True, blank=True)
    token_type = models.CharField(max_length=40, default="Bearer")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    issued_at = models.DateTimeField()
    # When the sweep should refresh (oauth.refresh.due_at); None: never.
    refresh_due_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=2000, blank=True)
    # The scope this deployment asked for; step-up requests add to it.
    requested_scope = models.CharField(max_length=2000, blank=True)
    # The binding: refresh and revocation go exactly here, never re-discovered.
    issuer = models.CharField(max_length=URL_MAX)
    token_endpoint = models.CharField(max_length=URL_MAX)
    revocation_endpoint = models.CharField(max_length=URL_MAX, blank=True)
    resource = models.CharField(max_length=URL_MAX)
    status = models.CharField(
        max_length=30, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    # Refresh bookkeeping (see oauth.refresh).
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OAuth credential"
        indexes = [
            models.Index(
                fields=["status", "refresh_due_at"], name="oauth_credential_due"
            )
        ]

    def __str__(self):
        return f"OAuth for {self.server}"

    def __repr__(self):
        return f"<OAuthCredential server={self.server_id} status={self.status}>"

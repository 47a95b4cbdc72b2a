"""OAuth for MCP servers, the Django side: start, complete, use, disconnect.

The protocol lives in ``oauth.client`` (pure); this module decides what to
store and when. Rules it keeps (DESIGN.md "Authorize", "Callback"):

* everything that can fail (discovery, registration) runs before anything
  is written, then the pending authorization is stored in one transaction;
* a pending authorization is bound to its user and server, expires, and is
  consumed (deleted) exactly once *before* the token request;
* the authorization server is pinned across the redirect: the callback uses
  the stored endpoints, redirect URI and resource, never re-discovery;
* a credential is replaced whole, and only when a callback succeeds;
* registrations are keyed by issuer and never sent to another one.

Refreshing lives in ``oauth.refresh``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from mcpsettings import outbound
from oauth import client as oauth
from servers import services as server_services
from servers.audit import record
from servers.models import AuditEvent, McpServer

from .models import ClientRegistration, OAuthCredential, PendingAuthorization
from .refresh import due_at as refresh_due

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind


class PendingAuthorizationInvalid(oauth.StateMismatch):
    """No usable pending authorization for this ``state`` and user."""

    default_message = (
        "This authorization response is not one this account is waiting for: "
        "it was already used, or it was started by someone else."
    )


class PendingAuthorizationExpired(PendingAuthorizationInvalid):
    default_message = "This authorization took longer than 10 minutes and expired."


@dataclass(frozen=True)
class PreparedAuthorization:
    """Everything learnt before the redirect; nothing of it is stored yet."""

    discovery: oauth.Discovery
    registration: ClientRegistration
    scope: str | None


# -- helpers ----------------------------------------------------------------------


def http_client() -> httpx.Client:
    """The guarded client every OAuth request goes through."""
    return outbound.make_client()


def allow_http_loopback() -> bool:
    return settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS != "false"


def as_client(registration: ClientRegistration) -> oauth.ClientRegistration:
    return oauth.ClientRegistration(
        client_id=registration.client_id,
        client_secret=registration.client_secret,
        token_endpoint_auth_method=registration.token_endpoint_auth_method,
        kind=registration.kind,
        issuer=registration.issuer,
    )


def challenge_of(server: McpServer) -> oauth.BearerChallenge | None:
    data = server.auth_challenge or {}
    if not data:
        return None
    return oauth.BearerChallenge(
        resource_metadata=data.get("resource_metadata"),
        scope=data.get("scope"),
        error=data.get("error"),
        error_description=None,
    )


def challenge_as_dict(challenge: oauth.BearerChallenge | None) -> dict:
    if challenge is None:
        return {}
    return {
        key: value
        for key, value in (
            ("resource_metadata", challenge.resource_metadata),
            ("scope", challenge.scope),
            ("error", challenge.error),
        )
        if value
    }


# -- registrations ----------------------------------------------------------------


def obtain_registration(
    http: httpx.Client, metadata: oauth.AuthorizationServerMetadata
) -> ClientRegistration:
    """Pre-registered → CIMD → DCR for this issuer, reusing what exists."""
    redirect_uri = settings.OAUTH_REDIRECT_URI
    existing = ClientRegistration.objects.filter(
        issuer=metadata.issuer, redirect_uri=redirect_uri
    ).first()
    cimd_url = settings.OAUTH_CLIENT_METADATA_URL or None
    method = oauth.choose_registration_method(
        metadata,
        has_preregistered=bool(
            existing and existing.kind == ClientRegistration.Kind.PRE_REGISTERED
        ),
        cimd_url=cimd_url,
    )
    # A CIMD row is reusable only while our document URL is unchanged.
    reusable = (
        existing
        and existing.kind == method
        and (method != ClientRegistration.Kind.CIMD or existing.client_id == cimd_url)
    )
    if reusable:
        return existing
    if method == ClientRegistration.Kind.CIMD:
        registered = oauth.cimd_registration(cimd_url, issuer=metadata.issuer)
    else:
        request = oauth.build_registration_request(
            metadata,
            client_name=settings.OAUTH_CLIENT_NAME,
            redirect_uris=[redirect_uri],
        )
        registered = oauth.register(http, metadata, request)
    return _save_registration(metadata.issuer, redirect_uri, registered)


def _save_registration(
    issuer: str, redirect_uri: str, registered: oauth.ClientRegistration
) -> ClientRegistration:
    values = {
        "kind": registered.kind,
        "client_id": registered.client_id,
        "client_secret": registered.client_secret,
        "token_endpoint_auth_method": registered.token_endpoint_auth_method,
    }
    try:
        with transaction.atomic():
            registration, created = ClientRegistration.objects.update_or_create(
                issuer=issuer, redirect_uri=redirect_uri, defaults=values
            )
    except IntegrityError:
        # Another request registered at the same moment; either will do.
        registration = ClientRegistration.objects.get(
            issuer=issuer, redirect_uri=redirect_uri
        )
        created = False
    if created or registered.kind == ClientRegistration.Kind.DCR:
        record(
            Kind.REGISTERED,
            detail={"issuer": issuer, "kind": registered.kind},
        )
    return registration


def forget_rejected_registration(registration: ClientRegistration) -> None:
    """An AS that answers ``invalid_client`` no longer knows this client.

    DCR and CIMD registrations are dropped so the next attempt registers
    again; a pre-registered client is an admin's to fix, so it stays.
    """
    if registration.kind != ClientRegistration.Kind.PRE_REGISTERED:
        ClientRegistration.objects.filter(pk=registration.pk).delete()


# -- start ------------------------------------------------------------------------


def prepare_authorization(
    *,
    server_url: str,
    challenge: oauth.BearerChallenge | None,
    previous_scope: str | None = None,
    http: httpx.Client | None = None,
) -> PreparedAuthorization:
    """Discover, choose the scope and get a client registration.

    Network only (plus reusable registrations): nothing about the user or
    server is written, so a failure here leaves no trace.
    """
    http = http or http_client()
    discovery = oauth.discover(
        http,
        server_url,
        challenge=challenge,
        allow_http_loopback=allow_http_loopback(),
    )
    scope = oauth.requested_scope(
        challenge_scope=challenge.scope if challenge else None,
        resource_scopes_supported=discovery.protected_resource.scopes_supported,
        authorization_server_scopes_supported=(
            discovery.authorization_server.scopes_supported
        ),
        previous=previous_scope,
    )
    registration = obtain_registration(http, discovery.authorization_server)
    return PreparedAuthorization(discovery, registration, scope)


def create_pending_authorization(
    *, user, server: McpServer, prepared: PreparedAuthorization
) -> str:
    """Store the pending authorization; return the URL to send the browser to."""
    metadata = prepared.discovery.authorization_server
    pkce = oauth.new_pkce()
    pending = PendingAuthorization.objects.create(
        state=oauth.new_state(),
        user=user,
        server=server,
        registration=prepared.registration,
        code_verifier=pkce.code_verifier,
        issuer=metadata.issuer,
        iss_parameter_supported=metadata.authorization_response_iss_parameter_supported,
        authorization_endpoint=metadata.authorization_endpoint,
        token_endpoint=metadata.token_endpoint,
        revocation_endpoint=metadata.revocation_endpoint or "",
        resource=prepared.discovery.resource,
        scope=prepared.scope or "",
        redirect_uri=settings.OAUTH_REDIRECT_URI,
        expires_at=timezone.now()
        + timedelta(seconds=settings.OAUTH_PENDING_TTL_SECONDS),
    )
    record(
        Kind.AUTHORIZATION_STARTED,
        actor=user,
        server=server,
        detail={"issuer": metadata.issuer, "scope": pending.scope},
    )
    return oauth.build_authorization_url(
        metadata,
        client_id=prepared.registration.client_id,
        redirect_uri=pending.redirect_uri,
        state=pending.state,
        code_challenge=pkce.code_challenge,
        resource=pending.resource,
        scope=prepared.scope,
    )


def start_authorization(
    *, user, server: McpServer, http: httpx.Client | None = None
) -> str:
    """(Re-)authorize an existing server; return the authorization URL.

    The scope requested last time is kept (step-up requests the union of
    the previous and the challenged scopes, MCP 2026-07-28).
    """
    http = http or http_client()
    challenge = challenge_of(server)
    if challenge is None:
        challenge = fetch_challenge(server, http=http)
    credential = OAuthCredential.objects.filter(server=server).first()
    prepared = prepare_authorization(
        server_url=server.url,
        challenge=challenge,
        previous_scope=credential.requested_scope or None if credential else None,
        http=http,
    )
    with transaction.atomic():
        return create_pending_authorization(user=user, server=server, prepared=prepared)


def fetch_challenge(
    server: McpServer, *, http: httpx.Client
) -> oauth.BearerChallenge | None:
    """Ask the server, without a token, how it wants to be authorized."""
    from servers.mcp_client import AuthRequired, McpError, McpSession

    try:
        with McpSession(http, server.url, transport=server.transport) as session:
            session.initialize()
    except AuthRequired as exc:
        challenge = oauth.bearer_challenge(exc.www_authenticate)
        save_challenge(server, challenge)
        return challenge
    except (McpError, httpx.HTTPError):
        return None
    return None


def save_challenge(server: McpServer, challenge: oauth.BearerChallenge | None) -> None:
    data = challenge_as_dict(challenge)
    if data != server.auth_challenge:
        server.auth_challenge = data
        McpServer.objects.filter(pk=server.pk).update(auth_challenge=data)


def add_and_authorize(
    *,
    owner,
    url: str,
    name: str = "",
    transport: str = McpServer.Transport.AUTO,
    challenge: oauth.BearerChallenge | None = None,
    http: httpx.Client | None = None,
) -> tuple[McpServer, str]:
    """Create a server and its pending authorization together, or nothing.

    Discovery and registration run first; only when they succeed are the
    server row and the pending authorization written, in one transaction.
    """
    from servers import rules

    url = rules.normalize_server_url(
        url, allow_private=settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS
    )
    prepared = prepare_authorization(server_url=url, challenge=challenge, http=http)
    with transaction.atomic():
        server = server_services.create_server(
            owner=owner, url=url, name=name, transport=transport
        )
        server.auth_kind = McpServer.AuthKind.OAUTH
        server.status = McpServer.Status.NEEDS_AUTHORIZATION
        server.auth_challenge = challenge_as_dict(challenge)
        server.save(update_fields=["auth_kind", "status", "auth_challenge"])
        authorization_url = create_pending_authorization(
            user=owner, server=server, prepared=prepared
        )
    return server, authorization_url


# -- callback ---------------------------------------------------------------------


def consume_pending_authorization(*, user, state: str | None) -> PendingAuthorization:
    """Take the pending authorization for ``state`` out, exactly once.

    Looked up for the signed-in user only: another user's ``state`` is as
    unknown as a forged one (login CSRF), and stays usable by its owner.
    """
    if not state:
        raise PendingAuthorizationInvalid()
    pending = (
        PendingAuthorization.objects.select_related("registration", "server")
        .filter(state=state, user=user)
        .first()
    )
    if pending is None:
        raise PendingAuthorizationInvalid()
    # Deleting is the claim: of two concurrent callbacks only one deletes.
    deleted, _ = PendingAuthorization.objects.filter(pk=pending.pk).delete()
    if not deleted:
        raise PendingAuthorizationInvalid()
    if pending.expires_at <= timezone.now():
        raise PendingAuthorizationExpired()
    return pending


def complete_authorization(
    *, user, params, http: httpx.Client | None = None
) -> McpServer:
    """Finish the flow the authorization server redirected back from.

    Raises an ``oauth.OAuthError`` (or an outbound error) with a message for
    the user; on ``AuthorizationDenied`` and other failures after the
    pending authorization was found, the server's card says what happened.
    """
    pending = consume_pending_authorization(user=user, state=params.get("state"))
    server = pending.server
    try:
        code = oauth.validate_callback(
            params,
            expected_state=pending.state,
            issuer=pending.issuer,
            iss_supported=pending.iss_parameter_supported,
        )
        tokens = oauth.exchange_code(
            http or http_client(),
            token_endpoint=pending.token_endpoint,
            client=as_client(pending.registration),
            code=code,
            code_verifier=pending.code_verifier,
            redirect_uri=pending.redirect_uri,
            resource=pending.resource,
            now=timezone.now(),
        )
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        if isinstance(exc, oauth.InvalidGrant) and exc.error == "invalid_client":
            forget_rejected_registration(pending.registration)
        _authorization_failed(server, user, exc)
        raise
    previous = store_credential(pending=pending, tokens=tokens)
    record(
        Kind.AUTHORIZED,
        actor=user,
        server=server,
        detail={"issuer": pending.issuer, "scope": tokens.scope or pending.scope},
    )
    if previous is not None:
        revoke_quietly(previous)
    server.refresh_from_db()
    return server


def _authorization_failed(server: McpServer, user, exc: Exception) -> None:
    message = getattr(exc, "message", None) or outbound.describe(exc)
    if isinstance(exc, oauth.AuthorizationDenied):
        message = "Authorization was declined. Authorize again to connect."
    has_credential = OAuthCredential.objects.filter(server=server).exists()
    if not has_credential:
        McpServer.objects.filter(pk=server.pk).update(
            status=McpServer.Status.NEEDS_AUTHORIZATION,
            status_message=message[:500],
        )
    record(
        Kind.AUTHORIZATION_FAILED,
        actor=user,
        server=server,
        detail={"error": getattr(exc, "error", None) or type(exc).__name__},
    )


@dataclass(frozen=True)
class RevocableTokens:
    """What is needed to revoke a replaced or dropped credential later."""

    revocation_endpoint: str
    registration: ClientRegistration
    access_token: str
    refresh_token: str | None

    def __repr__(self):
        return f"<RevocableTokens at {self.revocation_endpoint}>"


def store_credential(
    *, pending: PendingAuthorization, tokens: oauth.Tokens
) -> RevocableTokens | None:
    """Replace the server's credential whole; return the old one to revoke.

    The old tokens are revoked only when they belong to another client (a
    new issuer or registration). With the same client, an AS may carry the
    grant on into the new tokens, and revoking the old refresh token would
    revoke that grant with it (RFC 7009 §2.1).
    """
    now = timezone.now()
    with transaction.atomic():
        server = McpServer.objects.select_for_update().get(pk=pending.server_id)
        old = OAuthCredential.objects.filter(server=server).first()
        previous = None
        if old is not None and old.registration_id != pending.registration_id:
            previous = _revocable(old)
        if old is not None:
            old.delete()
        OAuthCredential.objects.create(
            server=server,
            registration=pending.registration,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_type=tokens.token_type or "Bearer",
            expires_at=tokens.expires_at,
            issued_at=now,
            refresh_due_at=refresh_due(issued_at=now, expires_at=tokens.expires_at),
            scope=tokens.scope or pending.scope,
            requested_scope=pending.scope,
            issuer=pending.issuer,
            token_endpoint=pending.token_endpoint,
            revocation_endpoint=pending.revocation_endpoint,
            resource=pending.resource,
            last_refreshed_at=now,
        )
        server.auth_kind = McpServer.AuthKind.OAUTH
        server.status = McpServer.Status.UNKNOWN
        server.status_message = ""
        server.save(
            update_fields=["auth_kind", "status", "status_message", "updated_at"]
        )
    return previous


# -- disconnect -------------------------------------------------------------------


def _revocable(credential: OAuthCredential | None) -> RevocableTokens | None:
    if credential is None or not credential.revocation_endpoint:
        return None
    return RevocableTokens(
        revocation_endpoint=credential.revocation_endpoint,
        registration=credential.registration,
        access_token=credential.access_token,
        refresh_token=credential.refresh_token,
    )


def revoke_quietly(
    tokens: RevocableTokens, *, http: httpx.Client | None = None
) -> bool:
    """RFC 7009: revoke the refresh token (which ends the grant) and the
    access token. Failure is logged, never raised: the local copy is gone
    either way and the tokens expire on their own."""
    http = http or http_client()
    client = as_client(tokens.registration)
    revoked = True
    for token, hint in (
        (tokens.refresh_token, "refresh_token"),
        (tokens.access_token, "access_token"),
    ):
        if not token:
            continue
        try:
            oauth.revoke(
                http,
                revocation_endpoint=tokens.revocation_endpoint,
                client=client,
                token=token,
                token_type_hint=hint,
            )
        except oauth.OAuthError as exc:
            if exc.error == "unsupported_token_type":
                # RFC 7009 §2.2.1: the AS does not revoke this kind (e.g.
                # self-contained JWT access tokens); they expire on their own.
                continue
            revoked = False
            logger.warning(
                "Revocation at %s failed: %s", tokens.revocation_endpoint, exc.error
            )
        except httpx.HTTPError as exc:
            revoked = False
            logger.warning(
                "Revocation at %s failed: %s",
                tokens.revocation_endpoint,
                type(exc).__name__,
            )
    return revoked


def detach_credential(
    *, server: McpServer, actor, message: str
) -> RevocableTokens | None:
    """Delete the server's credential (inside the caller's transaction) and
    revoke it at the AS once that transaction commits: no network call ever
    runs inside a transaction, and nothing is revoked if it rolls back."""
    credential = (
        OAuthCredential.objects.select_related("registration")
        .filter(server=server)
        .first()
    )
    if credential is None:
        return None
    revocable = _revocable(credential)
    credential.delete()
    McpServer.objects.filter(pk=server.pk).update(
        status=McpServer.Status.NEEDS_AUTHORIZATION, status_message=message, tools=[]
    )
    record(
        Kind.REVOKED,
        actor=actor,
        server=server,
        detail={"revocation_endpoint": bool(revocable)},
    )
    if revocable is not None:
        transaction.on_commit(lambda: revoke_quietly(revocable))
    return revocable


def disconnect(*, server: McpServer, actor) -> bool:
    """Revoke at the AS when it can, and delete the credential locally."""
    with transaction.atomic():
        credential_existed = OAuthCredential.objects.filter(server=server).exists()
        detach_credential(
            server=server,
            actor=actor,
            message="Disconnected. Authorize again to connect.",
        )
    return credential_existed


def drop_credential_for_new_resource(*, server: McpServer, actor) -> None:
    """A token issued for one resource must never reach another
    (seed-behaviour.md §10.1 item 9): editing the URL's origin or path
    drops the credential and asks for authorization again."""
    detach_credential(
        server=server,
        actor=actor,
        message="The URL changed. Authorize again to connect.",
    )

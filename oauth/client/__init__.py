"""The pure OAuth 2.1 client for MCP servers: no Django here.

Standard library and httpx only. Every network call takes an ``httpx.Client``
(the app passes its guarded client; tests pass one over
``httpx.MockTransport``) and everything time-dependent takes ``now``. Storing
state, verifiers, registrations and tokens is the Django side's job.

Modules, one concern each: ``challenge`` (WWW-Authenticate), ``urls``
(well-known URLs, endpoint checks), ``discovery`` (RFC 9728, RFC 8414, OIDC),
``scope``, ``registration`` (pre-registered, CIMD, RFC 7591), ``pkce``
(RFC 7636), ``authorization`` (request URL, RFC 9207 callback checks),
``tokens`` (RFC 6749 grants, RFC 7009 revocation) and ``errors``.
"""

from .authorization import build_authorization_url, validate_callback
from .challenge import (
    BearerChallenge,
    Challenge,
    bearer_challenge,
    parse_www_authenticate,
)
from .discovery import (
    AuthorizationServerMetadata,
    Discovery,
    ProtectedResourceMetadata,
    discover,
    fetch_authorization_server_metadata,
    fetch_protected_resource_metadata,
    parse_authorization_server_metadata,
    parse_protected_resource_metadata,
)
from .errors import (
    AuthorizationDenied,
    CallbackError,
    DiscoveryError,
    InsecureEndpoint,
    InvalidGrant,
    IssMismatch,
    IssuerMismatch,
    NoRegistrationMethod,
    OAuthError,
    PkceUnsupported,
    RegistrationError,
    ResourceMismatch,
    StateMismatch,
    TokenError,
    TransientTokenError,
)
from .pkce import Pkce, new_code_verifier, new_pkce, new_state, s256_code_challenge
from .registration import (
    ClientRegistration,
    build_registration_request,
    choose_registration_method,
    choose_token_endpoint_auth_method,
    cimd_document,
    cimd_registration,
    register,
)
from .scope import requested_scope, select_scope, step_up_scope, with_offline_access
from .tokens import Tokens, exchange_code, refresh, revoke
from .urls import (
    authorization_server_metadata_urls,
    canonical_resource,
    protected_resource_metadata_urls,
)

__all__ = [
    "AuthorizationDenied",
    "AuthorizationServerMetadata",
    "BearerChallenge",
    "CallbackError",
    "Challenge",
    "ClientRegistration",
    "Discovery",
    "DiscoveryError",
    "InsecureEndpoint",
    "InvalidGrant",
    "IssMismatch",
    "IssuerMismatch",
    "NoRegistrationMethod",
    "OAuthError",
    "Pkce",
    "PkceUnsupported",
    "ProtectedResourceMetadata",
    "RegistrationError",
    "ResourceMismatch",
    "StateMismatch",
    "TokenError",
    "Tokens",
    "TransientTokenError",
    "authorization_server_metadata_urls",
    "bearer_challenge",
    "build_authorization_url",
    "build_registration_request",
    "canonical_resource",
    "choose_registration_method",
    "choose_token_endpoint_auth_method",
    "cimd_document",
    "cimd_registration",
    "discover",
    "exchange_code",
    "fetch_authorization_server_metadata",
    "fetch_protected_resource_metadata",
    "new_code_verifier",
    "new_pkce",
    "new_state",
    "parse_authorization_server_metadata",
    "parse_protected_resource_metadata",
    "parse_www_authenticate",
    "protected_resource_metadata_urls",
    "refresh",
    "register",
    "requested_scope",
    "revoke",
    "s256_code_challenge",
    "select_scope",
    "step_up_scope",
    "validate_callback",
    "with_offline_access",
]

"""Errors raised by the pure OAuth client.

RFC 6749 §5.2 and RFC 6749 §4.1.2.1 carry an ``error`` code and an optional
``error_description``; both are kept apart so that callers can act on the code
(``access_denied``, ``invalid_grant``) and show the description separately.
Every error also has a short ``message`` written for the person using the app.

Messages never contain tokens, codes, verifiers or client secrets. Text that
comes from a remote server (``error_description``) is length-capped here;
escaping it is the view's job.

Must not import Django.
"""

from __future__ import annotations

DESCRIPTION_LIMIT = 300


def cap(text: str | None, limit: int = DESCRIPTION_LIMIT) -> str | None:
    """Return ``text`` shortened to ``limit`` characters, or None if empty."""
    if not text:
        return None
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class OAuthError(Exception):
    """Base class: ``error`` code, ``description`` and a human ``message``.

    ``error`` is the OAuth error code when a server sent one (or a standard
    code that describes a local refusal); ``description`` is the server's
    ``error_description``, capped.
    """

    default_message = "The authorization with this server failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.error = cap(error, 100)
        self.description = cap(description)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Task queues pickle exceptions; keyword-only constructors would not
        # survive the default Exception pickling.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[OAuthError], state: dict[str, object]) -> OAuthError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message"))
    error.__dict__.update(state)
    return error


class DiscoveryError(OAuthError):
    """Protected resource or authorization server metadata is unusable."""

    default_message = "This server's OAuth configuration could not be discovered."

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
        attempts: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, error=error, description=description)
        # Human-readable "url (outcome)" lines, query strings already redacted.
        self.attempts = attempts


class ResourceMismatch(DiscoveryError):
    """RFC 9728 §3.3: the metadata describes another resource."""

    default_message = (
        "The server's OAuth metadata describes a different resource than this "
        "server URL, so it cannot be trusted."
    )


class IssuerMismatch(DiscoveryError):
    """RFC 8414 §3.3: the metadata ``issuer`` differs from the issuer used."""

    def __init__(self, *, expected: str, actual: object) -> None:
        self.expected = expected
        self.actual = actual if isinstance(actual, str) else None
        super().__init__(_issuer_message(expected, actual))


def _issuer_message(expected: str, actual: object) -> str:
    if not isinstance(actual, str) or not actual:
        return (
            f"The authorization server metadata for {expected} does not state "
            "its issuer."
        )
    if actual.rstrip("/") == expected.rstrip("/"):
        return (
            f"The authorization server calls itself {actual!r} but is listed as "
            f"{expected!r}. They differ only by a trailing slash, which OAuth "
            "treats as a different issuer; the server's configuration needs to "
            "use one spelling."
        )
    return (
        f"The authorization server metadata for {expected} names a different "
        f"issuer ({cap(actual, 200)!r}), so it cannot be used."
    )


class PkceUnsupported(DiscoveryError):
    """MCP authorization: refuse when S256 is not listed."""

    default_message = (
        "The authorization server does not advertise PKCE with S256, which MCP "
        "requires."
    )


class InsecureEndpoint(DiscoveryError):
    """An endpoint is not https (or not an http(s) URL at all)."""

    default_message = "The authorization server uses an endpoint that is not https."


class RegistrationError(OAuthError):
    """Client registration failed or is impossible."""

    default_message = "This app could not register with the authorization server."


class NoRegistrationMethod(RegistrationError):
    """No pre-registration, no CIMD support and no registration endpoint."""

    default_message = (
        "The authorization server offers no way for this app to register, so "
        "this server needs a token instead."
    )


class CallbackError(OAuthError):
    """The authorization response is unusable."""

    default_message = "The authorization response was not valid."


class StateMismatch(CallbackError):
    default_message = (
        "The authorization response does not belong to an authorization started here."
    )


class IssMismatch(CallbackError):
    """RFC 9207 §2.4: ``iss`` is missing or names another issuer."""

    default_message = (
        "The authorization response did not come from the expected "
        "authorization server."
    )


class AuthorizationDenied(CallbackError):
    """RFC 6749 §4.1.2.1 ``access_denied``: the user (or the AS) declined."""

    default_message = "Authorization was declined."


class TokenError(OAuthError):
    """The token endpoint refused or answered nonsense."""

    default_message = "The authorization server did not issue a token."


class InvalidGrant(TokenError):
    """The grant or client is no longer accepted: re-authorization is needed.

    ``error`` keeps which code it was (``invalid_grant``, ``invalid_client`` or
    ``unauthorized_client``) because ``invalid_client`` also means the client
    registration should be replaced.
    """

    default_message = "The authorization has expired or was revoked; authorize again."


class TransientTokenError(TokenError):
    """Network trouble, a timeout, 429 or 5xx: worth retrying later."""

    default_message = (
        "The authorization server could not be reached or is temporarily unavailable."
    )

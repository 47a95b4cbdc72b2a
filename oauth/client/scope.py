"""Which ``scope`` to request (MCP authorization: scope selection, step-up).

MCP 2025-11-25 "Scope Selection Strategy": the ``scope`` of the challenge,
else every entry of the protected resource's ``scopes_supported``, else no
``scope`` at all. The authorization server's own ``scopes_supported`` is not
a fallback (the conformance suite plants a decoy there).

MCP 2026-07-28 "Refresh Tokens": ``offline_access`` may be added when the
authorization server lists it. It is only ever added to a scope that is
already being requested: sending ``offline_access`` alone would replace the
server's default scope with one that grants no access.

MCP 2026-07-28 step-up (SEP-2350): re-authorise with the union of the scopes
requested before and the scopes in the ``insufficient_scope`` challenge.

Scopes are space-separated (RFC 6749 §3.3); order is kept, duplicates
dropped. Must not import Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

OFFLINE_ACCESS = "offline_access"


def split_scope(scope: str | Iterable[str] | None) -> list[str]:
    """Return the scope tokens of ``scope``, in order, without duplicates."""
    if scope is None:
        return []
    tokens = scope.split() if isinstance(scope, str) else scope
    return list(dict.fromkeys(token for token in tokens if token))


def join_scope(tokens: Iterable[str]) -> str | None:
    joined = " ".join(split_scope(list(tokens)))
    return joined or None


def select_scope(
    challenge_scope: str | None, scopes_supported: Sequence[str] | None
) -> str | None:
    """Challenge ``scope`` → protected resource ``scopes_supported`` → None."""
    return join_scope(split_scope(challenge_scope)) or join_scope(
        scopes_supported or ()
    )


def with_offline_access(
    scope: str | None, authorization_server_scopes: Sequence[str] | None
) -> str | None:
    """Add ``offline_access`` when the authorization server lists it."""
    tokens = split_scope(scope)
    if not tokens or OFFLINE_ACCESS not in (authorization_server_scopes or ()):
        return join_scope(tokens)
    return join_scope([*tokens, OFFLINE_ACCESS])


def step_up_scope(previous: str | None, challenged: str | None) -> str | None:
    """The union of the previously requested and the challenged scopes."""
    return join_scope([*split_scope(previous), *split_scope(challenged)])


def requested_scope(
    *,
    challenge_scope: str | None,
    resource_scopes_supported: Sequence[str] | None,
    authorization_server_scopes_supported: Sequence[str] | None,
    previous: str | None = None,
) -> str | None:
    """The ``scope`` for an authorization request, all rules applied.

    ``previous`` is the scope requested last time for this server (step-up
    and re-authorisation never drop what was already asked for).
    """
    selected = select_scope(challenge_scope, resource_scopes_supported)
    if previous is not None:
        selected = step_up_scope(previous, selected)
    return with_offline_access(selected, authorization_server_scopes_supported)

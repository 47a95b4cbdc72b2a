"""Scope selection, offline_access and step-up (MCP authorization)."""

from __future__ import annotations

import pytest

from oauth.client.scope import (
    requested_scope,
    select_scope,
    step_up_scope,
    with_offline_access,
)


def test_challenge_scope_comes_first():
    assert select_scope("mcp:basic", ["mcp:read", "mcp:write"]) == "mcp:basic"


def test_resource_scopes_supported_when_the_challenge_has_none():
    assert select_scope(None, ["mcp:basic", "mcp:read", "mcp:write"]) == (
        "mcp:basic mcp:read mcp:write"
    )


@pytest.mark.parametrize("challenge_scope", [None, "", "   "])
def test_no_scope_at_all_is_omitted(challenge_scope):
    assert select_scope(challenge_scope, None) is None
    assert select_scope(challenge_scope, []) is None


def test_duplicate_and_extra_whitespace_are_normalised_in_order():
    assert select_scope("  b  a b ", None) == "b a"


def test_offline_access_is_added_only_when_the_authorization_server_lists_it():
    assert with_offline_access("mcp:basic", ["mcp:basic", "offline_access"]) == (
        "mcp:basic offline_access"
    )
    assert with_offline_access("mcp:basic", ["mcp:basic"]) == "mcp:basic"
    assert with_offline_access("mcp:basic", None) == "mcp:basic"


def test_offline_access_is_not_duplicated():
    assert with_offline_access("offline_access mcp", ["offline_access"]) == (
        "offline_access mcp"
    )


def test_offline_access_alone_is_never_requested():
    assert with_offline_access(None, ["offline_access"]) is None


def test_step_up_requests_the_union_in_order():
    assert step_up_scope("mcp:basic", "mcp:write") == "mcp:basic mcp:write"
    assert step_up_scope("a b", "b c") == "a b c"
    assert step_up_scope(None, "mcp:write") == "mcp:write"
    assert step_up_scope("mcp:basic", None) == "mcp:basic"


def test_requested_scope_for_a_first_authorization():
    scope = requested_scope(
        challenge_scope=None,
        resource_scopes_supported=["mcp:basic"],
        authorization_server_scopes_supported=["mcp:basic", "offline_access"],
    )

    assert scope == "mcp:basic offline_access"


def test_requested_scope_for_step_up_ignores_the_decoy_scopes_supported():
    scope = requested_scope(
        challenge_scope="mcp:write",
        resource_scopes_supported=["mcp:profile"],
        authorization_server_scopes_supported=["mcp:profile", "mcp:write"],
        previous="mcp:basic",
    )

    assert scope == "mcp:basic mcp:write"


def test_requested_scope_never_falls_back_to_the_authorization_server_list():
    scope = requested_scope(
        challenge_scope=None,
        resource_scopes_supported=None,
        authorization_server_scopes_supported=["mcp:basic", "offline_access"],
    )

    assert scope is None

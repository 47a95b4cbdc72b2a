"""Errors of the pure client: codes, capped descriptions, human messages."""

from __future__ import annotations

import pickle

import pytest

from oauth.client.errors import (
    AuthorizationDenied,
    DiscoveryError,
    InvalidGrant,
    IssuerMismatch,
    NoRegistrationMethod,
    OAuthError,
    PkceUnsupported,
    TransientTokenError,
)


def test_str_is_the_human_message():
    error = OAuthError("Something broke.", error="server_error", description="x")

    assert str(error) == "Something broke."
    assert error.error == "server_error"
    assert error.description == "x"


def test_description_is_capped_to_300_characters():
    error = OAuthError(description="é" * 1000)

    assert len(error.description) == 300
    assert error.description.endswith("…")


def test_every_error_has_a_default_message():
    for cls in (
        PkceUnsupported,
        NoRegistrationMethod,
        AuthorizationDenied,
        InvalidGrant,
    ):
        assert cls().message
    assert "needs a token" in NoRegistrationMethod().message


def test_issuer_mismatch_by_a_trailing_slash_says_so():
    error = IssuerMismatch(
        expected="https://auth.example.com", actual="https://auth.example.com/"
    )

    assert "trailing slash" in error.message
    assert isinstance(error, DiscoveryError)


def test_issuer_mismatch_without_issuer_says_it_is_missing():
    error = IssuerMismatch(expected="https://auth.example.com", actual=None)

    assert "does not state its issuer" in error.message


def test_issuer_mismatch_caps_a_hostile_issuer():
    error = IssuerMismatch(expected="https://a.example", actual="x" * 5000)

    assert len(error.message) < 500


@pytest.mark.parametrize(
    "error",
    [
        IssuerMismatch(expected="https://a.example", actual="https://b.example"),
        InvalidGrant(error="invalid_client", description="gone"),
        TransientTokenError("Down (HTTP 503).", error="temporarily_unavailable"),
        DiscoveryError("Nothing.", attempts=("https://x (HTTP 404)",)),
    ],
)
def test_errors_survive_pickling_with_their_attributes(error):
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)

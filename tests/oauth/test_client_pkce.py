"""PKCE and state (RFC 7636, RFC 6749 §10.12)."""

from __future__ import annotations

import pytest

from oauth.client.pkce import (
    UNRESERVED,
    new_code_verifier,
    new_pkce,
    new_state,
    s256_code_challenge,
)


def test_s256_matches_rfc_7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert (
        s256_code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize("length", [43, 64, 128])
def test_verifier_has_the_requested_length_and_unreserved_alphabet(length):
    verifier = new_code_verifier(length)

    assert len(verifier) == length
    assert set(verifier) <= set(UNRESERVED)


@pytest.mark.parametrize("length", [0, 42, 129])
def test_verifier_length_outside_43_to_128_is_refused(length):
    with pytest.raises(ValueError):
        new_code_verifier(length)


def test_verifiers_are_random():
    assert len({new_code_verifier() for _ in range(50)}) == 50


def test_new_pkce_pairs_the_verifier_with_its_s256_challenge_and_hides_it():
    pkce = new_pkce()

    assert pkce.code_challenge == s256_code_challenge(pkce.code_verifier)
    assert pkce.code_challenge_method == "S256"
    assert 43 <= len(pkce.code_verifier) <= 128
    assert pkce.code_verifier not in repr(pkce)


def test_state_is_long_url_safe_and_random():
    states = {new_state() for _ in range(50)}

    assert len(states) == 50
    for state in states:
        assert len(state) >= 43
        assert set(state) <= set(UNRESERVED)

"""PKCE (RFC 7636) and the ``state`` value of the authorization request.

RFC 7636 §4.1: the code verifier is 43–128 characters from the unreserved
set ``[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"``. §4.2: the S256 challenge
is ``BASE64URL(SHA256(ASCII(code_verifier)))`` without padding. MCP requires
S256, so "plain" is not offered.

Must not import Django.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from dataclasses import dataclass, field

UNRESERVED = string.ascii_letters + string.digits + "-._~"
MIN_VERIFIER_LENGTH = 43
MAX_VERIFIER_LENGTH = 128


@dataclass(frozen=True)
class Pkce:
    code_verifier: str = field(repr=False)
    code_challenge: str
    code_challenge_method: str = "S256"


def new_code_verifier(length: int = 64) -> str:
    """Return a random RFC 7636 §4.1 code verifier of ``length`` characters."""
    if not MIN_VERIFIER_LENGTH <= length <= MAX_VERIFIER_LENGTH:
        raise ValueError("RFC 7636 §4.1: a code verifier has 43 to 128 characters")
    return "".join(secrets.choice(UNRESERVED) for _ in range(length))


def s256_code_challenge(code_verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    code_verifier = new_code_verifier()
    return Pkce(
        code_verifier=code_verifier, code_challenge=s256_code_challenge(code_verifier)
    )


def new_state() -> str:
    """Return an unguessable ``state`` (RFC 6749 §10.12), 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)

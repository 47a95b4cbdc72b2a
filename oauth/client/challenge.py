"""Parse ``WWW-Authenticate`` challenges (RFC 9110 §11.6.1, RFC 6750 §3).

MCP servers answer 401/403 with a Bearer challenge whose ``resource_metadata``
(RFC 9728 §5.1), ``scope`` and ``error`` drive discovery and step-up. The
parser is lenient: it never raises on malformed input and returns what it
could make sense of.

Grammar (RFC 9110 §11.6.1 and §11.2)::

    WWW-Authenticate = #challenge
    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )
    token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="

Commas separate both challenges and parameters; an item of the form
``name=value`` belongs to the current challenge, any other token starts a new
one. Scheme and parameter names are case-insensitive; parameter names are
stored lower-cased.

Must not import Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A token68 only counts when nothing but whitespace separates it from the
# next comma or the end; "realm=x" must not be read as token68 "realm=".
_TOKEN68 = re.compile(r"([A-Za-z0-9\-._~+/]+=*)[ \t]*(?=,|$)")
_OWS = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[\s,]*")
_BARE_VALUE = re.compile(r"[^,\s]*")


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme as sent, lower-cased params, or a token68."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def is_scheme(self, name: str) -> bool:
        return self.scheme.lower() == name.lower()


@dataclass(frozen=True)
class BearerChallenge:
    """The parameters of a Bearer challenge an MCP client acts on."""

    resource_metadata: str | None = None
    scope: str | None = None
    error: str | None = None
    error_description: str | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split()) if self.scope else ()


def parse_www_authenticate(values: Iterable[str]) -> list[Challenge]:
    """Parse every challenge in every ``WWW-Authenticate`` header line."""
    challenges: list[Challenge] = []
    for value in values:
        if isinstance(value, str):
            challenges.extend(_parse_line(value))
    return challenges


def bearer_challenge(response_or_headers: Any) -> BearerChallenge | None:
    """Return the first Bearer challenge of a response or headers, if any.

    Accepts an ``httpx.Response``, ``httpx.Headers``, a mapping of header
    names to values (a string or a list of strings), or a list of header
    values.
    """
    for challenge in parse_www_authenticate(_header_values(response_or_headers)):
        if challenge.is_scheme("bearer"):
            params = challenge.params
            return BearerChallenge(
                resource_metadata=params.get("resource_metadata") or None,
                scope=params.get("scope") or None,
                error=params.get("error") or None,
                error_description=params.get("error_description") or None,
            )
    return None


def _header_values(source: Any) -> list[str]:
    headers = getattr(source, "headers", source)
    if hasattr(headers, "get_list"):  # httpx.Headers keeps repeated lines
        return list(headers.get_list("www-authenticate"))
    if isinstance(headers, Mapping):
        values: list[str] = []
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "www-authenticate":
                values.extend([value] if isinstance(value, str) else list(value))
        return values
    if isinstance(headers, str):
        return [headers]
    if isinstance(headers, Iterable):
        return [value for value in headers if isinstance(value, str)]
    return []


def _parse_line(text: str) -> list[Challenge]:
    challenges: list[tuple[str, dict[str, str], str | None]] = []
    pos = 0
    end = len(text)
    while True:
        pos = _SEPARATORS.match(text, pos).end()
        if pos >= end:
            break
        name_match = _TOKEN.match(text, pos)
        if name_match is None:
            pos = _skip_item(text, pos)
            continue
        name = name_match.group()
        after_name = _OWS.match(text, name_match.end()).end()
        if after_name < end and text[after_name] == "=":
            value, pos = _read_value(text, after_name + 1)
            if challenges:
                params = challenges[-1][1]
                # RFC 9110 §11.2: a parameter name occurs once; keep the first.
                params.setdefault(name.lower(), value)
            continue
        # A new challenge: a token68 may follow the scheme after whitespace.
        pos = name_match.end()
        token68 = None
        if after_name > pos:
            token68_match = _TOKEN68.match(text, after_name)
            if token68_match is not None:
                token68 = token68_match.group(1)
                pos = token68_match.end()
        challenges.append((name, {}, token68))
    return [
        Challenge(scheme, params, token68) for scheme, params, token68 in challenges
    ]


def _read_value(text: str, pos: int) -> tuple[str, int]:
    pos = _OWS.match(text, pos).end()
    if pos < len(text) and text[pos] == '"':
        return _read_quoted(text, pos + 1)
    # Lenient: servers sometimes send URLs unquoted, which are not tokens.
    match = _BARE_VALUE.match(text, pos)
    return match.group(), match.end()


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string body starting after the opening quote."""
    chars: list[str] = []
    end = len(text)
    while pos < end:
        char = text[pos]
        if char == "\\" and pos + 1 < end:
            chars.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(chars), pos + 1
        else:
            chars.append(char)
            pos += 1
    return "".join(chars), pos


def _skip_item(text: str, pos: int) -> int:
    """Skip an unparseable item up to the next comma outside quotes."""
    end = len(text)
    while pos < end and text[pos] != ",":
        if text[pos] == '"':
            _, pos = _read_quoted(text, pos + 1)
        else:
            pos += 1
    return pos

"""WWW-Authenticate parsing (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from oauth.client.challenge import (
    BearerChallenge,
    Challenge,
    bearer_challenge,
    parse_www_authenticate,
)


def test_parses_the_mcp_bearer_challenge():
    header = (
        'Bearer error="invalid_token", error_description="No token", '
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-'
        'resource/mcp", scope="mcp:basic mcp:read"'
    )

    challenge = bearer_challenge([header])

    assert challenge == BearerChallenge(
        resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        scope="mcp:basic mcp:read",
        error="invalid_token",
        error_description="No token",
    )
    assert challenge.scopes == ("mcp:basic", "mcp:read")


def test_parses_the_rfc_9110_example_with_escapes_and_two_challenges():
    header = (
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", '
        'Basic realm="simple"'
    )

    assert parse_www_authenticate([header]) == [
        Challenge(
            "Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
        ),
        Challenge("Basic", {"realm": "simple"}),
    ]


def test_commas_inside_quoted_strings_do_not_split_challenges():
    header = 'Bearer realm="a, Basic b=c", scope="x"'

    assert parse_www_authenticate([header]) == [
        Challenge("Bearer", {"realm": "a, Basic b=c", "scope": "x"})
    ]


def test_challenges_across_several_header_lines():
    challenges = parse_www_authenticate(['Basic realm="x"', 'Bearer scope="s"'])

    assert [challenge.scheme for challenge in challenges] == ["Basic", "Bearer"]


def test_token68_is_kept_apart_from_params():
    challenges = parse_www_authenticate(["Basic dXNlcjpwYXNz==, Bearer realm=x"])

    assert challenges == [
        Challenge("Basic", {}, token68="dXNlcjpwYXNz=="),
        Challenge("Bearer", {"realm": "x"}),
    ]


def test_scheme_and_param_names_are_case_insensitive():
    challenge = bearer_challenge(['BEARER Resource_Metadata="https://a/b", SCOPE=x'])

    assert challenge is not None
    assert challenge.resource_metadata == "https://a/b"
    assert challenge.scope == "x"


def test_whitespace_around_equals_is_allowed():
    challenge = bearer_challenge(['Bearer scope = "a b" , error =invalid_token'])

    assert challenge == BearerChallenge(scope="a b", error="invalid_token")


def test_unquoted_url_values_are_tolerated():
    challenge = bearer_challenge(
        ["Bearer resource_metadata=https://mcp.example.com/.well-known/x?a=1"]
    )

    assert challenge is not None
    assert challenge.resource_metadata == "https://mcp.example.com/.well-known/x?a=1"


def test_first_bearer_challenge_is_chosen_among_others():
    challenge = bearer_challenge(
        ['Basic realm="x", Bearer scope="one"', "Bearer scope=two"]
    )

    assert challenge is not None
    assert challenge.scope == "one"


def test_repeated_param_keeps_the_first_value():
    challenge = bearer_challenge(['Bearer scope="first", scope="second"'])

    assert challenge is not None
    assert challenge.scope == "first"


def test_bearer_challenge_reads_an_httpx_response_with_repeated_headers():
    response = httpx.Response(
        401,
        headers=[
            ("WWW-Authenticate", 'Basic realm="x"'),
            ("WWW-Authenticate", 'Bearer resource_metadata="https://r/m"'),
        ],
    )

    challenge = bearer_challenge(response)

    assert challenge is not None
    assert challenge.resource_metadata == "https://r/m"


def test_bearer_challenge_reads_a_plain_mapping():
    assert bearer_challenge({"www-authenticate": "Bearer scope=s"}) == BearerChallenge(
        scope="s"
    )


def test_no_bearer_challenge_gives_none():
    assert bearer_challenge(httpx.Response(401)) is None
    assert bearer_challenge(['Basic realm="x"']) is None


def test_garbage_is_skipped_without_raising():
    assert parse_www_authenticate(["", ",,,", '"', "=x", "a=b"]) == []
    assert parse_www_authenticate(['Bearer realm="unterminated']) == [
        Challenge("Bearer", {"realm": "unterminated"})
    ]


# -- properties --------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOKEN68_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
QDTEXT = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t")

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
ows = st.sampled_from(["", " ", "  ", "\t"])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def auth_params(draw):
    names = draw(st.lists(tokens, max_size=5, unique_by=lambda name: name.lower()))
    params = []
    for name in names:
        value = draw(tokens | st.text(alphabet=QDTEXT, max_size=20))
        quoted = draw(st.booleans()) or any(c not in TCHARS for c in value) or not value
        rendered = _quote(value) if quoted else value
        params.append((name, value, f"{name}{draw(ows)}={draw(ows)}{rendered}"))
    return params


@st.composite
def challenges(draw):
    scheme = draw(tokens)
    if draw(st.integers(0, 4)) == 0:
        token68 = draw(st.text(alphabet=TOKEN68_CHARS, min_size=1, max_size=16))
        token68 += "=" * draw(st.integers(0, 2))
        return Challenge(scheme, {}, token68), f"{scheme} {token68}"
    params = draw(auth_params())
    if not params:
        return Challenge(scheme, {}), scheme
    separator = draw(st.sampled_from([",", ", ", " ,", " , ", ",,"]))
    rendered = separator.join(text for _, _, text in params)
    expected = Challenge(scheme, {name.lower(): value for name, value, _ in params})
    return expected, f"{scheme} {rendered}"


@given(st.lists(st.text(max_size=200), max_size=4))
def test_parser_never_raises_on_arbitrary_text(values):
    result = parse_www_authenticate(values)

    assert isinstance(result, list)


@given(st.text(alphabet=' \t,;="\\=abcXYZ09-./:', max_size=120))
def test_parser_never_raises_on_punctuation_soup(value):
    parse_www_authenticate([value])
    bearer_challenge([value])


@given(st.lists(challenges(), min_size=1, max_size=4), st.data())
def test_well_formed_challenges_parse_back_exactly(generated, data):
    expected = [challenge for challenge, _ in generated]
    rendered = [text for _, text in generated]
    # Split the list over one or more header lines, as proxies may do.
    cut = data.draw(st.integers(0, len(rendered)))
    separator = data.draw(st.sampled_from([", ", ",", " ,  "]))
    lines = [separator.join(rendered[:cut]), separator.join(rendered[cut:])]

    parsed = parse_www_authenticate([line for line in lines if line])

    assert [(c.scheme, c.params, c.token68) for c in parsed] == [
        (c.scheme, c.params, c.token68) for c in expected
    ]

"""Token endpoint: code exchange, refresh, revocation (RFC 6749, RFC 7009)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from oauth.client.authorization import build_authorization_url, validate_callback
from oauth.client.discovery import discover
from oauth.client.errors import InvalidGrant, TokenError, TransientTokenError
from oauth.client.pkce import new_pkce, new_state
from oauth.client.registration import ClientRegistration
from oauth.client.tokens import Tokens, exchange_code, refresh, revoke

from .fake_auth_server import FakeAuthServer

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
TOKEN_URL = "https://auth.example.com/token"
REVOKE_URL = "https://auth.example.com/revoke"
REDIRECT_URI = "https://app.example.com/cb/"
RESOURCE = "https://mcp.example.com/mcp"

PUBLIC = ClientRegistration("client-1", None, "none", "dcr", "https://auth.example.com")
BASIC = ClientRegistration(
    "client-1", "secret-1", "client_secret_basic", "dcr", "https://auth.example.com"
)
POST = ClientRegistration(
    "client-1", "secret-1", "client_secret_post", "dcr", "https://auth.example.com"
)


@pytest.fixture
def fake() -> FakeAuthServer:
    return FakeAuthServer()


def add(fake: FakeAuthServer, client: ClientRegistration) -> None:
    fake.authorization_server.add_client(
        client.client_id, client.client_secret, client.token_endpoint_auth_method
    )


def exchange(fake: FakeAuthServer, client=PUBLIC, code=None, code_verifier="v" * 43):
    server = fake.authorization_server
    code = code or server.issue_code()
    with fake.client() as http:
        return exchange_code(
            http,
            token_endpoint=TOKEN_URL,
            client=client,
            code=code,
            code_verifier=code_verifier,
            redirect_uri=REDIRECT_URI,
            resource=RESOURCE,
            now=NOW,
        )


def do_refresh(fake: FakeAuthServer, refresh_token: str, client=PUBLIC, scope=None):
    with fake.client() as http:
        return refresh(
            http,
            token_endpoint=TOKEN_URL,
            client=client,
            refresh_token=refresh_token,
            resource=RESOURCE,
            scope=scope,
            now=NOW,
        )


def token_request(fake: FakeAuthServer):
    """The last request to the token endpoint."""
    return fake.requests_to(TOKEN_URL)[-1]


# -- client authentication ----------------------------------------------------


def test_exchange_with_auth_method_none_sends_client_id_in_the_body(fake):
    add(fake, PUBLIC)

    exchange(fake, PUBLIC)

    sent = token_request(fake)
    assert "authorization" not in sent.headers
    form = sent.form
    assert form.pop("code").startswith("code-")
    assert form == {
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 43,
        "resource": RESOURCE,
        "client_id": "client-1",
    }


def test_exchange_with_client_secret_basic_sends_exactly_the_basic_header(fake):
    add(fake, BASIC)

    exchange(fake, BASIC)

    sent = token_request(fake)
    assert sent.headers["authorization"] == (
        "Basic " + base64.b64encode(b"client-1:secret-1").decode()
    )
    assert "client_id" not in sent.form
    assert "client_secret" not in sent.form


def test_client_secret_basic_form_encodes_id_and_secret_before_base64(fake):
    client = ClientRegistration(
        "id:with space", "p@ss:w/rd+", "client_secret_basic", "dcr", "x"
    )
    add(fake, client)

    exchange(fake, client)

    sent = token_request(fake)
    expected = base64.b64encode(b"id%3Awith+space:p%40ss%3Aw%2Frd%2B").decode()
    assert sent.headers["authorization"] == f"Basic {expected}"


def test_exchange_with_client_secret_post_sends_both_in_the_body(fake):
    add(fake, POST)

    exchange(fake, POST)

    sent = token_request(fake)
    assert "authorization" not in sent.headers
    assert sent.form["client_id"] == "client-1"
    assert sent.form["client_secret"] == "secret-1"


def test_confidential_method_without_secret_is_an_error(fake):
    client = ClientRegistration("c", None, "client_secret_basic", "dcr", "x")

    with pytest.raises(TokenError):
        exchange(fake, client)

    assert fake.requests == []


def test_unknown_auth_method_is_an_error(fake):
    client = ClientRegistration("c", "s", "private_key_jwt", "dcr", "x")

    with pytest.raises(TokenError):
        exchange(fake, client)


# -- responses ----------------------------------------------------------------


def test_exchange_returns_tokens_with_expiry_from_now(fake):
    add(fake, PUBLIC)

    tokens = exchange(fake)

    assert tokens.access_token.startswith("at-")
    assert tokens.refresh_token.startswith("rt-")
    assert tokens.token_type == "Bearer"
    assert tokens.expires_at == NOW + timedelta(seconds=3600)
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)


def test_code_from_the_authorize_endpoint_is_exchanged_with_pkce(fake):
    add(fake, PUBLIC)
    with fake.client() as http:
        discovery = discover(http, fake.server_url)
    metadata = discovery.authorization_server
    pkce, state = new_pkce(), new_state()
    url = build_authorization_url(
        metadata,
        client_id="client-1",
        redirect_uri=REDIRECT_URI,
        state=state,
        code_challenge=pkce.code_challenge,
        resource=discovery.resource,
        scope="mcp",
    )
    with fake.client() as http:
        location = http.get(url).headers["location"]
    params = dict(parse_qsl(urlsplit(location).query))
    code = validate_callback(
        params,
        expected_state=state,
        issuer=metadata.issuer,
        iss_supported=metadata.authorization_response_iss_parameter_supported,
    )

    tokens = exchange(fake, code=code, code_verifier=pkce.code_verifier)

    assert tokens.scope == "mcp"
    assert token_request(fake).form["resource"] == discovery.resource


def test_wrong_code_verifier_is_invalid_grant(fake):
    add(fake, PUBLIC)
    code = fake.authorization_server.issue_code(
        code_challenge=new_pkce().code_challenge
    )

    with pytest.raises(InvalidGrant) as caught:
        exchange(fake, code=code, code_verifier="w" * 43)

    assert caught.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"access_token": "a", "token_type": "bearer"}, None),
        ({"access_token": "a"}, None),
        ({"access_token": "a", "expires_in": "60"}, NOW + timedelta(seconds=60)),
        ({"access_token": "a", "expires_in": 0}, NOW),
        ({"access_token": "a", "expires_in": "soon"}, None),
        ({"access_token": "a", "expires_in": True}, None),
    ],
)
def test_token_type_is_case_insensitive_and_expires_in_is_lenient(fake, body, expected):
    fake.routes[("POST", TOKEN_URL)] = httpx.Response(200, json=body)

    tokens = exchange(fake)

    assert tokens == Tokens(access_token="a", token_type="Bearer", expires_at=expected)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"access_token": "a", "token_type": "DPoP"}),
        httpx.Response(200, json={"token_type": "Bearer"}),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, text="<html>hello</html>"),
        httpx.Response(302, headers={"Location": "https://elsewhere.example/"}),
    ],
    ids=["dpop", "no-access-token", "list", "html", "redirect"],
)
def test_unusable_token_responses_are_token_errors(fake, response):
    fake.routes[("POST", TOKEN_URL)] = response

    with pytest.raises(TokenError) as caught:
        exchange(fake)

    assert type(caught.value) is TokenError


def test_naive_now_is_refused(fake):
    add(fake, PUBLIC)
    with fake.client() as http, pytest.raises(ValueError):
        exchange_code(
            http,
            token_endpoint=TOKEN_URL,
            client=PUBLIC,
            code=fake.authorization_server.issue_code(),
            code_verifier="v" * 43,
            redirect_uri=REDIRECT_URI,
            resource=RESOURCE,
            now=datetime(2026, 1, 1),
        )


# -- error mapping ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_grant"),
        (400, "invalid_client"),
        (401, "invalid_client"),
        (400, "unauthorized_client"),
        (200, "invalid_grant"),
    ],
)
def test_reauthorization_errors_are_invalid_grant_with_the_code_kept(
    fake, status, error
):
    fake.routes[("POST", TOKEN_URL)] = httpx.Response(status, json={"error": error})

    with pytest.raises(InvalidGrant) as caught:
        exchange(fake)

    assert caught.value.error == error


def test_bare_401_is_invalid_client(fake):
    fake.routes[("POST", TOKEN_URL)] = httpx.Response(401)

    with pytest.raises(InvalidGrant) as caught:
        exchange(fake)

    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize(
    "error", ["invalid_request", "invalid_scope", "unsupported_grant_type"]
)
def test_other_400_errors_are_plain_token_errors(fake, error):
    fake.routes[("POST", TOKEN_URL)] = httpx.Response(
        400, json={"error": error, "error_description": "nope"}
    )

    with pytest.raises(TokenError) as caught:
        exchange(fake)

    assert type(caught.value) is TokenError
    assert caught.value.error == error
    assert caught.value.description == "nope"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, json={"error": "temporarily_unavailable"}),
        httpx.Response(500, text="boom"),
        httpx.Response(502),
        httpx.Response(429, headers={"Retry-After": "3"}),
    ],
    ids=["503", "500", "502", "429"],
)
def test_server_trouble_is_transient(fake, response):
    fake.routes[("POST", TOKEN_URL)] = response

    with pytest.raises(TransientTokenError):
        exchange(fake)


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ConnectError,
        httpx.ReadTimeout,
        httpx.ConnectTimeout,
        httpx.RemoteProtocolError,
    ],
)
def test_network_failures_and_timeouts_are_transient(fake, exception):
    def fail(request):
        raise exception("failed", request=request)

    fake.routes[("POST", TOKEN_URL)] = fail

    with pytest.raises(TransientTokenError):
        do_refresh(fake, "rt-secret-value")


def test_errors_never_reveal_what_was_sent(fake):
    refresh_token = "rt-very-secret-0123456789"
    fake.routes[("POST", TOKEN_URL)] = httpx.Response(
        400,
        json={
            "error": "invalid_grant",
            "error_description": f"refresh token {refresh_token} expired; "
            "client secret secret-1 ok",
        },
    )

    with pytest.raises(InvalidGrant) as caught:
        do_refresh(fake, refresh_token, client=POST)

    error = caught.value
    for secret in (refresh_token, "secret-1"):
        assert secret not in str(error)
        assert secret not in (error.description or "")
        assert secret not in repr(error.args)
    assert "[redacted]" in error.description


# -- refresh ------------------------------------------------------------------


def test_refresh_sends_grant_resource_and_optional_scope(fake):
    add(fake, PUBLIC)
    refresh_token = fake.authorization_server.issue_refresh_token()

    tokens = do_refresh(fake, refresh_token, scope="mcp offline_access")

    assert token_request(fake).form == {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "resource": RESOURCE,
        "scope": "mcp offline_access",
        "client_id": "client-1",
    }
    assert tokens.scope == "mcp offline_access"


def test_refresh_keeps_the_old_refresh_token_when_none_is_returned(fake):
    add(fake, PUBLIC)
    refresh_token = fake.authorization_server.issue_refresh_token()

    tokens = do_refresh(fake, refresh_token)

    assert tokens.refresh_token == refresh_token
    assert tokens.expires_at == NOW + timedelta(hours=1)


def test_rotated_refresh_token_replaces_the_old_one_which_is_then_rejected(fake):
    fake.authorization_server.rotate_refresh_tokens = True
    add(fake, BASIC)
    first = fake.authorization_server.issue_refresh_token()

    tokens = do_refresh(fake, first, client=BASIC)

    assert tokens.refresh_token not in (None, first)
    assert do_refresh(fake, tokens.refresh_token, client=BASIC).refresh_token
    with pytest.raises(InvalidGrant):
        do_refresh(fake, first, client=BASIC)


def test_refresh_with_a_rejected_client_is_invalid_grant(fake):
    refresh_token = fake.authorization_server.issue_refresh_token()

    with pytest.raises(InvalidGrant) as caught:
        do_refresh(fake, refresh_token, client=BASIC)

    assert caught.value.error == "invalid_client"


# -- revocation ---------------------------------------------------------------


def test_revoke_posts_token_hint_and_client_authentication(fake):
    add(fake, BASIC)
    refresh_token = fake.authorization_server.issue_refresh_token()

    with fake.client() as http:
        revoke(
            http,
            revocation_endpoint=REVOKE_URL,
            client=BASIC,
            token=refresh_token,
            token_type_hint="refresh_token",
        )

    (sent,) = fake.requests_to(REVOKE_URL)
    assert sent.form == {"token": refresh_token, "token_type_hint": "refresh_token"}
    assert sent.headers["authorization"].startswith("Basic ")
    assert fake.authorization_server.revoked == [refresh_token]
    assert refresh_token not in fake.authorization_server.refresh_tokens


def test_revoke_503_is_transient(fake):
    fake.routes[("POST", REVOKE_URL)] = httpx.Response(503)

    with fake.client() as http, pytest.raises(TransientTokenError):
        revoke(http, revocation_endpoint=REVOKE_URL, client=PUBLIC, token="t")


def test_revoke_unsupported_token_type_is_a_token_error(fake):
    fake.routes[("POST", REVOKE_URL)] = httpx.Response(
        400, json={"error": "unsupported_token_type"}
    )

    with fake.client() as http, pytest.raises(TokenError) as caught:
        revoke(http, revocation_endpoint=REVOKE_URL, client=PUBLIC, token="t")

    assert caught.value.error == "unsupported_token_type"

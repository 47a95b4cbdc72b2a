"""The authorization URL and the callback checks (RFC 6749 §4.1, RFC 9207)."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from oauth.client.authorization import build_authorization_url, validate_callback
from oauth.client.discovery import AuthorizationServerMetadata
from oauth.client.errors import (
    AuthorizationDenied,
    CallbackError,
    IssMismatch,
    StateMismatch,
)

ISSUER = "https://auth.example.com"
STATE = "state-abc"


def metadata(authorization_endpoint="https://auth.example.com/authorize"):
    return AuthorizationServerMetadata(
        issuer=ISSUER,
        authorization_endpoint=authorization_endpoint,
        token_endpoint="https://auth.example.com/token",
        code_challenge_methods_supported=("S256",),
    )


def build(endpoint="https://auth.example.com/authorize", **overrides):
    arguments = {
        "client_id": "client-1",
        "redirect_uri": "https://app.example.com/cb/",
        "state": STATE,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "resource": "https://mcp.example.com",
        "scope": "mcp:basic offline_access",
    }
    arguments.update(overrides)
    return build_authorization_url(metadata(endpoint), **arguments)


# -- authorization URL --------------------------------------------------------


def test_authorization_url_carries_every_required_parameter():
    url = build()

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://auth.example.com/authorize"
    )
    assert dict(parse_qsl(parts.query)) == {
        "response_type": "code",
        "client_id": "client-1",
        "redirect_uri": "https://app.example.com/cb/",
        "state": STATE,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "resource": "https://mcp.example.com",
        "scope": "mcp:basic offline_access",
    }


def test_resource_is_sent_verbatim_without_a_trailing_slash():
    query = parse_qs(urlsplit(build(resource="http://localhost:3000")).query)

    assert query["resource"] == ["http://localhost:3000"]


def test_scope_is_omitted_when_none():
    query = parse_qs(urlsplit(build(scope=None)).query)

    assert "scope" not in query


def test_existing_endpoint_query_is_kept_and_ours_not_duplicated():
    url = build(
        endpoint="https://auth.example.com/authorize?tenant=t1&prompt=&response_type=token#x"
    )

    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    assert ("tenant", "t1") in pairs
    assert ("prompt", "") in pairs
    assert [value for name, value in pairs if name == "response_type"] == ["code"]
    assert urlsplit(url).fragment == ""


# -- callback: state ----------------------------------------------------------


def check(params, *, iss_supported=True, issuer=ISSUER):
    return validate_callback(
        params, expected_state=STATE, issuer=issuer, iss_supported=iss_supported
    )


@pytest.mark.parametrize(
    "params",
    [
        {"code": "c", "iss": ISSUER},
        {"code": "c", "iss": ISSUER, "state": "other"},
        {"code": "c", "iss": ISSUER, "state": ""},
    ],
    ids=["missing", "different", "empty"],
)
def test_state_mismatch_is_rejected_first(params):
    with pytest.raises(StateMismatch):
        check(params)


def test_state_is_checked_before_errors_are_read():
    with pytest.raises(StateMismatch):
        check({"state": "forged", "error": "access_denied"})


# -- callback: the RFC 9207 table ---------------------------------------------


def test_advertised_and_matching_iss_proceeds():
    assert check({"state": STATE, "code": "c", "iss": ISSUER}) == "c"


def test_advertised_and_missing_iss_is_rejected():
    with pytest.raises(IssMismatch):
        check({"state": STATE, "code": "c"})


def test_not_advertised_but_present_iss_is_still_compared():
    with pytest.raises(IssMismatch):
        check(
            {"state": STATE, "code": "c", "iss": "https://evil.example.com"},
            iss_supported=False,
        )
    assert (
        check({"state": STATE, "code": "c", "iss": ISSUER}, iss_supported=False) == "c"
    )


def test_neither_advertised_nor_present_proceeds():
    assert check({"state": STATE, "code": "c"}, iss_supported=False) == "c"


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER + "/",
        "HTTPS://auth.example.com",
        "https://AUTH.example.com",
        "https://auth.example.com:443",
        "https://auth.example.com/%2E",
        "",
    ],
)
def test_iss_is_compared_without_normalisation(iss):
    with pytest.raises(IssMismatch):
        check({"state": STATE, "code": "c", "iss": iss})


def test_iss_mismatch_hides_the_error_parameters():
    with pytest.raises(IssMismatch) as caught:
        check(
            {
                "state": STATE,
                "iss": "https://evil.example.com",
                "error": "access_denied",
                "error_description": "Click https://evil.example.com to fix",
            }
        )

    error = caught.value
    assert type(error) is IssMismatch
    assert error.error is None and error.description is None
    assert "evil" not in error.message


# -- callback: errors and code ------------------------------------------------


def test_access_denied_means_the_user_declined():
    with pytest.raises(AuthorizationDenied) as caught:
        check(
            {
                "state": STATE,
                "iss": ISSUER,
                "error": "access_denied",
                "error_description": "User said no",
            }
        )

    assert caught.value.error == "access_denied"
    assert caught.value.description == "User said no"


def test_other_errors_keep_code_and_capped_description_apart():
    with pytest.raises(CallbackError) as caught:
        check(
            {
                "state": STATE,
                "iss": ISSUER,
                "error": "invalid_scope",
                "error_description": "d" * 5000,
            }
        )

    error = caught.value
    assert type(error) is CallbackError
    assert error.error == "invalid_scope"
    assert len(error.description) == 300
    assert "d" * 50 not in error.message


@pytest.mark.parametrize("code", [None, ""])
def test_missing_code_is_rejected(code):
    params = {"state": STATE, "iss": ISSUER}
    if code is not None:
        params["code"] = code

    with pytest.raises(CallbackError, match="no authorization code"):
        check(params)

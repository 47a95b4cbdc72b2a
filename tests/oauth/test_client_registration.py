"""Client registration: method priority, RFC 7591 DCR and CIMD."""

from __future__ import annotations

import httpx
import pytest

from oauth.client.discovery import AuthorizationServerMetadata
from oauth.client.errors import NoRegistrationMethod, RegistrationError
from oauth.client.registration import (
    ClientRegistration,
    build_registration_request,
    choose_registration_method,
    choose_token_endpoint_auth_method,
    cimd_document,
    cimd_registration,
    register,
)

from .fake_auth_server import FakeAuthServer

REDIRECT_URI = "https://app.example.com/mcp/oauth/callback/"
CIMD_URL = "https://app.example.com/oauth/client-metadata.json"


def metadata(**overrides) -> AuthorizationServerMetadata:
    fields = {
        "issuer": "https://auth.example.com",
        "authorization_endpoint": "https://auth.example.com/authorize",
        "token_endpoint": "https://auth.example.com/token",
        "registration_endpoint": "https://auth.example.com/register",
        "code_challenge_methods_supported": ("S256",),
    }
    fields.update(overrides)
    return AuthorizationServerMetadata(**fields)


# -- which method -------------------------------------------------------------


def test_pre_registered_credentials_come_first():
    chosen = choose_registration_method(
        metadata(client_id_metadata_document_supported=True),
        has_preregistered=True,
        cimd_url=CIMD_URL,
    )

    assert chosen == "pre-registered"


def test_cimd_comes_before_dcr_when_the_server_supports_it():
    chosen = choose_registration_method(
        metadata(client_id_metadata_document_supported=True),
        has_preregistered=False,
        cimd_url=CIMD_URL,
    )

    assert chosen == "cimd"


def test_cimd_is_skipped_without_server_support_or_without_a_document_url():
    assert (
        choose_registration_method(
            metadata(), has_preregistered=False, cimd_url=CIMD_URL
        )
        == "dcr"
    )
    assert (
        choose_registration_method(
            metadata(client_id_metadata_document_supported=True),
            has_preregistered=False,
            cimd_url=None,
        )
        == "dcr"
    )


def test_no_way_to_register_means_this_server_needs_a_token():
    with pytest.raises(NoRegistrationMethod) as caught:
        choose_registration_method(
            metadata(registration_endpoint=None), has_preregistered=False, cimd_url=None
        )

    assert "needs a token" in caught.value.message


# -- DCR request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("supported", "expected"),
    [
        (None, "client_secret_basic"),
        (("none", "client_secret_post", "client_secret_basic"), "client_secret_basic"),
        (("none", "client_secret_post"), "client_secret_post"),
        (("none",), "none"),
        (("private_key_jwt", "none"), "none"),
    ],
)
def test_auth_method_prefers_a_confidential_client(supported, expected):
    assert choose_token_endpoint_auth_method(supported) == expected


def test_auth_method_nothing_supported_is_an_error():
    with pytest.raises(RegistrationError):
        choose_token_endpoint_auth_method(("private_key_jwt",))


def test_registration_request_describes_a_web_app():
    request = build_registration_request(
        metadata(token_endpoint_auth_methods_supported=("client_secret_post", "none")),
        client_name="MCP Settings",
        redirect_uris=[REDIRECT_URI],
        scope="mcp:basic offline_access",
    )

    assert request == {
        "client_name": "MCP Settings",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "web",
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "mcp:basic offline_access",
    }


def test_registration_request_omits_scope_when_there_is_none():
    request = build_registration_request(
        metadata(), client_name="MCP Settings", redirect_uris=[REDIRECT_URI]
    )

    assert "scope" not in request
    assert request["token_endpoint_auth_method"] == "client_secret_basic"


# -- DCR against the fake server ----------------------------------------------


def run_register(fake: FakeAuthServer, request) -> ClientRegistration:
    server = fake.authorization_server
    with fake.client() as http:
        return register(
            http,
            metadata(registration_endpoint=server.registration_endpoint),
            request,
        )


def test_register_posts_json_and_returns_the_registration():
    fake = FakeAuthServer()
    request = build_registration_request(
        metadata(), client_name="MCP Settings", redirect_uris=[REDIRECT_URI]
    )

    registration = run_register(fake, request)

    (sent,) = fake.requests_to("https://auth.example.com/register")
    assert sent.method == "POST"
    assert sent.json == request
    assert registration.kind == "dcr"
    assert registration.issuer == "https://auth.example.com"
    assert registration.token_endpoint_auth_method == "client_secret_basic"
    assert registration.client_secret
    assert registration.client_secret not in repr(registration)


def test_register_honours_the_method_the_server_actually_registered():
    fake = FakeAuthServer()
    fake.authorization_server.registered_auth_method = "none"

    registration = run_register(
        fake,
        build_registration_request(
            metadata(), client_name="x", redirect_uris=[REDIRECT_URI]
        ),
    )

    assert registration.token_endpoint_auth_method == "none"
    assert registration.client_secret is None


def test_register_assumes_the_requested_method_when_the_response_omits_it():
    fake = FakeAuthServer()
    fake.routes[("POST", "https://auth.example.com/register")] = httpx.Response(
        201, json={"client_id": "abc", "client_secret": "s3"}
    )

    registration = run_register(
        fake, {"token_endpoint_auth_method": "client_secret_post"}
    )

    assert registration.client_id == "abc"
    assert registration.token_endpoint_auth_method == "client_secret_post"


def test_register_refuses_a_confidential_registration_without_a_secret():
    fake = FakeAuthServer()
    fake.routes[("POST", "https://auth.example.com/register")] = httpx.Response(
        201,
        json={"client_id": "abc", "token_endpoint_auth_method": "client_secret_basic"},
    )

    with pytest.raises(RegistrationError, match="no client secret"):
        run_register(fake, {})


def test_register_refuses_an_unusable_method():
    fake = FakeAuthServer()
    fake.routes[("POST", "https://auth.example.com/register")] = httpx.Response(
        201, json={"client_id": "abc", "token_endpoint_auth_method": "private_key_jwt"}
    )

    with pytest.raises(RegistrationError):
        run_register(fake, {})


def test_register_error_keeps_code_and_capped_description_apart():
    fake = FakeAuthServer()
    fake.authorization_server.registration_error = (
        400,
        {"error": "invalid_redirect_uri", "error_description": "x" * 1000},
    )

    with pytest.raises(RegistrationError) as caught:
        run_register(fake, {})

    error = caught.value
    assert error.error == "invalid_redirect_uri"
    assert len(error.description) == 300
    assert "HTTP 400" in error.message


def test_register_error_without_json_is_still_a_registration_error():
    fake = FakeAuthServer()
    fake.routes[("POST", "https://auth.example.com/register")] = httpx.Response(
        500, text="<html>oops</html>"
    )

    with pytest.raises(RegistrationError) as caught:
        run_register(fake, {})

    assert caught.value.error is None


def test_register_network_failure_is_a_registration_error():
    fake = FakeAuthServer()

    def down(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    fake.routes[("POST", "https://auth.example.com/register")] = down

    with pytest.raises(RegistrationError, match="could not be reached"):
        run_register(fake, {})


def test_register_response_without_client_id_is_refused():
    fake = FakeAuthServer()
    fake.routes[("POST", "https://auth.example.com/register")] = httpx.Response(
        201, json={"client_secret": "s"}
    )

    with pytest.raises(RegistrationError, match="client_id"):
        run_register(fake, {})


def test_register_without_endpoint_needs_a_token():
    with httpx.Client() as http, pytest.raises(NoRegistrationMethod):
        register(http, metadata(registration_endpoint=None), {})


# -- CIMD ---------------------------------------------------------------------


def test_cimd_document_names_itself_and_asks_for_refresh_tokens():
    document = cimd_document(CIMD_URL, [REDIRECT_URI], "MCP Settings")

    assert document == {
        "client_id": CIMD_URL,
        "client_name": "MCP Settings",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "web",
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://app.example.com/meta.json",
        "https://app.example.com",
        "https://app.example.com/",
    ],
)
def test_cimd_client_id_must_be_an_https_url_with_a_path(url):
    with pytest.raises(ValueError):
        cimd_document(url, [REDIRECT_URI], "MCP Settings")


def test_cimd_registration_is_public_and_bound_to_the_issuer():
    registration = cimd_registration(CIMD_URL, issuer="https://auth.example.com")

    assert registration == ClientRegistration(
        client_id=CIMD_URL,
        client_secret=None,
        token_endpoint_auth_method="none",
        kind="cimd",
        issuer="https://auth.example.com",
    )

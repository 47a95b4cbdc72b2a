"""The official MCP SDK server, protected by an OAuth authorization server.

Test peer: ``MCPServer`` (mcp 2.x) as an OAuth 2.1 resource server whose
tokens come from ``tests/node/provider.mjs`` (oidc-provider). 127.0.0.1 only.

* ``/mcp``: Streamable HTTP; tools ``echo(text)`` and ``whoami()``. Needs
  ``Authorization: Bearer <JWT>`` signed by the issuer's ``/jwks`` with
  ``iss`` = the issuer and ``aud`` = this server's resource URL
  (``http://127.0.0.1:P/mcp``) and the required scope; otherwise 401
  ``WWW-Authenticate: Bearer error="invalid_token", error_description=
  "Authentication required", resource_metadata="http://127.0.0.1:P/.well-known/
  oauth-protected-resource/mcp"`` (403 ``insufficient_scope`` if only the
  scope is missing).
* ``/.well-known/oauth-protected-resource/mcp`` (RFC 9728, served by the SDK,
  no auth): ``{"resource": "http://127.0.0.1:P/mcp", "authorization_servers":
  ["<issuer>"], "scopes_supported": ["mcp:tools"], "bearer_methods_supported":
  ["header"]}``. Nothing is served at the path-less
  ``/.well-known/oauth-protected-resource`` (404).
* ``GET /healthz``: 200 at once (readiness; no token).

Run: ``python -m tests.peers.protected_mcp_server --port 0 --issuer ISSUER
[--scope mcp:tools]``; the URL is printed on stdout as
``MCP_PEER_URL http://127.0.0.1:P/mcp``. Tests use
:func:`tests.peers.oauth_peers.start_protected_mcp_server`.
"""

import argparse
import asyncio
import socket

from tests.peers.mcp_server import HealthCheck

URL_LINE_PREFIX = "MCP_PEER_URL "
JWT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


def build_app(*, issuer: str, resource: str, scope: str):
    """Return the ASGI app: the protected Streamable HTTP endpoint plus PRM."""
    import jwt
    from mcp.server.auth.middleware.auth_context import get_access_token
    from mcp.server.auth.provider import AccessToken, TokenVerifier
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer

    jwks = jwt.PyJWKClient(f"{issuer}/jwks", cache_keys=True, timeout=5)

    class JWTVerifier(TokenVerifier):
        """Check the signature against the AS's JWKS, ``iss``, ``aud`` and ``exp``."""

        async def verify_token(self, token: str) -> AccessToken | None:
            try:
                key = await asyncio.to_thread(
                    lambda: jwks.get_signing_key_from_jwt(token).key
                )
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=JWT_ALGORITHMS,
                    audience=resource,
                    issuer=issuer,
                    options={"require": ["exp", "iss", "aud"]},
                )
            except jwt.PyJWTError:
                return None
            aud = claims["aud"]
            return AccessToken(
                token=token,
                client_id=claims.get("client_id", ""),
                scopes=claims.get("scope", "").split(),
                expires_at=claims["exp"],
                resource=aud if isinstance(aud, str) else resource,
                subject=claims.get("sub"),
                claims={"iss": claims["iss"]},
            )

    server = MCPServer(
        "protected-mcp-test-peer",
        version="1.0.0",
        instructions="Protected test peer.",
        log_level="WARNING",
        token_verifier=JWTVerifier(),
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=resource,
            required_scopes=[scope],
            validate_token_resource=True,
        ),
    )

    @server.tool(title="Echo", description="Return the text it is given.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @server.tool(description="Describe the caller's access token.")
    def whoami() -> dict:
        token = get_access_token()
        if token is None:  # pragma: no cover - the endpoint requires a token
            return {}
        return {
            "subject": token.subject,
            "client_id": token.client_id,
            "scopes": token.scopes,
            "resource": token.resource,
            "issuer": (token.claims or {}).get("iss"),
        }

    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    return HealthCheck(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--scope", default="mcp:tools")
    args = parser.parse_args(argv)

    import uvicorn

    # Bind first: the resource URL (the token audience) needs the real port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    app = build_app(issuer=args.issuer.rstrip("/"), resource=url, scope=args.scope)
    print(f"{URL_LINE_PREFIX}{url}", flush=True)
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=1, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

"""An OAuth world for the Django side: the fake AS plus a fake MCP endpoint
that accepts exactly the access tokens that AS issued. The ``world``
fixture (tests/conftest.py) routes every outbound client of the app to it."""

from __future__ import annotations

import json

import httpx

from mcpsettings import outbound
from tests.oauth.fake_auth_server import FakeAuthServer

MCP_URL = "https://mcp.example.com/mcp"


def mcp_endpoint(world: FakeAuthServer):
    def answer(request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        if token not in world.authorization_server.access_tokens:
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": (
                        'Bearer error="invalid_token", '
                        f'resource_metadata="{world.prm_url}", scope="mcp:tools"'
                    )
                },
            )
        message = json.loads(request.content)
        if "id" not in message:
            return httpx.Response(202)
        method = message["method"]
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        else:
            result = {}
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": message["id"], "result": result}
        )

    return answer


def make_world(monkeypatch, settings) -> FakeAuthServer:
    settings.OAUTH_CLIENT_METADATA_URL = ""
    fake = FakeAuthServer(server_url=MCP_URL, prm_at="path")
    fake.routes[("POST", MCP_URL)] = mcp_endpoint(fake)
    fake.routes[("DELETE", MCP_URL)] = httpx.Response(200)
    monkeypatch.setattr(outbound, "make_client", lambda **kwargs: fake.client())
    return fake

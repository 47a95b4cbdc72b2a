"""Fixtures shared by the whole suite: users, clients and factories."""

from __future__ import annotations

import itertools

import pytest

_counter = itertools.count(1)


@pytest.fixture
def user_factory(django_user_model):
    def make(username=None, **kwargs):
        username = username or f"user{next(_counter)}"
        return django_user_model.objects.create_user(
            username=username, password="correct horse battery", **kwargs
        )

    return make


@pytest.fixture
def user(user_factory):
    return user_factory("alice")


@pytest.fixture
def other_user(user_factory):
    return user_factory("mallory")


@pytest.fixture
def auth_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def server_factory(user):
    from servers import services

    def make(owner=None, url=None, **kwargs):
        return services.create_server(
            owner=owner or user,
            url=url or f"https://mcp{next(_counter)}.example.com/mcp",
            **kwargs,
        )

    return make


@pytest.fixture
def world(monkeypatch, settings):
    """A fake authorization server + MCP server (``tests.oauth.world``),
    reached by every outbound client the app makes."""
    from tests.oauth.world import make_world

    return make_world(monkeypatch, settings)

"""Reads of user data. Every queryset here is already scoped to its owner."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from .models import McpServer, StaticToken


def servers_owned_by(user) -> QuerySet[McpServer]:
    """The owner's servers with what their cards show, in one query.

    OAuth facts come in as plain annotations, so rendering a card never loads
    (or decrypts) a token.
    """
    from oauth.models import OAuthCredential

    credential = OAuthCredential.objects.filter(server=OuterRef("pk"))
    return McpServer.objects.filter(owner=user).annotate(
        token_set=Exists(StaticToken.objects.filter(server=OuterRef("pk"))),
        oauth_issuer=Subquery(credential.values("issuer")[:1]),
        oauth_expires_at=Subquery(credential.values("expires_at")[:1]),
        oauth_status=Subquery(credential.values("status")[:1]),
        oauth_last_error=Subquery(credential.values("last_error")[:1]),
        oauth_next_attempt_at=Subquery(credential.values("next_attempt_at")[:1]),
    )

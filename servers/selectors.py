"""Reads of user data. Every queryset here is already scoped to its owner."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from .models import AuditEvent, McpServer, StaticToken


def servers_owned_by(user) -> QuerySet[McpServer]:
    return McpServer.objects.filter(owner=user).annotate(
        token_set=Exists(StaticToken.objects.filter(server=OuterRef("pk")))
    )


def recent_events_of(user, *, limit: int = 20) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(server__owner=user).select_related("server")[
        :limit
    ]

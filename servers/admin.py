"""Admin for servers and the audit log. Secret values are never displayed:
tokens appear only as "set" / "not set"."""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from .models import AuditEvent, McpServer, StaticToken


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "owner",
        "url",
        "auth_kind",
        "status",
        "enabled",
        "token_state",
    )
    list_filter = ("status", "auth_kind", "enabled", "transport")
    search_fields = ("name", "url", "owner__username", "owner__email")
    list_select_related = ("owner",)
    readonly_fields = (
        "id",
        "token_state",
        "status",
        "status_message",
        "tools",
        "last_checked_at",
        "created_at",
        "updated_at",
    )
    fields = (
        "id",
        "owner",
        "name",
        "name_is_custom",
        "url",
        "transport",
        "auth_kind",
        "enabled",
        "token_state",
        "status",
        "status_message",
        "tools",
        "last_checked_at",
        "created_at",
        "updated_at",
    )
    raw_id_fields = ("owner",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _token_set=Exists(StaticToken.objects.filter(server=OuterRef("pk")))
            )
        )

    @admin.display(description="Static token", boolean=False)
    def token_state(self, obj):
        token_set = getattr(obj, "_token_set", None)
        if token_set is None:
            token_set = obj.has_static_token
        return "set" if token_set else "not set"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "actor", "server_label")
    list_filter = ("kind",)
    search_fields = ("server_label", "actor__username")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "actor",
        "server",
        "server_label",
        "kind",
        "detail",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

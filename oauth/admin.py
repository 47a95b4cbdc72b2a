"""Admin for OAuth: registrations (with a form to add a pre-registered
client), credentials and pending authorizations. Tokens, verifiers and
client secrets are never displayed: only whether they are set."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from .models import ClientRegistration, OAuthCredential, PendingAuthorization


class ClientRegistrationForm(forms.ModelForm):
    """Adding a pre-registered client: the secret is write-only."""

    # Not named client_secret: the admin would then copy an empty field over
    # the saved secret.
    new_client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the saved secret (or for public clients).",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the saved secret")

    class Meta:
        model = ClientRegistration
        fields = (
            "issuer",
            "redirect_uri",
            "kind",
            "client_id",
            "token_endpoint_auth_method",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from django.conf import settings

        self.fields["redirect_uri"].initial = settings.OAUTH_REDIRECT_URI
        self.fields["kind"].initial = ClientRegistration.Kind.PRE_REGISTERED
        self.fields["token_endpoint_auth_method"].widget = forms.Select(
            choices=[
                ("client_secret_basic", "client_secret_basic"),
                ("client_secret_post", "client_secret_post"),
                ("none", "none (public client)"),
            ]
        )
        self.fields[
            "issuer"
        ].help_text = "Exactly the issuer in the authorization server's metadata."

    def save(self, commit=True):
        registration = super().save(commit=False)
        if self.cleaned_data.get("clear_secret"):
            registration.client_secret = None
        elif self.cleaned_data.get("new_client_secret"):
            registration.client_secret = self.cleaned_data["new_client_secret"]
        if commit:
            registration.save()
        return registration


@admin.register(ClientRegistration)
class ClientRegistrationAdmin(admin.ModelAdmin):
    form = ClientRegistrationForm
    list_display = (
        "issuer",
        "kind",
        "client_id",
        "token_endpoint_auth_method",
        "secret_state",
        "credential_count",
        "updated_at",
    )
    list_filter = ("kind",)
    search_fields = ("issuer", "client_id")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_credentials=Count("credentials"))

    @admin.display(description="Client secret")
    def secret_state(self, obj):
        return "set" if obj.client_secret else "not set"

    @admin.display(description="Users connected", ordering="_credentials")
    def credential_count(self, obj):
        return getattr(obj, "_credentials", None)


class RefreshFailingFilter(admin.SimpleListFilter):
    title = "refresh"
    parameter_name = "refresh"

    def lookups(self, request, model_admin):
        return [("failing", "Failing (retrying)"), ("ok", "No failures")]

    def queryset(self, request, queryset):
        if self.value() == "failing":
            return queryset.filter(attempts__gt=0)
        if self.value() == "ok":
            return queryset.filter(attempts=0)
        return queryset


@admin.register(OAuthCredential)
class OAuthCredentialAdmin(admin.ModelAdmin):
    list_display = (
        "server",
        "owner",
        "issuer",
        "users_connected",
        "status",
        "expires_at",
        "last_refreshed_at",
        "attempts",
        "last_error",
        "next_attempt_at",
    )
    list_filter = ("status", RefreshFailingFilter, "issuer")
    search_fields = ("server__name", "server__url", "server__owner__username", "issuer")
    list_select_related = ("server", "server__owner")
    actions = ("refresh_now", "revoke")
    fields = (
        "server",
        "status",
        "issuer",
        "resource",
        "scope",
        "requested_scope",
        "token_type",
        "tokens",
        "expires_at",
        "issued_at",
        "refresh_due_at",
        "last_refreshed_at",
        "attempts",
        "next_attempt_at",
        "last_error",
        "lease_until",
        "token_endpoint",
        "revocation_endpoint",
        "registration",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # Users connected to the same server: credentials for the same
        # resource (every user has their own server row for a shared URL).
        same_resource = (
            OAuthCredential.objects.filter(
                resource=OuterRef("resource"), status=OAuthCredential.Status.ACTIVE
            )
            .order_by()
            .values("resource")
            .annotate(users=Count("pk"))
            .values("users")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_users=Coalesce(Subquery(same_resource), 0))
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting here would skip revocation at the authorization server;
        # the "revoke" action does both.
        return False

    def has_refresh_permission(self, request):
        return request.user.has_perm("oauth.change_oauthcredential")

    has_revoke_permission = has_refresh_permission

    @admin.display(description="Owner")
    def owner(self, obj):
        return obj.server.owner

    @admin.display(description="Users connected", ordering="_users")
    def users_connected(self, obj):
        return getattr(obj, "_users", None)

    @admin.display(description="Tokens")
    def tokens(self, obj):
        refresh = "refresh token set" if obj.refresh_token else "no refresh token"
        return f"access token set, {refresh}"

    @admin.action(description="Refresh now", permissions=["refresh"])
    def refresh_now(self, request, queryset):
        from .tasks import refresh_credential_task

        active = queryset.filter(status=OAuthCredential.Status.ACTIVE)
        ids = list(active.values_list("pk", flat=True))
        for credential_id in ids:
            refresh_credential_task.delay(credential_id, force=True)
        self.message_user(request, f"Refresh queued for {len(ids)} credential(s).")
        skipped = queryset.count() - len(ids)
        if skipped:
            self.message_user(
                request,
                f"{skipped} credential(s) need re-authorization by their user "
                "and were not refreshed.",
                messages.WARNING,
            )

    @admin.action(
        description="Revoke (at the authorization server, then delete)",
        permissions=["revoke"],
    )
    def revoke(self, request, queryset):
        from .services import detach_credential

        servers = [credential.server for credential in queryset]
        for server in servers:
            # One transaction per server: revocation runs once it commits.
            with transaction.atomic():
                detach_credential(
                    server=server,
                    actor=request.user,
                    message="An administrator revoked this connection. "
                    "Authorize again to connect.",
                )
        self.message_user(request, f"Revoked {len(servers)} credential(s).")


@admin.register(PendingAuthorization)
class PendingAuthorizationAdmin(admin.ModelAdmin):
    list_display = ("server", "user", "issuer", "created_at", "expires_at")
    search_fields = ("server__name", "user__username", "issuer")
    fields = (
        "server",
        "user",
        "issuer",
        "resource",
        "scope",
        "redirect_uri",
        "authorization_endpoint",
        "token_endpoint",
        "created_at",
        "expires_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

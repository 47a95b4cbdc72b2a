"""Forms for the settings page. Tokens are write-only: never rendered back."""

from __future__ import annotations

from django import forms
from django.conf import settings

from . import rules
from .models import NAME_MAX_LENGTH, URL_MAX_LENGTH, McpServer

TOKEN_HELP = "Optional bearer token or API key. Stored encrypted, never shown again."


class ServerForm(forms.Form):
    url = forms.CharField(
        label="Server URL",
        max_length=URL_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={
                "placeholder": "https://mcp.example.com/mcp",
                "autocomplete": "off",
                "spellcheck": "false",
                "inputmode": "url",
            }
        ),
    )
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=NAME_MAX_LENGTH,
        help_text="Optional. Taken from the URL's host until you type one.",
        widget=forms.TextInput(
            attrs={"placeholder": "Server name", "autocomplete": "off"}
        ),
    )
    transport = forms.ChoiceField(
        label="Transport",
        choices=McpServer.Transport.choices,
        initial=McpServer.Transport.AUTO,
    )
    token = forms.CharField(
        label="Token",
        required=False,
        strip=False,
        help_text=TOKEN_HELP,
        widget=forms.PasswordInput(
            render_value=False,
            attrs={
                "placeholder": "Bearer token or API key",
                "autocomplete": "new-password",
            },
        ),
    )

    def clean_url(self):
        return rules.normalize_server_url(
            self.cleaned_data["url"],
            allow_private=settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
        )

    def clean_token(self):
        token = self.cleaned_data.get("token") or ""
        return rules.clean_token(token) if token.strip() else ""


class ServerEditForm(ServerForm):
    clear_token = forms.BooleanField(label="Remove the saved token", required=False)

    def __init__(self, *args, server: McpServer, **kwargs):
        initial = {
            "url": server.url,
            "name": server.name if server.name_is_custom else "",
            "transport": server.transport,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.server = server
        self.fields["name"].widget.attrs["placeholder"] = server.name
        self.fields["token"].help_text = (
            "A token is saved. Paste a new one to replace it."
            if server.token_set
            else TOKEN_HELP
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_token") and cleaned.get("token"):
            self.add_error(
                "token", "Either paste a new token or remove the saved one, not both."
            )
        return cleaned

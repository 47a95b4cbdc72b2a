"""The settings page: list, add, edit, enable/disable and delete servers.

Views read the request, call one selector or service, and respond. Every
lookup goes through ``servers_owned_by``, so another user's server is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .forms import ServerEditForm, ServerForm
from .selectors import servers_owned_by


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_http_methods(["GET"])
def server_list(request):
    servers = servers_owned_by(request.user)
    return render(request, "servers/server_list.html", {"servers": servers})


@require_http_methods(["GET", "POST"])
def server_add(request):
    form = ServerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            server = services.create_server(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Added “{server.name}”.")
            return redirect("servers:list")
    return render(request, "servers/server_form.html", {"form": form, "server": None})


@require_http_methods(["GET", "POST"])
def server_edit(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    form = ServerEditForm(request.POST or None, server=server)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                services.update_server(
                    server=server,
                    actor=request.user,
                    url=data["url"],
                    name=data["name"],
                    transport=data["transport"],
                )
                if data["token"]:
                    services.set_static_token(
                        server=server, actor=request.user, token=data["token"]
                    )
                elif data["clear_token"]:
                    services.clear_static_token(server=server, actor=request.user)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Saved “{server.name}”.")
            return redirect("servers:list")
    return render(request, "servers/server_form.html", {"form": form, "server": server})


@require_POST
def server_toggle(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    enabled = request.POST.get("enabled") == "on"
    services.set_enabled(server=server, actor=request.user, enabled=enabled)
    state = "enabled" if enabled else "disabled"
    messages.success(request, f"“{server.name}” is {state}.")
    return redirect("servers:list")


@require_http_methods(["GET", "POST"])
def server_delete(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    if request.method == "POST":
        name = server.name
        services.delete_server(server=server, actor=request.user)
        messages.success(request, f"Deleted “{name}”.")
        return redirect("servers:list")
    return render(request, "servers/server_confirm_delete.html", {"server": server})

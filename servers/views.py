"""The settings page: server cards, the Add dialog with its probe, and the
plain pages that make the basics work without JavaScript.

Views read the request, call one selector or service, and respond. Every
lookup goes through ``servers_owned_by``, so another user's server is a 404.
htmx requests get the named partial; others get the page or a redirect.
"""

from __future__ import annotations

import time

import httpx
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from mcpsettings import outbound
from oauth import client as oauth
from oauth import services as oauth_services

from . import probing, rules, services
from .checks import check_server
from .forms import ServerEditForm, ServerForm
from .selectors import servers_owned_by

PAGE = "servers/server_list.html"


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _card(request, server):
    server = servers_owned_by(request.user).get(pk=server.pk)
    return render(request, f"{PAGE}#server-card", {"server": server})


@require_http_methods(["GET"])
def server_list(request):
    servers = servers_owned_by(request.user)
    return render(request, PAGE, {"servers": servers, "form": ServerForm()})


# -- the Add dialog ---------------------------------------------------------------


@require_POST
def server_probe(request):
    report = probing.probe_url(
        user=request.user,
        url=request.POST.get("url", ""),
        transport=request.POST.get("transport", "auto"),
        token=request.POST.get("token", ""),
    )
    derived_name = rules.derive_name(request.POST.get("url", ""))
    response = render(
        request,
        f"{PAGE}#probe-result",
        {"report": report, "derived_name": derived_name},
    )
    # The page drops an answer whose generation is no longer the form's.
    response["X-Probe-Generation"] = request.POST.get("generation", "")
    return response


def _once(request, submit):
    """Run ``submit`` once per dialog submission: a double click or Enter
    plus click replays the first answer instead of adding a second server."""
    submission = request.POST.get("submission", "")
    if not submission:
        return submit()
    key = f"add-submission:{request.user.pk}:{submission[:64]}"
    if cache.add(key, "", timeout=300):
        response = submit()
        if response.get("HX-Redirect"):
            cache.set(key, response["HX-Redirect"], timeout=300)
        else:
            cache.delete(key)
        return response
    for _ in range(50):
        target = cache.get(key)
        if target:
            return HttpResponseClientRedirect(target)
        time.sleep(0.1)
    return HttpResponseClientRedirect(reverse("servers:list"))


@require_http_methods(["GET", "POST"])
def server_add(request):
    form = ServerForm(request.POST or None)
    if request.method == "POST" and request.htmx:
        return _once(request, lambda: _add_from_dialog(request, form))
    if request.method == "POST" and form.is_valid():
        try:
            server = services.create_server(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            check_server(server)
            messages.success(request, f"Added “{server.name}”. {server.status_message}")
            return redirect("servers:list")
    return render(request, "servers/server_form.html", {"form": form, "server": None})


def _add_from_dialog(request, form):
    action = request.POST.get("action", "add")
    if not form.is_valid():
        return render(request, f"{PAGE}#dialog-error", {"form": form})
    data = form.cleaned_data
    try:
        if action == "authorize":
            challenge = oauth.BearerChallenge(
                resource_metadata=request.POST.get("challenge_resource_metadata")
                or None,
                scope=request.POST.get("challenge_scope") or None,
            )
            server, url = oauth_services.add_and_authorize(
                owner=request.user,
                url=data["url"],
                name=data["name"],
                transport=data["transport"],
                challenge=challenge,
            )
            return HttpResponseClientRedirect(url)
        server = services.create_server(owner=request.user, **data)
    except ValidationError as exc:
        _apply_errors(form, exc)
        return render(request, f"{PAGE}#dialog-error", {"form": form})
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        message = getattr(exc, "message", None) or outbound.describe(exc)
        return render(
            request,
            f"{PAGE}#dialog-error",
            {"form": form, "error": f"Nothing was added. {message}"},
        )
    check_server(server)
    messages.success(request, f"Added “{server.name}”. {server.status_message}")
    return HttpResponseClientRedirect(reverse("servers:list"))


# -- one server -------------------------------------------------------------------


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
def server_check(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    check_server(server)
    if request.htmx:
        return _card(request, server)
    messages.info(request, f"“{server.name}”: {server.status_message}")
    return redirect("servers:list")


@require_POST
def server_toggle(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    enabled = request.POST.get("enabled") == "on"
    services.set_enabled(server=server, actor=request.user, enabled=enabled)
    if request.htmx:
        return _card(request, server)
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

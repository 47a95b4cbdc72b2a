"""Authorize, callback, disconnect, and the client metadata document.

Views read the request, call one service, and respond. The callback is a
full page at a fixed path (registered with providers) and only ever
redirects to the settings page.
"""

from __future__ import annotations

import httpx
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from mcpsettings import outbound
from oauth import client as oauth
from servers.checks import check_server
from servers.selectors import servers_owned_by

from . import services


def _go_to(request, url: str):
    """htmx cannot swap a cross-origin login page: navigate the whole page."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_POST
def authorize(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    try:
        url = services.start_authorization(user=request.user, server=server)
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        message = getattr(exc, "message", None) or outbound.describe(exc)
        messages.error(
            request, f"Could not start authorizing “{server.name}”: {message}"
        )
        return _go_to(request, reverse("servers:list"))
    return _go_to(request, url)


@require_GET
def callback(request):
    try:
        server = services.complete_authorization(user=request.user, params=request.GET)
    except services.PendingAuthorizationInvalid as exc:
        return render(
            request, "oauth/callback_error.html", {"message": exc.message}, status=400
        )
    except (oauth.OAuthError, httpx.HTTPError) as exc:
        message = getattr(exc, "message", None) or outbound.describe(exc)
        if isinstance(exc, oauth.AuthorizationDenied):
            messages.warning(
                request,
                "Authorization was declined. The server is saved but not connected; "
                "authorize it from its card when you are ready.",
            )
        else:
            messages.error(request, f"Authorization failed: {message}")
        return redirect("servers:list")
    check_server(server)
    if server.status == server.Status.CONNECTED:
        messages.success(request, f"“{server.name}” is authorized and connected.")
    else:
        messages.warning(
            request,
            f"“{server.name}” is authorized, but connecting failed: "
            f"{server.status_message}",
        )
    return redirect("servers:list")


@require_POST
def disconnect(request, pk):
    server = get_object_or_404(servers_owned_by(request.user), pk=pk)
    if services.disconnect(server=server, actor=request.user):
        messages.success(
            request,
            f"Disconnected “{server.name}”. Its tokens were deleted here and "
            "revocation was requested from the authorization server.",
        )
    return redirect("servers:list")


@login_not_required
@require_GET
def client_metadata(request):
    """Our OAuth client ID metadata document (CIMD), served at the URL that is
    also our ``client_id``."""
    url = settings.OAUTH_CLIENT_METADATA_URL
    if not url:
        raise Http404("No client metadata document is configured.")
    document = oauth.cimd_document(
        url,
        [settings.OAUTH_REDIRECT_URI],
        settings.OAUTH_CLIENT_NAME,
        client_uri=settings.SITE_URL,
    )
    response = JsonResponse(document)
    response["Cache-Control"] = "public, max-age=3600"
    return response

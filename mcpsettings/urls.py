"""Root URLconf: admin, accounts, the settings page (servers) and OAuth."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="servers:list"), name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("mcpsettings.accounts")),
    path("servers/", include("servers.urls")),
    path("oauth/", include("oauth.urls")),
]

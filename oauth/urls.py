from django.urls import path

from . import views

app_name = "oauth"
urlpatterns = [
    # The callback path is registered with authorization servers: never change it.
    path("callback", views.callback, name="callback"),
    path("client-metadata.json", views.client_metadata, name="client-metadata"),
    path("servers/<uuid:pk>/authorize/", views.authorize, name="authorize"),
    path("servers/<uuid:pk>/disconnect/", views.disconnect, name="disconnect"),
]

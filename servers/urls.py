from django.urls import path

from . import views

app_name = "servers"
urlpatterns = [
    path("", views.server_list, name="list"),
    path("add/", views.server_add, name="add"),
    path("probe/", views.server_probe, name="probe"),
    path("<uuid:pk>/edit/", views.server_edit, name="edit"),
    path("<uuid:pk>/check/", views.server_check, name="check"),
    path("<uuid:pk>/toggle/", views.server_toggle, name="toggle"),
    path("<uuid:pk>/delete/", views.server_delete, name="delete"),
]

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_sign_in_page_is_public_and_says_how_to_get_an_account(client):
    body = client.get(reverse("login")).content.decode()
    assert "Sign in" in body
    assert "Ask an administrator" in body


def test_sign_in_and_out(client, user):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("servers:list")
    assert client.get(reverse("servers:list")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("servers:list")).status_code == 302


def test_wrong_password_says_what_to_do(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert "Check your user name and password" in response.content.decode()


def test_signup_is_closed_by_default(client):
    assert client.get(reverse("signup")).status_code == 404


def test_open_signup_creates_an_account_and_signs_in(
    client, settings, django_user_model
):
    settings.OPEN_SIGNUP = True
    assert "Create one" in client.get(reverse("login")).content.decode()
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    assert django_user_model.objects.filter(username="newbie").exists()
    assert client.get(reverse("servers:list")).status_code == 200


def test_admin_requires_staff(auth_client):
    response = auth_client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]

"""Roles come from groups created by a migration; every page needs a signed-in user with a role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from indicators.roles import Role, has_role, user_roles

pytestmark = pytest.mark.django_db


def test_the_migration_creates_the_three_role_groups_with_permissions():
    groups = {g.name: g for g in Group.objects.all()}
    assert set(groups) >= {"Analyst", "Focal point", "Administrator"}
    assert groups["Analyst"].permissions.filter(codename="add_observation").exists()
    assert not groups["Focal point"].permissions.filter(codename="add_observation").exists()
    assert groups["Administrator"].permissions.filter(codename="change_riskfactor").exists()
    assert not groups["Analyst"].permissions.filter(codename="change_riskfactor").exists()


def test_roles_follow_group_membership(analyst, focal_point, no_role_user, django_user_model):
    assert user_roles(analyst) == {Role.ANALYST}
    assert has_role(focal_point, Role.FOCAL_POINT)
    assert not has_role(focal_point, Role.ANALYST, Role.ADMINISTRATOR)
    assert not has_role(no_role_user)
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-x-123456")
    assert user_roles(boss) == set(Role)


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("overview"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_user_without_a_role_is_refused(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(reverse("overview")).status_code == 403


@pytest.mark.parametrize("fixture", ["analyst", "focal_point", "administrator"])
def test_each_role_reaches_the_overview(client, request, fixture):
    client.force_login(request.getfixturevalue(fixture))
    assert client.get(reverse("overview")).status_code == 200


def test_login_with_the_right_password_and_logout(client, analyst):
    page = client.get(reverse("login"))
    assert b"Sign in" in page.content
    response = client.post(
        reverse("login"), {"username": "ana", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert client.get(reverse("overview")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("overview")).status_code == 302


def test_a_wrong_password_shows_an_error(client, analyst):
    response = client.post(reverse("login"), {"username": "ana", "password": "wrong"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_password_change(client, analyst):
    client.force_login(analyst)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "a-long-test-password",
            "new_password1": "another-long-pass-42",
            "new_password2": "another-long-pass-42",
        },
    )
    assert response.status_code == 302
    analyst.refresh_from_db()
    assert analyst.check_password("another-long-pass-42")

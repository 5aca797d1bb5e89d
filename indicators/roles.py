"""The three roles of the product and how views and endpoints check them.

Roles are Django groups (created by a data migration with their permissions).
Superusers hold every role. A signed-in user with no role sees nothing: risk
assessments of named countries are sensitive.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.http import HttpRequest, HttpResponse


class Role(StrEnum):
    ANALYST = "Analyst"
    FOCAL_POINT = "Focal point"
    ADMINISTRATOR = "Administrator"


def user_roles(user: Any) -> set[Role]:
    """The roles a user holds (all of them for a superuser; none when signed out)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(Role)
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = {role for role in Role if role.value in names}
        user._role_cache = cached
    return set(cached)


def has_role(user: Any, *roles: Role) -> bool:
    """True if the user holds any of ``roles`` (any role at all when none are given)."""
    held = user_roles(user)
    return bool(held & set(roles)) if roles else bool(held)


class RoleRequiredMixin(AccessMixin):
    """Class-based views: signed out -> login page; signed in without the role -> 403.

    ``required_roles`` empty means any of the three roles will do.
    """

    required_roles: tuple[Role, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, *self.required_roles):
            self.raise_exception = True
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def roles_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: which roles the signed-in user holds, for navigation."""
    held = user_roles(request.user)
    return {
        "is_analyst": Role.ANALYST in held,
        "is_focal_point": Role.FOCAL_POINT in held,
        "is_administrator": Role.ADMINISTRATOR in held,
    }

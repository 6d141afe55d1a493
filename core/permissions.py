"""Who may call what. Object rules (a streamer touches only rooms they host) live here too."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.auth import membership_of, viewer_of
from core.models import Role


class IsStaffMember(BasePermission):
    """Any staff user with a membership in an active organisation. Viewers are refused."""

    def has_permission(self, request, view) -> bool:
        membership = membership_of(request)
        return membership is not None and membership.org.is_active


def staff_with_roles(*roles: str) -> type[BasePermission]:
    class _HasRole(IsStaffMember):
        def has_permission(self, request, view) -> bool:
            return super().has_permission(request, view) and membership_of(request).role in roles

    _HasRole.__name__ = "HasRole_" + "_".join(roles)
    return _HasRole


IsAdmin = staff_with_roles(Role.ADMIN)
IsStreamerOrAdmin = staff_with_roles(Role.STREAMER, Role.ADMIN)
IsSalesOrAdmin = staff_with_roles(Role.SALES, Role.ADMIN)


class IsViewer(BasePermission):
    def has_permission(self, request, view) -> bool:
        return viewer_of(request) is not None


class IsViewerOrStaff(BasePermission):
    def has_permission(self, request, view) -> bool:
        return viewer_of(request) is not None or IsStaffMember().has_permission(request, view)


class PerMethodPermissionsMixin:
    # ``permission_classes_by_method = {"POST": [...]}`` overrides ``permission_classes`` per
    # verb. (A comment, not a docstring: drf-spectacular would publish a docstring.)

    permission_classes_by_method: dict = {}

    def get_permissions(self):
        classes = self.permission_classes_by_method.get(
            self.request.method, self.permission_classes
        )
        return [cls() for cls in classes]

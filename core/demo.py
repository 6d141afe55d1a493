"""The demo organisation (README.md, "Two commands"; docs/rooms.md, "End to end with
`make run`"). Idempotent: running it twice changes nothing.

Each app seeds its own part in ``<app>/demo.py`` (``seed(ctx)``); this module creates the
organisations and users they hang off and calls them in INSTALLED_APPS order, which lists
the apps bottom-up (docs/architecture.md): core names no app, it finds their demo modules
the way Django's admin finds ``admin.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from core.models import Membership, Organization, Role

DEMO_PASSWORD = "demo12345"  # noqa: S105 - the published demo password


@dataclass
class DemoContext:
    org: Organization
    other_org: Organization
    users: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def _user(
    username: str, org: Organization, role: str, *, is_staff: bool = False, reveal: bool = False
):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_staff": is_staff})
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    Membership.objects.update_or_create(
        user=user, defaults={"org": org, "role": role, "can_reveal_pii": reveal}
    )
    return user


@transaction.atomic
def seed_demo() -> DemoContext:
    org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "千面演示品牌"})
    other, _ = Organization.objects.get_or_create(slug="demo2", defaults={"name": "另一个品牌"})
    ctx = DemoContext(org=org, other_org=other)
    ctx.users["host"] = _user("host", org, Role.STREAMER)
    ctx.users["sales"] = _user("sales", org, Role.SALES)
    admin_user = _user("admin", org, Role.ADMIN, is_staff=True, reveal=True)
    # The org admin works in Django admin on their organisation's data only (core.admin).
    admin_user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=[c.label for c in _project_apps()])
    )
    ctx.users["admin"] = admin_user
    ctx.users["other"] = _user("other", other, Role.ADMIN)

    for app_config in _project_apps():
        if app_config.name != "core" and module_has_submodule(app_config.module, "demo"):
            import_module(f"{app_config.name}.demo").seed(ctx)
    return ctx


def _project_apps() -> list:
    """This repository's apps (not Django's or third parties'), in INSTALLED_APPS order."""
    base = Path(settings.BASE_DIR).resolve()
    return [c for c in apps.get_app_configs() if Path(c.path).resolve().parent == base]

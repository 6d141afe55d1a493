"""Named actors shared by all tests: host_alice, sales_bob, admin_carol, viewer_dan
in organisation "acme", and outsider_erin in organisation "other"."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

from core.models import Role
from core.tokens import issue_staff_token, issue_viewer_token
from tests.factories import (
    ContactFactory,
    MembershipFactory,
    OrganizationFactory,
    StreamerProfileFactory,
    UserFactory,
)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    """Integration tests need PostgreSQL and Redis. Under CI=true they must run: fail loudly."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    wanted = [item for item in items if item.get_closest_marker("integration")]
    if not wanted:
        return
    configured = database_url.startswith("postgres") and redis_url.startswith("redis")
    if not configured:
        if os.environ.get("CI") == "true" and os.environ.get("QM_TIER") == "integration":
            raise pytest.UsageError(
                "integration tier under CI: DATABASE_URL and REDIS_URL must be set"
            )
        skip = pytest.mark.skip(reason="integration tier: run `make test-integration`")
        for item in wanted:
            item.add_marker(skip)
        return
    if not _reachable(database_url, 5432):
        raise pytest.UsageError(f"integration tier: PostgreSQL at {database_url} is unreachable")
    if not _reachable(redis_url, 6379):
        raise pytest.UsageError(f"integration tier: Redis at {redis_url} is unreachable")


@dataclass
class Actor:
    user: object
    membership: object
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        return client


def _staff(org, username: str, role: str, **extra) -> Actor:
    membership = MembershipFactory(org=org, user=UserFactory(username=username), role=role, **extra)
    return Actor(
        user=membership.user, membership=membership, token=issue_staff_token(membership=membership)
    )


@pytest.fixture
def acme(db):
    return OrganizationFactory(slug="acme", name="Acme 品牌")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="other", name="另一个品牌")


@pytest.fixture
def host_alice(acme) -> Actor:
    actor = _staff(acme, "alice", Role.STREAMER)
    actor.profile = StreamerProfileFactory(org=acme, user=actor.user, name="Alice")
    return actor


@pytest.fixture
def host_frank(acme) -> Actor:
    """A second streamer in the same organisation."""
    actor = _staff(acme, "frank", Role.STREAMER)
    actor.profile = StreamerProfileFactory(org=acme, user=actor.user, name="Frank")
    return actor


@pytest.fixture
def sales_bob(acme) -> Actor:
    return _staff(acme, "bob", Role.SALES)


@pytest.fixture
def admin_carol(acme) -> Actor:
    return _staff(acme, "carol", Role.ADMIN)


@pytest.fixture
def admin_browser(admin_carol):
    """Carol in Django admin (staff flag, the campaigns and wechat apps' permissions), logged in."""
    from django.contrib.auth.models import Permission
    from django.test import Client

    user = admin_carol.user
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["campaigns", "wechat"])
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outsider_erin(other_org) -> Actor:
    actor = _staff(other_org, "erin", Role.ADMIN)
    actor.profile = StreamerProfileFactory(org=other_org, user=None, name="Erin 的主播")
    return actor


@dataclass
class ViewerActor:
    contact: object
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        return client


@pytest.fixture
def viewer_dan(acme) -> ViewerActor:
    contact = ContactFactory(org=acme, nickname="Dan")
    token = issue_viewer_token(
        org_id=acme.pk, contact_id=contact.pk, device="dev-dan", nickname="Dan"
    )
    return ViewerActor(contact=contact, token=token)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and cached tokens live in the cache: every test starts empty."""
    from django.core.cache import cache

    cache.clear()
    yield

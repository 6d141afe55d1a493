"""Strict writes, API-wide: every write endpoint in the OpenAPI schema that takes a body
refuses fields it does not take (unknown or read-only) with a 400 naming them
(core/serializers.py, docs/api.md)."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings

from core.serializers import StrictInputMixin
from tests.factories import ProductFactory, RoomFactory

WRITES = ("POST", "PUT", "PATCH")


def write_endpoints() -> list[tuple[str, str, object]]:
    """(method, path, request serializer or None) of every write operation in the schema."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    found = []
    for path, path_regex, method, view in generator._get_paths_and_endpoints():
        if method not in WRITES:
            continue
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, None)
        schema = view.schema
        schema.path, schema.path_regex, schema.method, schema.view = (
            path,
            path_regex,
            method,
            view,
        )
        found.append((method, path, schema.get_request_serializer()))
    return found


ENDPOINTS = write_endpoints()
WITH_BODY = [(m, p, s) for m, p, s in ENDPOINTS if s is not None]


def test_the_walk_covers_the_write_api():
    assert len(WITH_BODY) >= 40
    paths = {(m, p) for m, p, _ in WITH_BODY}
    assert {("POST", "/api/v1/rooms"), ("PATCH", "/api/v1/leads/{lead_id}")} <= paths


@pytest.mark.parametrize(
    ("method", "path", "serializer"), WITH_BODY, ids=[f"{m} {p}" for m, p, _ in WITH_BODY]
)
def test_every_write_endpoint_refuses_unknown_and_read_only_fields(method, path, serializer):
    cls = serializer if isinstance(serializer, type) else type(serializer)
    assert issubclass(cls, StrictInputMixin), f"{cls.__qualname__}: not a core.serializers base"
    instance = cls(data={"qm_no_such_field": 1}, partial=method == "PATCH")
    assert not instance.is_valid()
    assert "qm_no_such_field" in instance.errors
    read_only = [name for name, field in instance.fields.items() if field.read_only]
    if read_only:
        instance = cls(data={read_only[0]: 1}, partial=method == "PATCH")
        assert not instance.is_valid() and read_only[0] in instance.errors


# --- the cases at their real URLs --------------------------------------------------


@pytest.mark.django_db
def test_rooms_products_and_leads_answer_400_naming_the_field(acme, host_alice, admin_carol):
    from tests.factories import ContactFactory

    host = host_alice.client()
    created = host.post(
        "/api/v1/rooms",
        {"title": "新直播", "scheduled_start": "2030-01-01T20:00:00+08:00", "colour": "red"},
        format="json",
    )
    assert created.status_code == 400
    assert created.json()["code"] == "invalid" and "colour" in created.json()["fields"]
    room = RoomFactory(org=acme, streamer=host_alice.profile)
    patched = host.patch(f"/api/v1/rooms/{room.pk}", {"titel": "错字"}, format="json")
    assert patched.status_code == 400 and "titel" in patched.json()["fields"]

    admin = admin_carol.client()
    product = admin.post(
        "/api/v1/products", {"name": "面膜", "price": "9.9", "stok": 3}, format="json"
    )
    assert product.status_code == 400 and "stok" in product.json()["fields"]
    existing = ProductFactory(org=acme)
    read_only = admin.patch(f"/api/v1/products/{existing.pk}", {"id": 999}, format="json")
    assert read_only.status_code == 400 and "id" in read_only.json()["fields"]

    lead = ContactFactory(org=acme)
    bad = admin.patch(f"/api/v1/leads/{lead.pk}", {"score": 99, "hobby": "x"}, format="json")
    assert bad.status_code == 400 and {"score", "hobby"} <= set(bad.json()["fields"])
    lead.refresh_from_db()
    assert lead.score != 99

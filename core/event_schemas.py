"""Typed event payloads: the one checker behind every app's event schemas.

Each app declares its events' payloads as ``TypedDict`` classes in its schema module —
room events in ``livecommerce/events.py``, staff events in ``core/staff_events.py``, CRM
behaviour events in ``crm/events.py`` — and maps each event kind to its schema (a
``TypedDict``, or a union of them when the payload has variants, e.g. ``moderation``).
The publish functions call ``check_payload`` when ``settings.EVENT_SCHEMA_CHECKS`` is on
(test settings, and ``DEBUG``); in production the check is skipped so the publish path
stays as fast as before. Payloads are plain dicts on the wire either way: a schema never
changes what a client receives.

The checker knows what these payloads hold and nothing more: ``TypedDict`` (every key
required unless the class is ``total=False``, no extra key), unions (``A | B``, ``X | None``), ``Literal``, ``list[X]``,
``dict[str, X]``, ``Any``, ``int`` (not ``bool``), ``float`` (an ``int`` too), ``str``,
``bool``.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from django.conf import settings


class EventSchemaError(TypeError):
    """A published payload does not match its event's schema (or the kind has none)."""


def checks_enabled() -> bool:
    return settings.EVENT_SCHEMA_CHECKS


def check_payload(schemas: Mapping[str, Any], kind: str, payload: object, *, what: str) -> None:
    """Raise ``EventSchemaError`` unless ``payload`` matches ``schemas[kind]``.

    ``what`` names the event family in the message ("room event", "staff event", …).
    """
    schema = schemas.get(kind)
    if schema is None:
        raise EventSchemaError(f"{what} {kind!r} has no schema")
    errors = payload_errors(schema, payload)
    if errors:
        raise EventSchemaError(f"{what} {kind!r}: " + "; ".join(errors))


def payload_errors(schema: Any, value: object, path: str = "") -> list[str]:
    """Every way ``value`` differs from ``schema`` (empty when it matches)."""
    here = path or "payload"
    if schema is Any:
        return []
    if schema is None or schema is type(None):
        return [] if value is None else [f"{here}: expected null, got {value!r}"]
    if is_typeddict(schema):
        return _typeddict_errors(schema, value, path)
    origin = get_origin(schema)
    if origin in (Union, types.UnionType):
        variants = get_args(schema)
        if any(not payload_errors(v, value, path) for v in variants):
            return []
        names = ", ".join(_name(v) for v in variants)
        if isinstance(value, dict):
            # Name the nearest variant's differences: "unexpected 'x'" reads better than a list.
            nearest = min(
                (payload_errors(v, value, path) for v in variants if is_typeddict(v)),
                key=len,
                default=[],
            )
            detail = f" ({'; '.join(nearest)})" if nearest else ""
            return [f"{here}: {sorted(value)} matches none of {names}{detail}"]
        return [f"{here}: {value!r} matches none of {names}"]
    if origin is Literal:
        allowed = get_args(schema)
        # A str enum member (``RoomStatus.LIVE``) is its value on the wire; True is not 1.
        ok = any(
            value == a
            and isinstance(value, type(a))
            and isinstance(value, bool) == isinstance(a, bool)
            for a in allowed
        )
        return [] if ok else [f"{here}: {value!r} is not one of {allowed}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{here}: expected a list, got {type(value).__name__}"]
        (item,) = get_args(schema)
        errors: list[str] = []
        for index, element in enumerate(value):
            errors += payload_errors(item, element, f"{here}[{index}]")
        return errors
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{here}: expected an object, got {type(value).__name__}"]
        _key, item = get_args(schema)
        errors = [f"{here}: key {k!r} is not a string" for k in value if not isinstance(k, str)]
        for k, v in value.items():
            errors += payload_errors(item, v, f"{here}.{k}")
        return errors
    if schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, schema)
    return [] if ok else [f"{here}: expected {_name(schema)}, got {value!r}"]


def _typeddict_errors(schema: type, value: object, path: str) -> list[str]:
    here = path or "payload"
    if not isinstance(value, dict):
        return [f"{here}: expected a {schema.__name__} object, got {type(value).__name__}"]
    fields = _fields(schema)
    errors = [f"{here}: missing {k!r}" for k in schema.__required_keys__ if k not in value]
    errors += [f"{here}: unexpected {k!r}" for k in value if k not in fields]
    for key, field_type in fields.items():
        if key in value:
            errors += payload_errors(field_type, value[key], f"{path}.{key}" if path else key)
    return errors


@functools.cache
def _fields(schema: type) -> dict[str, Any]:
    return get_type_hints(schema)


def _name(schema: Any) -> str:
    if schema is None or schema is type(None):
        return "null"
    return getattr(schema, "__name__", None) or str(schema)

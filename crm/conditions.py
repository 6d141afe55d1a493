# ruff: noqa: S608, S611 - SQL text is built only from the field catalogue and fixed operator
# tables; every user-supplied value travels as a query parameter.
"""The one condition language (docs/crm.md) shared by scoring rules, segments and journey triggers.

A condition is JSON:

- attribute leaf ``{"field", "op", "value"}`` over a contact's fields (``age`` is derived
  from ``birth_year``; ``consent.<purpose>`` is the current consent state);
- behaviour leaf ``{"event", "agg": "count"|"sum", "prop"?, "window_days"?, "room"?, "op",
  "value"}``: an aggregate over the contact's events of that type (``sum`` adds the event's
  number, e.g. ``watch_seconds`` of ``room.leave`` or ``amount`` of ``order``);
- ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``.

Three evaluators, one semantics (two-valued logic, a missing value fails every comparison
except ``ne`` and ``exists: false``; a contact with no matching events aggregates to 0):

- ``contact_matches(contact, cond)`` in Python (per-event scoring, journeys);
- ``contacts_matching(org, cond)`` → a QuerySet (segments, campaigns), behaviour leaves as
  grouped sub-selects;
- ``compile_sql(..., behaviour=JOIN)`` for the bulk scorer, behaviour leaves as columns of
  one grouped pass over the event table.

The property tests (tests/crm/test_conditions_property.py, test_scoring_property.py) hold
the three to the same answers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import Expression
from django.utils import timezone

from core.errors import DomainError
from crm.models import (
    CONSENT_DEFAULTS,
    Consent,
    ConsentPurpose,
    Contact,
    Event,
    Gender,
    IncomeLevel,
    LeadStatus,
    Lifecycle,
    Source,
)
from crm.services.events import EVENT_TYPES, VALUE_PROPS


class ConditionError(DomainError):
    """A condition that does not parse. ``path`` names the bad part, e.g. ``all[1].op``."""

    code = "invalid_condition"

    def __init__(self, path: str, message: str):
        self.path = path or "$"
        super().__init__(
            f"{self.path}: {message}", fields={"condition": [f"{self.path}: {message}"]}
        )


# --- the field catalogue -------------------------------------------------------------------

STR, CHOICE, NUM, REF, TAGS, BOOL = "str", "choice", "num", "ref", "tags", "bool"

OPS_BY_KIND = {
    STR: {"eq", "ne", "in", "exists"},
    CHOICE: {"eq", "ne", "in", "exists"},
    NUM: {"eq", "ne", "in", "between", "gt", "gte", "lt", "lte", "exists"},
    REF: {"eq", "ne", "in", "exists"},
    TAGS: {"contains", "exists"},
    BOOL: {"eq", "ne"},
}
ALL_OPS = {"eq", "ne", "in", "between", "gt", "gte", "lt", "lte", "contains", "exists"}
BEHAVIOUR_OPS = {"eq", "ne", "in", "between", "gt", "gte", "lt", "lte"}


@dataclass(frozen=True)
class FieldSpec:
    kind: str
    column: str  # the contacts table column (age: birth_year)
    nullable: bool = False
    choices: tuple = ()


FIELDS: dict[str, FieldSpec] = {
    "gender": FieldSpec(CHOICE, "gender", choices=tuple(Gender.values)),
    "income_level": FieldSpec(CHOICE, "income_level", choices=tuple(IncomeLevel.values)),
    "status": FieldSpec(CHOICE, "status", choices=tuple(LeadStatus.values)),
    "source": FieldSpec(CHOICE, "source", choices=tuple(Source.values)),
    "lifecycle": FieldSpec(CHOICE, "lifecycle", choices=tuple(Lifecycle.values)),
    "province": FieldSpec(STR, "province"),
    "city": FieldSpec(STR, "city"),
    "grade": FieldSpec(STR, "grade"),
    "rfm": FieldSpec(STR, "rfm"),
    "age": FieldSpec(NUM, "birth_year", nullable=True),
    "birth_year": FieldSpec(NUM, "birth_year", nullable=True),
    "score": FieldSpec(NUM, "score", nullable=True),
    "order_count": FieldSpec(NUM, "order_count"),
    "order_amount": FieldSpec(NUM, "order_amount"),
    "owner": FieldSpec(REF, "owner_id", nullable=True),
    "tags": FieldSpec(TAGS, "tags"),
}
for _purpose in ConsentPurpose.values:
    FIELDS[f"consent.{_purpose}"] = FieldSpec(BOOL, "")

LEAF_KEYS = {"field", "op", "value"}
BEHAVIOUR_KEYS = {"event", "agg", "prop", "window_days", "room", "op", "value"}


# --- validation ----------------------------------------------------------------------------


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def validate_condition(cond, path: str = "") -> None:
    """Raise ConditionError naming the first bad part; return None for a valid condition."""
    if not isinstance(cond, dict):
        raise ConditionError(path, "condition must be an object")
    if not cond:
        raise ConditionError(path, "empty condition")
    for combinator in ("all", "any"):
        if combinator in cond:
            if len(cond) != 1:
                extra = sorted(set(cond) - {combinator})
                raise ConditionError(
                    _join(path, extra[0]), f"unexpected key next to '{combinator}'"
                )
            items = cond[combinator]
            if not isinstance(items, list):
                raise ConditionError(_join(path, combinator), "must be a list")
            for i, item in enumerate(items):
                validate_condition(item, f"{_join(path, combinator)}[{i}]")
            return
    if "not" in cond:
        if len(cond) != 1:
            extra = sorted(set(cond) - {"not"})
            raise ConditionError(_join(path, extra[0]), "unexpected key next to 'not'")
        validate_condition(cond["not"], _join(path, "not"))
        return
    if "event" in cond:
        _validate_behaviour(cond, path)
        return
    if "field" in cond:
        _validate_attribute(cond, path)
        return
    raise ConditionError(
        _join(path, sorted(cond)[0]),
        f"unknown key '{sorted(cond)[0]}' (expected field, event, all, any or not)",
    )


def _validate_op(cond: dict, path: str, allowed: set, what: str) -> str:
    op = cond.get("op")
    if op is None:
        raise ConditionError(_join(path, "op"), "missing op")
    if not isinstance(op, str) or op not in ALL_OPS:
        raise ConditionError(_join(path, "op"), f"unknown op '{op}'")
    if op not in allowed:
        raise ConditionError(_join(path, "op"), f"op '{op}' does not apply to {what}")
    return op


def _validate_attribute(cond: dict, path: str) -> None:
    unknown = sorted(set(cond) - LEAF_KEYS)
    if unknown:
        raise ConditionError(_join(path, unknown[0]), f"unknown key '{unknown[0]}'")
    name = cond["field"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConditionError(_join(path, "field"), f"unknown field '{name}'")
    op = _validate_op(cond, path, OPS_BY_KIND[spec.kind], f"field '{name}'")
    vpath = _join(path, "value")
    if op == "exists":
        if not isinstance(cond.get("value", True), bool):
            raise ConditionError(vpath, "exists takes true or false")
        return
    if "value" not in cond:
        raise ConditionError(vpath, "missing value")
    value = cond["value"]
    if op == "in":
        if not isinstance(value, list):
            raise ConditionError(vpath, "in takes a list")
        for i, v in enumerate(value):
            _validate_scalar(spec, name, v, f"{vpath}[{i}]")
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value)):
            raise ConditionError(vpath, "between takes [low, high] numbers")
    elif op == "contains":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            raise ConditionError(vpath, "contains takes a tag or a list of tags")
    else:
        _validate_scalar(spec, name, value, vpath)
        if op in {"gt", "gte", "lt", "lte"} and not _is_num(value):
            raise ConditionError(vpath, f"{op} takes a number")


def _validate_scalar(spec: FieldSpec, name: str, v, path: str) -> None:
    if spec.kind == BOOL:
        if not isinstance(v, bool):
            raise ConditionError(path, f"'{name}' takes true or false")
    elif spec.kind == NUM:
        if not _is_num(v):
            raise ConditionError(path, f"'{name}' takes a number")
    elif spec.kind == REF:
        if not (isinstance(v, int) and not isinstance(v, bool)):
            raise ConditionError(path, f"'{name}' takes a user id")
    elif spec.kind == CHOICE:
        if v not in spec.choices:
            raise ConditionError(path, f"'{v}' is not a value of '{name}' {list(spec.choices)}")
    elif not isinstance(v, str):
        raise ConditionError(path, f"'{name}' takes text")


def _validate_behaviour(cond: dict, path: str) -> None:
    unknown = sorted(set(cond) - BEHAVIOUR_KEYS)
    if unknown:
        raise ConditionError(_join(path, unknown[0]), f"unknown key '{unknown[0]}'")
    event = cond["event"]
    if event not in EVENT_TYPES:
        raise ConditionError(_join(path, "event"), f"unknown event '{event}'")
    agg = cond.get("agg")
    if agg not in ("count", "sum"):
        raise ConditionError(_join(path, "agg"), f"unknown agg '{agg}' (count or sum)")
    if agg == "sum" and event not in VALUE_PROPS:
        raise ConditionError(_join(path, "agg"), f"'{event}' carries no number to sum")
    if "prop" in cond and (agg != "sum" or cond["prop"] != VALUE_PROPS.get(event)):
        raise ConditionError(
            _join(path, "prop"),
            f"'{event}' sums '{VALUE_PROPS.get(event)}' only"
            if event in VALUE_PROPS
            else f"'{event}' has no summable prop",
        )
    window = cond.get("window_days")
    if window is not None and not (_is_num(window) and window > 0):
        raise ConditionError(_join(path, "window_days"), "window_days takes a positive number")
    room = cond.get("room")
    if room is not None and not (isinstance(room, int) and not isinstance(room, bool)):
        raise ConditionError(_join(path, "room"), "room takes a room id")
    op = _validate_op(cond, path, BEHAVIOUR_OPS, "an event aggregate")
    vpath = _join(path, "value")
    if "value" not in cond:
        raise ConditionError(vpath, "missing value")
    value = cond["value"]
    if op == "in":
        if not (isinstance(value, list) and all(_is_num(v) for v in value)):
            raise ConditionError(vpath, "in takes a list of numbers")
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value)):
            raise ConditionError(vpath, "between takes [low, high] numbers")
    elif not _is_num(value):
        raise ConditionError(vpath, f"{op} takes a number")


def behaviour_leaves(cond) -> list[dict]:
    """Every behaviour leaf of a (valid) condition, in document order."""
    if "all" in cond or "any" in cond:
        return [leaf for c in cond.get("all", cond.get("any", [])) for leaf in behaviour_leaves(c)]
    if "not" in cond:
        return behaviour_leaves(cond["not"])
    return [cond] if "event" in cond else []


def attribute_fields(cond) -> set[str]:
    if "all" in cond or "any" in cond:
        return {f for c in cond.get("all", cond.get("any", [])) for f in attribute_fields(c)}
    if "not" in cond:
        return attribute_fields(cond["not"])
    return {cond["field"]} if "field" in cond else set()


def leaf_key(leaf: dict) -> tuple:
    """Identity of a behaviour aggregate (leaves that differ only in op/value share it)."""
    return (leaf["event"], leaf["agg"], leaf.get("window_days"), leaf.get("room"))


# --- shared value semantics ----------------------------------------------------------------


def compare(op: str, x, value) -> bool:
    """The one comparison table every evaluator follows (``x`` None = missing)."""
    if op == "ne":
        return not compare("eq", x, value)
    if x is None:
        return False
    if op == "eq":
        return x == value
    if op == "in":
        return x in value
    if op == "between":
        return value[0] <= x <= value[1]
    if op == "gt":
        return x > value
    if op == "gte":
        return x >= value
    if op == "lt":
        return x < value
    if op == "lte":
        return x <= value
    raise ConditionError("op", f"unknown op '{op}'")


def window_start(leaf: dict, now: datetime) -> datetime | None:
    days = leaf.get("window_days")
    return now - timedelta(days=days) if days else None


# --- Python evaluator ----------------------------------------------------------------------


@dataclass
class ContactFacts:
    """What the Python evaluator needs beyond the contact row: its events and consents."""

    events: list[tuple] = field(default_factory=list)  # (type, occurred_at, room_id, value)
    consents: dict[str, bool] = field(default_factory=dict)

    def consent(self, purpose: str) -> bool:
        return self.consents.get(purpose, CONSENT_DEFAULTS.get(purpose, False))

    def aggregate(self, leaf: dict, now: datetime) -> tuple[float, datetime | None]:
        """(aggregate value, latest matching event time)."""
        start = window_start(leaf, now)
        room = leaf.get("room")
        total: float = 0
        latest = None
        for type_, at, room_id, value in self.events:
            if type_ != leaf["event"] or (start is not None and at < start):
                continue
            if room is not None and room_id != room:
                continue
            total += 1 if leaf["agg"] == "count" else (value or 0)
            if latest is None or at > latest:
                latest = at
        return total, latest


def load_facts(contact: Contact, conds: list | None = None) -> ContactFacts:
    """Events (only the types the conditions use) and consents of one contact: two queries."""
    types = None
    if conds is not None:
        types = {leaf["event"] for c in conds for leaf in behaviour_leaves(c)}
    facts = ContactFacts()
    if types is None or types:
        qs = Event.objects.for_org(contact.org_id).filter(contact_id=contact.pk)
        if types is not None:
            qs = qs.filter(type__in=types)
        facts.events = list(qs.values_list("type", "occurred_at", "room_id", "value"))

    facts.consents = dict(
        Consent.objects.for_org(contact.org_id)
        .filter(contact_id=contact.pk)
        .values_list("purpose", "granted")
    )
    return facts


def facts_load_many(
    org_id: int, contact_ids: Sequence[int], conds: list
) -> dict[int, ContactFacts]:
    """``load_facts`` for many contacts of one organisation at once (every id gets its
    facts, empty when it has none): two queries whatever the number of contacts."""
    types = {leaf["event"] for c in conds for leaf in behaviour_leaves(c)}
    facts = {contact_id: ContactFacts() for contact_id in contact_ids}
    if types:
        events = (
            Event.objects.for_org(org_id)
            .filter(contact_id__in=facts, type__in=types)
            .values_list("contact_id", "type", "occurred_at", "room_id", "value")
        )
        for contact_id, *row in events:
            facts[contact_id].events.append(tuple(row))
    consents = (
        Consent.objects.for_org(org_id)
        .filter(contact_id__in=facts)
        .values_list("contact_id", "purpose", "granted")
    )
    for contact_id, purpose, granted in consents:
        facts[contact_id].consents[purpose] = granted
    return facts


def contact_fields_read(conds: list) -> set[str]:
    """The contact's model fields ``contact_matches`` reads for these conditions (besides the
    facts): for a read of only those (``QuerySet.only``)."""
    columns = {
        FIELDS[name].column for c in conds for name in attribute_fields(c) if FIELDS[name].column
    }
    fields = {Contact._meta.get_field(column).name for column in columns}
    return {"id", "org", "merged_into", "erased_at", *fields}


def attribute_value(contact: Contact, name: str, now: datetime, facts: ContactFacts):
    if name.startswith("consent."):
        return facts.consent(name.removeprefix("consent."))
    if name == "age":
        return now.year - contact.birth_year if contact.birth_year is not None else None
    return getattr(contact, FIELDS[name].column)


def evaluate(cond, contact: Contact, now: datetime, facts: ContactFacts) -> bool:
    if "all" in cond:
        return all(evaluate(c, contact, now, facts) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, contact, now, facts) for c in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], contact, now, facts)
    if "event" in cond:
        total, _latest = facts.aggregate(cond, now)
        return compare(cond["op"], total, cond["value"])
    name, op = cond["field"], cond["op"]
    x = attribute_value(contact, name, now, facts)
    spec = FIELDS[name]
    if op == "exists":
        present = x is not None and x != "" and x != []
        return present == cond.get("value", True)
    if op == "contains":
        wanted = cond["value"] if isinstance(cond["value"], list) else [cond["value"]]
        tags = x if isinstance(x, list) else []
        return all(t in tags for t in wanted)
    if spec.kind == BOOL:
        return compare(op, bool(x), cond["value"])
    return compare(op, x, cond["value"])


def contact_matches(
    contact: Contact, cond, now: datetime | None = None, facts: ContactFacts | None = None
) -> bool:
    """Whether one contact satisfies a condition (same semantics as contacts_matching).

    Merged-away and erased contacts match nothing."""
    validate_condition(cond)
    if contact.merged_into_id is not None or contact.erased_at is not None:
        return False
    now = now or timezone.now()
    facts = facts if facts is not None else load_facts(contact, [cond])
    return evaluate(cond, contact, now, facts)


# --- SQL compiler --------------------------------------------------------------------------

SUBQUERY, JOIN = "subquery", "join"
TRUE_SQL, FALSE_SQL = "(1=1)", "(1=0)"


def contacts_filter_sql(
    column: str,
    *,
    contact_range: tuple[int, int] | None = None,
    contact_ids: Sequence[int] | None = None,
) -> tuple[str, list]:
    """``column`` (a contact id) restricted to ``contact_range`` [lo, hi) or to the ids of
    ``contact_ids`` (exactly one of them): ``= ANY(%s)`` with one array parameter on
    PostgreSQL, ``IN (%s, …)`` on SQLite — one parameter per id, so callers keep a list under
    ``crm.services.events.max_query_params()``."""
    if (contact_range is None) == (contact_ids is None):
        raise ValueError("give contact_range or contact_ids")
    if contact_range is not None:
        lo, hi = contact_range
        return f"{column} >= %s AND {column} < %s", [lo, hi]
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [list(contact_ids)]
    if not contact_ids:
        return FALSE_SQL, []
    return f"{column} IN ({', '.join(['%s'] * len(contact_ids))})", list(contact_ids)


class SqlContext:
    """State of one compilation: table alias, dialect, the contacts it may be restricted to
    (``contact_range`` [lo, hi) or ``contact_ids``: every pass over the events is narrowed to
    them), and (JOIN mode) the aggregate columns the outer query must provide as
    ``{agg_alias}.b<n>`` / ``{agg_alias}.l<n>``."""

    def __init__(
        self,
        *,
        alias: str,
        now: datetime,
        org_id: int,
        behaviour: str = SUBQUERY,
        agg_alias: str = "a",
        contact_range: tuple[int, int] | None = None,
        contact_ids: Sequence[int] | None = None,
    ):
        if contact_range is not None and contact_ids is not None:
            raise ValueError("contact_range or contact_ids, not both")
        self.alias = alias
        self.now = now
        self.org_id = org_id
        self.behaviour = behaviour
        self.agg_alias = agg_alias
        self.contact_range = contact_range
        self.contact_ids = contact_ids
        self.vendor = connection.vendor
        self.aggregates: dict[tuple, int] = {}
        self.latest: set[int] = set()  # aggregates whose latest event time is needed (decay)

    def col(self, column: str) -> str:
        return f"{self.alias}.{connection.ops.quote_name(column)}"

    def dt(self, value: datetime):
        return connection.ops.adapt_datetimefield_value(value)

    def aggregate_index(self, leaf: dict) -> int:
        return self.aggregates.setdefault(leaf_key(leaf), len(self.aggregates))

    def contacts_filter(self, column: str) -> tuple[str, list]:
        """`` AND <column within this context's contacts>``, or nothing when unrestricted."""
        if self.contact_range is None and self.contact_ids is None:
            return "", []
        sql, params = contacts_filter_sql(
            column, contact_range=self.contact_range, contact_ids=self.contact_ids
        )
        return f" AND {sql}", params


def _cmp_sql(op: str, expr: str, value, nullable: bool) -> tuple[str, list]:
    """SQL for compare(op, expr, value) that is never NULL."""
    if op == "ne":
        sql, params = _cmp_sql("eq", expr, value, nullable)
        return f"(NOT {sql})", params
    guard = f"{expr} IS NOT NULL AND " if nullable else ""
    if op == "eq":
        return f"({guard}{expr} = %s)", [value]
    if op == "in":
        if not value:
            return FALSE_SQL, []
        return f"({guard}{expr} IN ({', '.join(['%s'] * len(value))}))", list(value)
    if op == "between":
        return f"({guard}{expr} BETWEEN %s AND %s)", [value[0], value[1]]
    sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return f"({guard}{expr} {sym} %s)", [value]


def compile_sql(cond, ctx: SqlContext) -> tuple[str, list]:
    """A boolean SQL expression (never NULL) over ``ctx.alias`` (the contacts table)."""
    if "all" in cond or "any" in cond:
        items = cond.get("all", cond.get("any"))
        if not items:
            return (TRUE_SQL if "all" in cond else FALSE_SQL), []
        parts, params = [], []
        for c in items:
            sql, p = compile_sql(c, ctx)
            parts.append(sql)
            params += p
        joiner = " AND " if "all" in cond else " OR "
        return "(" + joiner.join(parts) + ")", params
    if "not" in cond:
        sql, params = compile_sql(cond["not"], ctx)
        return f"(NOT {sql})", params
    if "event" in cond:
        return _behaviour_sql(cond, ctx)
    return _attribute_sql(cond, ctx)


def _attribute_sql(cond: dict, ctx: SqlContext) -> tuple[str, list]:
    name, op = cond["field"], cond["op"]
    spec = FIELDS[name]
    if spec.kind == BOOL:
        return _consent_sql(name.removeprefix("consent."), op, cond["value"], ctx)
    if spec.kind == TAGS:
        return _tags_sql(op, cond.get("value", True), ctx)
    expr = ctx.col(spec.column)
    if name == "age":
        # The year is an int we computed, never user input: inlined, not a parameter.
        expr = f"({int(ctx.now.year)} - {expr})"
    if op == "exists":
        present = f"({expr} IS NOT NULL)" if spec.nullable else f"({expr} <> '')"
        if spec.kind == NUM and not spec.nullable:
            present = TRUE_SQL
        return (present if cond.get("value", True) else f"(NOT {present})"), []
    return _cmp_sql(op, expr, cond["value"], spec.nullable)


def _tags_sql(op: str, value, ctx: SqlContext) -> tuple[str, list]:
    tags = ctx.col("tags")
    if op == "exists":
        fn = "jsonb_array_length" if ctx.vendor == "postgresql" else "json_array_length"
        present = f"(COALESCE({fn}({tags}), 0) > 0)"
        return (present if value else f"(NOT {present})"), []
    wanted = value if isinstance(value, list) else [value]
    if ctx.vendor == "postgresql":
        return f"({tags} @> %s::jsonb)", [json.dumps(wanted)]
    parts = [f"EXISTS (SELECT 1 FROM json_each({tags}) AS jt WHERE jt.value = %s)" for _ in wanted]
    return "(" + " AND ".join(parts) + ")", list(wanted)


def _consent_sql(purpose: str, op: str, value: bool, ctx: SqlContext) -> tuple[str, list]:
    table = Consent._meta.db_table
    # A purpose defaulting to granted holds unless refused; the others need a grant.
    if CONSENT_DEFAULTS.get(purpose, False):
        granted = (
            f"(NOT EXISTS (SELECT 1 FROM {table} k WHERE k.contact_id = {ctx.alias}.id "
            f"AND k.purpose = %s AND NOT k.granted))"
        )
    else:
        granted = (
            f"(EXISTS (SELECT 1 FROM {table} k WHERE k.contact_id = {ctx.alias}.id "
            f"AND k.purpose = %s AND k.granted))"
        )
    want = value if op == "eq" else not value
    return (granted if want else f"(NOT {granted})"), [purpose]


def _event_filter_sql(leaf: dict, ctx: SqlContext, alias: str) -> tuple[str, list]:
    parts, params = [f"{alias}.type = %s"], [leaf["event"]]
    start = window_start(leaf, ctx.now)
    if start is not None:
        parts.append(f"{alias}.occurred_at >= %s")
        params.append(ctx.dt(start))
    if leaf.get("room") is not None:
        parts.append(f"{alias}.room_id = %s")
        params.append(leaf["room"])
    return " AND ".join(parts), params


def _agg_expr(leaf: dict, alias: str) -> str:
    return "COUNT(*)" if leaf["agg"] == "count" else f"COALESCE(SUM({alias}.value), 0)"


def _existence(leaf: dict) -> bool | None:
    """True when a count leaf means "at least one such event", False for "none", None for a
    real threshold."""
    if leaf["agg"] != "count":
        return None
    op, v = leaf["op"], leaf["value"]
    if (op == "gte" and 0 < v <= 1) or (op == "gt" and 0 <= v < 1):
        return True
    if (op == "lt" and 0 < v <= 1) or (op == "lte" and 0 <= v < 1) or (op == "eq" and v == 0):
        return False
    return None


def _behaviour_sql(leaf: dict, ctx: SqlContext) -> tuple[str, list]:
    op, value = leaf["op"], leaf["value"]
    if ctx.behaviour == JOIN:
        n = ctx.aggregate_index(leaf)
        return _cmp_sql(op, f"COALESCE({ctx.agg_alias}.b{n}, 0)", value, nullable=False)
    # SUBQUERY: contacts whose aggregate passes, among those with matching events. A contact
    # without events aggregates to 0: when 0 passes, select by exclusion instead.
    table = Event._meta.db_table
    where, params = _event_filter_sql(leaf, ctx, "e")
    where = f"e.org_id = %s AND {where}"
    restrict, rparams = ctx.contacts_filter("e.contact_id")
    where += restrict
    params = [ctx.org_id, *params, *rparams]
    existence = _existence(leaf)
    if existence is not None:
        # "did it at least once" / "never did it": a semi-/anti-join, no aggregation.
        sub = f"SELECT 1 FROM {table} e WHERE e.contact_id = {ctx.alias}.id AND {where}"
        return (f"(EXISTS ({sub}))" if existence else f"(NOT EXISTS ({sub}))"), params
    zero_passes = compare(op, 0, value)
    having, hparams = _cmp_sql(op, _agg_expr(leaf, "e"), value, nullable=False)
    if zero_passes:
        having = f"NOT {having}"
    sub = f"SELECT e.contact_id FROM {table} e WHERE {where} GROUP BY e.contact_id HAVING {having}"
    membership = f"({ctx.alias}.id IN ({sub}))"
    return (f"(NOT {membership})" if zero_passes else membership), params + hparams


def aggregates_sql(ctx: SqlContext, leaves_by_index: dict[int, dict]) -> tuple[str, list]:
    """JOIN mode: one grouped pass over the events providing b<n> (value) and l<n> (latest)
    per aggregate the compiled conditions used. Restricted to the context's contacts if set."""
    table = Event._meta.db_table
    cols, params, types = [], [], set()
    for n, leaf in sorted(leaves_by_index.items()):
        where, p = _event_filter_sql(leaf, ctx, "e")
        measure = "COUNT(*)" if leaf["agg"] == "count" else "SUM(COALESCE(e.value, 0))"
        cols.append(f"{measure} FILTER (WHERE {where}) AS b{n}")
        params += p
        if n in ctx.latest:
            cols.append(f"MAX(e.occurred_at) FILTER (WHERE {where}) AS l{n}")
            params += p
        types.add(leaf["event"])
    where = f"e.org_id = %s AND e.type IN ({', '.join(['%s'] * len(types))})"
    restrict, rparams = ctx.contacts_filter("e.contact_id")
    where += restrict
    params += [ctx.org_id, *sorted(types), *rparams]
    sql = (
        f"SELECT e.contact_id, {', '.join(cols)} FROM {table} e WHERE {where} GROUP BY e.contact_id"
    )
    return sql, params


class ConditionExpression(Expression):
    """A compiled condition as a boolean expression over the queryset's own contacts table.

    The table alias is resolved when the query is compiled, so the filter stays correct when
    the QuerySet is used as a sub-query of another app's query (Django relabels it U0…)."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, cond: dict, *, now: datetime, org_id: int):
        super().__init__(output_field=BooleanField())
        self.cond, self.now, self.org_id = cond, now, org_id

    def as_sql(self, compiler, connection):
        alias = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        ctx = SqlContext(alias=alias, now=self.now, org_id=self.org_id)
        return compile_sql(self.cond, ctx)

    def get_group_by_cols(self):
        return []


def contacts_matching(org, cond, now: datetime | None = None) -> QuerySet:
    """The organisation's live contacts (not merged away, not erased) satisfying ``cond``,
    as a QuerySet compiled to SQL (SQLite and PostgreSQL)."""
    validate_condition(cond)
    org_id = org if isinstance(org, int) else org.pk
    condition = ConditionExpression(cond, now=now or timezone.now(), org_id=org_id)
    return (
        Contact.objects.for_org(org_id)
        .filter(merged_into__isnull=True, erased_at__isnull=True)
        .filter(condition)
    )

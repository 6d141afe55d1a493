"""Hypothesis strategies: random conditions, contacts and event histories."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

EVENTS = ["room.leave", "coupon.claim", "chat", "order"]
SUMMABLE = {"room.leave": "watch_seconds", "order": "amount"}
TAGS = ["护肤", "彩妆", "宝妈"]
CITIES = ["上海", "杭州", ""]


def _num_op(lo=0, hi=3):
    # Small domains on purpose: equal values (boundaries) come up often.
    return st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), st.integers(lo, hi)),
        st.tuples(
            st.just("between"),
            st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(sorted).map(list),
        ),
        st.tuples(st.just("in"), st.lists(st.integers(lo, hi), max_size=3)),
    )


NUM_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "exists"]


@st.composite
def _num_leaf(draw, field, lo, hi, ops=NUM_OPS):
    op = draw(st.sampled_from(ops))
    if op == "exists":
        return {"field": field, "op": op, "value": draw(st.booleans())}
    if op == "between":
        return {
            "field": field,
            "op": op,
            "value": sorted([draw(st.integers(lo, hi)) for _ in "ab"]),
        }
    if op == "in":
        return {"field": field, "op": op, "value": draw(st.lists(st.integers(lo, hi), max_size=3))}
    return {"field": field, "op": op, "value": draw(st.integers(lo, hi))}


@st.composite
def attribute_leaf(draw):
    # Field and op are drawn uniformly so every (field, op) pair is exercised, and values
    # come from small domains so equal values (the boundaries) come up often.
    field = draw(
        st.sampled_from(
            ["gender", "city", "age", "score", "tags", "consent.sms_marketing", "consent.profiling"]
        )
    )
    if field == "gender":
        op = draw(st.sampled_from(["eq", "ne", "in", "exists"]))
        values = st.sampled_from(["female", "male", "unknown"])
    elif field == "city":
        op = draw(st.sampled_from(["eq", "ne", "in", "exists"]))
        values = st.sampled_from(CITIES)
    elif field == "age":
        return draw(_num_leaf("age", 25, 28))
    elif field == "score":
        return draw(_num_leaf("score", 0, 3))
    elif field == "tags":
        op = draw(st.sampled_from(["contains", "exists"]))
        if op == "contains":
            value = draw(
                st.one_of(
                    st.sampled_from(TAGS), st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)
                )
            )
            return {"field": field, "op": op, "value": value}
        return {"field": field, "op": op, "value": draw(st.booleans())}
    else:
        return {
            "field": field,
            "op": draw(st.sampled_from(["eq", "ne"])),
            "value": draw(st.booleans()),
        }
    if op == "exists":
        return {"field": field, "op": op, "value": draw(st.booleans())}
    if op == "in":
        return {"field": field, "op": op, "value": draw(st.lists(values, max_size=2))}
    return {"field": field, "op": op, "value": draw(values)}


def behaviour_leaf():
    @st.composite
    def leaf(draw):
        event = draw(st.sampled_from(EVENTS))
        agg = draw(st.sampled_from(["count", "sum"] if event in SUMMABLE else ["count"]))
        out = {"event": event, "agg": agg}
        if draw(st.booleans()):
            out["window_days"] = draw(st.integers(1, 30))
        if draw(st.integers(0, 3)) == 0:
            out["room"] = draw(st.sampled_from([1, 2]))
        leaf_ = draw(_num_leaf("x", 0, 3, ops=NUM_OPS[:-1]))
        value = leaf_["value"]
        if agg == "sum":
            value = [v * 100 for v in value] if isinstance(value, list) else value * 100
        out.update(op=leaf_["op"], value=value)
        return out

    return leaf()


def condition(max_leaves=6):
    leaves = st.one_of(attribute_leaf(), behaviour_leaf())  # noqa: F841 - see below
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda x: {"all": x}),
            st.lists(children, max_size=3).map(lambda x: {"any": x}),
            children.map(lambda x: {"not": x}),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def contact_spec(draw, now):
    return {
        "gender": draw(st.sampled_from(["female", "male", "unknown"])),
        "city": draw(st.sampled_from(CITIES)),
        "birth_year": draw(st.one_of(st.none(), st.integers(now.year - 28, now.year - 25))),
        "score": draw(st.one_of(st.none(), st.integers(0, 3))),
        "tags": draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)),
        "consents": draw(
            st.dictionaries(
                st.sampled_from(["sms_marketing", "profiling"]), st.booleans(), max_size=2
            )
        ),
        "events": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(EVENTS),
                    # minutes ago: hits window and day boundaries exactly
                    st.integers(0, 40 * 24 * 60).map(lambda m: now - timedelta(minutes=m)),
                    st.sampled_from([None, 1, 2]),
                    st.integers(0, 2).map(lambda v: v * 100),
                ),
                max_size=5,
            )
        ),
    }

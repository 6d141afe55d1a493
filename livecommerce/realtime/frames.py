"""WebSocket wire helpers: server frames are built once per tick and shared by every socket.

Events travel between processes as ``"<type>|<audience>|<contact>|<json>"`` strings (the
"envelope"): the hub routes and shapes on the header without parsing JSON, and joins the
JSON parts into one batch frame without re-encoding them.
"""

from __future__ import annotations

import json

from core.websocket import text_frame as ws_text_frame  # noqa: F401 - the hub's frame builder


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def envelope(*, type: str, audience: str, contact_id: int | None, body: dict) -> tuple[str, str]:
    """(header, json without seq) for the transport; the transport inserts the seq."""
    header = f"{type}|{audience}|{contact_id or ''}|"
    return header, dumps({"type": type, **body})


def split_envelope(message: str) -> tuple[str, str, int | None, str]:
    """(type, audience, contact_id, event json) from an envelope string."""
    type_, audience, contact, raw = message.split("|", 3)
    return type_, audience, int(contact) if contact else None, raw


def seq_of(raw: str) -> int:
    """The seq of an event JSON produced by the transport: it always starts with it."""
    # '{"seq":123,...'
    end = raw.index(",", 7)
    return int(raw[7:end])


def with_seq(seq: int, raw_without_seq: str) -> str:
    return '{"seq":' + str(seq) + "," + raw_without_seq[1:]


def batch(raws: list[str]) -> str:
    if len(raws) == 1:
        return raws[0]
    return '{"type":"batch","events":[' + ",".join(raws) + "]}"

"""WebSocket wire helpers: server frames are built once per tick and shared by every socket.

Events travel between processes as ``"<type>|<audience>|<contact>|<json>"`` strings (the
"envelope"): the hub routes and shapes on the header without parsing JSON, and joins the
JSON parts into one batch frame without re-encoding them.
"""

from __future__ import annotations

import json
import struct

_OP_TEXT = 0x81  # FIN + text opcode; server frames are never masked (RFC 6455 §5.1)


def ws_text_frame(payload: bytes) -> bytes:
    """One complete unmasked text frame (header + payload)."""
    n = len(payload)
    if n < 126:
        return bytes((_OP_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _OP_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _OP_TEXT, 127, n) + payload


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

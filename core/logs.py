"""Structured logs: a request id on every record logged while a request is served, and a
JSON formatter (production settings: ``LOG_FORMAT=json``).

The id comes from nginx (``X-Request-ID: $request_id``) when a trusted proxy is in front
(``TRUSTED_PROXY_COUNT`` > 0), else it is made here; the response carries it back, so an
error a user reports can be found in every process's log.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

_request_id: ContextVar[str] = ContextVar("qm_request_id", default="")
_VALID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def current_request_id() -> str:
    return _request_id.get()


def request_id_from(header: str, *, trusted: bool) -> str:
    """The proxy's id when it is trusted and well formed, else a new one."""
    if trusted and header and _VALID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def bind_request_id(value: str):
    return _request_id.set(value)


def unbind_request_id(token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, and the
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get() or None,
            "process": record.process,
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)

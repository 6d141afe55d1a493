"""The CRM writer process (``REALTIME_CRM_WRITER=process``), started by ``realtime.crm``.

Reads one line per batch on stdin (``<seq> <json>``), records it through
``events_record_batch`` and acknowledges it with ``<seq>`` on stdout once committed (a batch
that fails is acknowledged too: replaying it would fail the same way); exits when stdin
closes (the ASGI process that started it is gone). It runs in its own interpreter so
its ORM work never holds the ASGI process's GIL (see the docstring of ``realtime.crm``).

Staff events raised here (a lead turning hot in the re-score the batch causes, the
notification it writes) must reach the staff sockets of the ASGI process. With the Redis
transport (production) the child publishes them itself; with the in-memory transport (the
embedded default, ``make run``) it has no path to those sockets, so it hands each one to its
parent as a ``S <message>`` line on the same stdout, and the parent publishes it
(``CrmBuffer._read_acks``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("livecommerce.realtime.crm_writer")

# Acks (main thread) and staff events (the re-score runs in the task runner's threads) share
# stdout: one whole line at a time.
_out_lock = threading.Lock()


def _emit(line: str) -> None:
    data = f"{line}\n".encode()
    with _out_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def publish_staff_to_parent(message: str) -> None:
    """``core.staff_events.staff_publisher`` in a child whose transport is in-memory: one
    line to the parent (a staff message is one JSON object; JSON escapes newlines)."""
    _emit(f"S {message}")


def main() -> None:
    # Background work: never take CPU from the sockets' event loops on the same machine.
    os.nice(10)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    import django

    django.setup()
    from django.db import close_old_connections

    # local import: python -m child process; this needs the django.setup() in main()
    from core.staff_events import staff_publisher
    from livecommerce.realtime.crm import events_from_line, write_events
    from livecommerce.realtime.transport import get_transport

    if get_transport().kind == "memory":
        staff_publisher.register(publish_staff_to_parent)

    for line in sys.stdin:
        if not line.strip():
            continue
        seq, _, body = line.partition(" ")
        try:
            write_events(events_from_line(body))
        except Exception:  # noqa: BLE001 - one bad batch must not stop the writer
            log.exception("CRM event batch failed")
        finally:
            close_old_connections()
        _emit(seq)


if __name__ == "__main__":
    main()

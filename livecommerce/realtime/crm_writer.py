"""The CRM writer process (``REALTIME_CRM_WRITER=process``), started by ``realtime.crm``.

Reads one line per batch on stdin (``<seq> <json>``), records it through
``events_record_batch`` and acknowledges it with ``<seq>`` on stdout once committed (a batch
that fails is acknowledged too: replaying it would fail the same way); exits when stdin
closes (the ASGI process that started it is gone). It runs in its own interpreter so
its ORM work never holds the ASGI process's GIL (see the docstring of ``realtime.crm``).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("livecommerce.realtime.crm_writer")


def main() -> None:
    # Background work: never take CPU from the sockets' event loops on the same machine.
    os.nice(10)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    import django

    django.setup()
    from django.db import close_old_connections

    from livecommerce.realtime.crm import events_from_line, write_events

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
        sys.stdout.write(f"{seq}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

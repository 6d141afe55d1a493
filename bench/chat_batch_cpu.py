"""CPU per chat message through the chat worker's entry, one at a time vs in batches (#19).

``DATABASE_URL=… REDIS_URL=… python -m bench.chat_batch_cpu [N] [modes]`` posts N messages
(distinct viewers, so none is rate-limited; 2 % from banned viewers, 2 % with a blocked
word, 2 % masked) into a fresh room per mode and prints one JSON object: the process CPU
time per message (``time.process_time``: this process's every thread, including the CRM
writer thread, whose batch is flushed inside the timed span), wall time and the load
average. Modes: ``single`` (``chat_post_reply`` per message: the path before batching, and
the one the in-process hub still uses) and ``batch`` (``chat_post_replies`` on chunks of
``BATCH_MAX``, the child's path). The publishes go to Redis as in production. ``single``
also runs on a checkout from before batching (the "before" figure).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
os.environ.setdefault("REALTIME_CRM_WRITER", "thread")

import django  # noqa: E402

django.setup()

from crm.models import Contact  # noqa: E402
from livecommerce.models import ChatRestriction, RestrictionKind, SensitiveWord  # noqa: E402
from livecommerce.realtime import chat_worker  # noqa: E402
from livecommerce.realtime.crm import buffer  # noqa: E402
from livecommerce.services import chat as chat_service  # noqa: E402
from tests.factories import (  # noqa: E402
    ContactFactory,
    OrganizationFactory,
    RoomFactory,
    StreamerProfileFactory,
)


def _setup(n: int):
    org = OrganizationFactory()
    profile = StreamerProfileFactory(org=org)
    contacts = Contact.unscoped.bulk_create(
        [ContactFactory.build(org=org, nickname=f"v{i}") for i in range(n)]
    )
    ChatRestriction.unscoped.bulk_create(
        [ChatRestriction(org=org, kind=RestrictionKind.BAN, contact=c) for c in contacts[::50]]
    )
    SensitiveWord.unscoped.get_or_create(org=org, pattern="微信号")
    SensitiveWord.unscoped.get_or_create(org=org, pattern="垃圾", defaults={"action": "mask"})
    chat_service.sensitive_words_forget(org.pk)
    return org, profile, contacts


def _texts(n: int) -> list[str]:
    return [
        "加我微信号" if i % 50 == 7 else "这个垃圾" if i % 50 == 13 else f"第{i}条：好看"
        for i in range(n)
    ]


def run(mode: str, org, profile, contacts) -> dict:
    n = len(contacts)
    room = RoomFactory(streamer=profile, org=org, status="live")
    authors = [
        chat_service.ChatAuthor(
            org_id=org.pk, contact_id=c.pk, nickname=c.nickname, device=f"d{c.pk}"
        )
        for c in contacts
    ]
    texts = _texts(n)
    buffer.flush()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    replies = []
    if mode == "single":
        for author, text in zip(authors, texts, strict=True):
            replies.append(chat_worker.chat_post_reply(room_id=room.pk, author=author, text=text))
    else:
        requests = [
            chat_service.ChatRequest(room_id=room.pk, author=a, text=t)
            for a, t in zip(authors, texts, strict=True)
        ]
        size = chat_worker.BATCH_MAX
        for start in range(0, n, size):
            replies += chat_worker.chat_post_replies(requests[start : start + size])
    crm_events = buffer.flush()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    codes: dict[str, int] = {}
    for reply in replies:
        code = reply.get("code", "ok")
        codes[code] = codes.get(code, 0) + 1
    return {
        "mode": mode,
        "messages": n,
        "answers": codes,
        "crm_events_in_final_flush": crm_events,
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_message": round(cpu * 1000 / n, 3),
        "wall_seconds": round(wall, 3),
        "loadavg_after": os.getloadavg(),
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["single", "batch"]
    org, profile, contacts = _setup(n)
    # Warm-up: caches (words, platform accounts) and connections, as in a running worker.
    run("single", org, profile, contacts[:20])
    results = {
        "bench": "chat_batch_cpu",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgresql",
        "loadavg_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "runs": [run(mode, org, profile, contacts) for mode in modes],
    }
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

"""Bench fixture: one organisation, a live room and N viewer contacts with signed tokens.

Run in the bench's own VAR_DIR (a throw-away SQLite database). Prints
``{"room": id, "tokens_file": path}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(count: int, out: Path) -> dict:
    import django

    django.setup()
    from django.utils import timezone

    from core.models import Organization
    from core.tokens import issue_viewer_token
    from crm.models import Contact
    from livecommerce.models import Room, RoomStatus, StreamerProfile

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "压测品牌"})
    streamer = StreamerProfile.objects.for_org(org).create(org=org, name="压测主播")
    room = Room.objects.for_org(org).create(
        org=org,
        streamer=streamer,
        title="万人直播间",
        scheduled_start=timezone.now(),
        status=RoomStatus.LIVE,
        started_at=timezone.now(),
    )
    Contact.objects.for_org(org).bulk_create(
        [Contact(org=org, nickname=f"观众{i}") for i in range(count)], batch_size=2000
    )
    ids = list(Contact.objects.for_org(org).order_by("id").values_list("id", flat=True))
    tokens = [
        issue_viewer_token(org_id=org.pk, contact_id=cid, device=f"bench{cid}", nickname="观众")
        for cid in ids
    ]
    out.write_text(json.dumps(tokens))
    return {"room": room.pk, "tokens_file": str(out)}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qianmian.settings")
    sys.stdout.write(json.dumps(main(int(sys.argv[1]), Path(sys.argv[2]))))

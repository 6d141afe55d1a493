"""Under the embedded default (``make run``: SQLite, the in-memory real-time layer, the CRM
writer in its own child process) a lead turning hot reaches its owner's staff socket at once.

The grade change happens in the writer child, which has no socket of its own: it hands the
staff event to the ASGI process over its pipe and the parent publishes it (before, the
workspace's bell only caught up by polling, up to 60 s later). Acted as the user would: the
app is served by uvicorn from a fresh embedded database, a salesperson's workspace socket is
open, a viewer joins the live room and leaves, and the notice arrives within seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.livecommerce.hub_server import Client, run
from tests.support.servers import ROOT, served_app

pytestmark = pytest.mark.slow

# A demo lead owned by the demo salesperson at 75 points (B: 女性 20, 25–35岁 30, 高收入 15,
# 领券 10) who has watched 598 s: two more seconds in the room make 观看≥10分钟 (+15) → A.
SETUP = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from core.models import Membership
from core.tokens import issue_staff_token, issue_viewer_token
from crm.models import Contact
from crm.services.events import event_record
from crm.services.scoring import contact_rescore
from livecommerce.models import Room

sales = Membership.objects.get(user__username="sales")
org_id = sales.org_id
room = Room.objects.for_org(org_id).order_by("id").first()
Room.objects.for_org(org_id).filter(pk=room.pk).update(status="live", started_at=timezone.now())
contact = Contact.objects.for_org(org_id).create(
    org_id=org_id, nickname="热线索候选", gender="female",
    birth_year=timezone.localdate().year - 30, income_level="high", owner=sales.user,
)
event_record(contact=contact, type="coupon.claim", props={})
event_record(contact=contact, type="room.leave", props={"watch_seconds": 598})
contact_rescore(contact=contact)
contact.refresh_from_db()
print(json.dumps({
    "score": contact.score, "grade": contact.grade, "contact": contact.pk, "room": room.pk,
    "staff": issue_staff_token(membership=sales),
    "viewer": issue_viewer_token(
        org_id=org_id, contact_id=contact.pk, device="dev-hot", room_id=room.pk,
        nickname="热线索候选"),
}))
"""


def test_a_lead_turning_hot_in_the_writer_child_reaches_the_staff_socket(tmp_path):
    env = {"REALTIME_CRM_FLUSH_SECONDS": "0.5"}
    with served_app(tmp_path, env=env) as base:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "qianmian.settings",
            "DJANGO_ENV": "development",
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
            "REDIS_URL": "",
            "TASK_RUNNER": "inprocess",
        }
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SETUP],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        setup = json.loads(out.strip().splitlines()[-1])
        assert (setup["score"], setup["grade"]) == (75, "B")
        ws = base.replace("http://", "ws://")

        async def scenario():
            staff = await Client.open(f"{ws}/ws/staff/?token={setup['staff']}")
            viewer = await Client.open(f"{ws}/ws/rooms/{setup['room']}/?token={setup['viewer']}")
            await viewer.collect(2.5)  # in the room long enough to pass 600 s watched
            await viewer.close()
            left = time.monotonic()
            notice = await staff.next(
                lambda e: e["type"] == "lead.grade_changed" and e["contact"] == setup["contact"],
                timeout=15,
            )
            return notice, time.monotonic() - left

        notice, seconds = run(scenario())
        assert (notice["old_grade"], notice["grade"]) == ("B", "A")
        assert seconds < 10, seconds

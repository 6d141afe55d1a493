"""Contract test of the mini-program client (miniprogram/utils/client.js) against the real
backend: the seeded demo served by uvicorn on a free port (SQLite in a temporary VAR_DIR,
the embedded WeChat stub answering code2session), driven by the client's own module in Node
(miniprogram/test/contract/run.js). Runs in `make test-miniprogram`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import requests

from tests.support.servers import ROOT, served_app

pytestmark = [pytest.mark.miniprogram, pytest.mark.slow]

NODE = shutil.which("node") or "node"


def _node_command() -> list[str]:
    major = int(
        subprocess.run([NODE, "-p", "process.versions.node.split('.')[0]"], capture_output=True)
        .stdout.decode()
        .strip()
    )
    # Node 22 has a WebSocket client built in; 20 has the same one behind a flag.
    flags = ["--experimental-websocket"] if major < 22 else []
    return [NODE, *flags, str(ROOT / "miniprogram" / "test" / "contract" / "run.js")]


def _staff(base: str) -> requests.Session:
    session = requests.Session()
    token = session.post(
        f"{base}/api/v1/auth/token", json={"username": "host", "password": "demo12345"}, timeout=10
    ).json()["token"]
    session.headers["Authorization"] = f"Token {token}"
    return session


def _rows(body):
    return body["results"] if isinstance(body, dict) else body


def test_the_mini_program_client_logs_in_fetches_claims_and_chats_against_the_served_demo(
    tmp_path,
):
    with served_app(tmp_path) as base:
        host = _staff(base)
        rooms = _rows(host.get(f"{base}/api/v1/rooms", timeout=10).json())
        room = next(r for r in rooms if r["status"] == "scheduled")
        assert host.post(f"{base}/api/v1/rooms/{room['id']}/start", timeout=10).status_code == 200
        coupon = _rows(host.get(f"{base}/api/v1/rooms/{room['id']}/coupons", timeout=10).json())[0]
        released = host.post(f"{base}/api/v1/coupons/{coupon['id']}/release", timeout=10)
        assert released.status_code == 200, released.text

        run = subprocess.run(
            _node_command(),
            env={
                **os.environ,
                "QM_URL": base,
                "QM_ROOM": str(room["id"]),
                "QM_COUPON": str(coupon["id"]),
            },
            capture_output=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr.decode()
        found = json.loads(run.stdout.decode().strip().splitlines()[-1])

        # login: a mini-program code became a viewer of the demo organisation
        assert found["session"]["token"] is True
        contact_id = found["session"]["contact_id"]
        # room fetch
        assert found["room"]["status"] == "live"
        assert found["room"]["title"] == room["title"]
        assert coupon["id"] in found["room"]["coupons"]
        assert found["room"]["me"]["contact_id"] == contact_id
        # claim: a receipt, then the per-viewer limit with its code and message
        assert found["claim"]["contact"] == contact_id and found["claim"]["code"]
        if coupon["per_viewer_limit"] == 1:
            assert found["second_claim"]["status"] == 409
            assert found["second_claim"]["code"] == "limit_reached"
        # chat over the socket comes back to its author, visible
        assert found["chat"] == {**found["chat"], "contact_id": contact_id, "status": "visible"}
        # after a drop the client reconnected and got the missed message exactly once
        assert found["resume"]["sockets"] >= 2
        assert found["resume"]["missed_seq_after_drop"] is True
        assert found["resume"]["copies"] == 1
        # WeChat's content check refused the risky text; the getPhoneNumber code bound a phone
        assert found["content_check"] == {"code": "content_risky"}
        assert found["phone"] == {"bound": True, "phone_bound": True, "same_contact": True}
        # the viewer's mini-program code carries this room and an invite code in its scene
        assert found["mp_code"]["png"] is True
        assert found["mp_code"]["scene"]["room"] == room["id"]
        assert len(found["mp_code"]["scene"]["invite"]) >= 4
        # errors keep their meaning
        assert found["errors"]["unknown_room"]["status"] == 404
        assert found["errors"]["unreachable"]["code"] == "network"

        chat = _rows(host.get(f"{base}/api/v1/rooms/{room['id']}/chat", timeout=10).json())
        texts = [m["text"] for m in chat]
        assert "小程序来的第一条" in texts and "掉线时的消息" in texts
        assert "代开发票找我" not in texts

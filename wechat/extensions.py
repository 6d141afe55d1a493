"""What the wechat app asks of the app above it (campaigns, docs/architecture.md), which
implements these hooks in campaigns.services.wechat_bridge (CampaignsConfig.ready)."""

from __future__ import annotations

from collections.abc import Callable

from core.hooks import Hook

# fn(*, account, openid, scene) -> bool: a staff member scanned their binding code (scene
# ``staffbind:…``, wechat.qrcodes.STAFF_BIND_PREFIX); True when it bound them.
staff_bind_scan: Hook[Callable[..., bool]] = Hook("wechat.staff_bind_scan", single=True)
# fn(*, account, openid, scene) -> the text answered to that scan.
staff_bind_reply_text: Hook[Callable[..., str]] = Hook("wechat.staff_bind_reply_text", single=True)
# fn(*, before) -> int: delete what expired before ``before``; run by the hourly
# wechat.inbound_sweep, the count added to its own.
inbound_sweepers: Hook[Callable[..., int]] = Hook("wechat.inbound_sweepers")
# fn(*, org, phone, template_key, params, key) -> None: queue a service-class SMS that
# is sent once the transaction commits; raises LookupError when the organisation has no
# such template.
service_sms_send: Hook[Callable[..., None]] = Hook("wechat.service_sms_send", single=True)

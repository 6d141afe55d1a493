"""Platform content checks of text people type (chat, nicknames), one registry for every app.

Apps that can ask a platform register a check: ``fn(*, org_id, contact_id, text, scene) ->
"pass" | "review" | "risky"`` (the wechat app: msgSecCheck v2 for mini-program viewers,
whose text WeChat requires to be checked before it is shown). ``scene`` is ``"chat"`` or
``"profile"`` (a nickname). A check that cannot reach its service answers ``"pass"``: a
content-security outage must not stop chat; the organisation's own sensitive words apply
regardless. The registry lives in core so that neither livecommerce nor crm imports the
platform apps.
"""

from __future__ import annotations

from collections.abc import Callable

PASS, REVIEW, RISKY = "pass", "review", "risky"
SCENES = ("chat", "profile")

_checks: list[Callable[..., str]] = []


def register_text_check(fn: Callable[..., str]) -> None:
    if fn not in _checks:
        _checks.append(fn)


def text_verdict(*, org_id: int, contact_id: int, text: str, scene: str) -> str:
    """The strictest answer of the registered checks (``risky`` > ``review`` > ``pass``)."""
    verdict = PASS
    for check in _checks:
        answer = check(org_id=org_id, contact_id=contact_id, text=text, scene=scene)
        if answer == RISKY:
            return RISKY
        if answer == REVIEW:
            verdict = REVIEW
    return verdict

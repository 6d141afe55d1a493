"""Template placeholders: every ``{name}`` a template uses is known, and filled when sent.

A template body is checked when it is saved: each placeholder must be one of ``KNOWN`` (and a
staff-only one such as ``{lead}`` only in a staff notice); positional ``{}``, attribute or
format-spec forms are refused. At send time the sender fills every placeholder from the row's
parameters (campaign params, journey/service params, the person's nickname); a row that still
has an empty placeholder is never sent — it is suppressed ``missing_param``
(``campaigns.services.sending.deliveries_claim``).

``{product}``, ``{clip_url}`` and ``{coupon_expiry}`` are filled per recipient from what they
did in a recall campaign's source room (``campaigns.services.recall``), which also picks the
variant's fallback copy for a person it cannot fill them for.

``{nickname}`` always has a value: the person's nickname, else the campaign's own
``params["nickname"]``, else ``NICKNAME_FALLBACK``.
"""

from __future__ import annotations

from functools import lru_cache
from string import Formatter

from django.utils.translation import gettext as _

from campaigns.models import TemplateAudience
from core.errors import DomainError

# What a customer message may say, and who fills it.
CUSTOMER_PLACEHOLDERS = {
    "nickname": "the person's nickname (fallback NICKNAME_FALLBACK)",
    "link": "campaign: its tracked short link (link_url); journey: the room / replay page",
    "room": "journey: the room's title",
    "start": "journey: the room's start time (HH:MM, Beijing)",
    "name": "campaign params / journey event props (e.g. the coupon's name)",
    "valid_until": "journey: the claimed coupon's expiry",
    "code": "service SMS: the verification code",
    "title": "campaign params / journey event props",
    "amount": "campaign params / journey event props",
    # Recall campaigns (a source room): per recipient, campaigns.services.recall.
    "product": "recall: the product the person engaged with most in the source room",
    "clip_url": "recall: that product's replay clip page",
    "coupon_expiry": "recall: expiry of the person's unredeemed coupon from the room",
}
# Only staff notices name someone else's lead.
STAFF_PLACEHOLDERS = {
    "lead": "staff notice: the lead's nickname or #id (never their phone)",
    "grade": "staff notice: the lead's grade",
    "title": "staff notice: the notice title",
    "link": "staff notice: the workspace",
}
KNOWN = set(CUSTOMER_PLACEHOLDERS) | set(STAFF_PLACEHOLDERS)
NICKNAME_FALLBACK = "亲"


class PlaceholderError(DomainError):
    code = "unknown_placeholder"


def placeholders_of(body: str) -> list[str]:
    """The placeholder names in ``body``, in order, each once. Raises PlaceholderError for a
    body ``str.format`` cannot render by name (``{}``, ``{0}``, ``{a.b}``, ``{a:>3}``, stray
    braces)."""
    return list(_parse(body))


@lru_cache(maxsize=1024)
def _parse(body: str) -> tuple[str, ...]:
    # The sender asks this several times per recipient of the same few templates.
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(body))
    except ValueError:
        raise PlaceholderError(
            _("模板中的花括号不成对"), fields={"body": [_("模板中的花括号不成对")]}
        ) from None
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            message = _("无法识别的变量：{%(name)s}") % {"name": name}
            raise PlaceholderError(message, fields={"body": [message]})
        if name not in names:
            names.append(name)
    return tuple(names)


def template_placeholders_check(*, body: str, audience: str, param_names: list[str]) -> None:
    """Refuse a template whose placeholders are unknown, staff-only in a customer message, or
    missing from / extra to its provider parameter list (when it has one)."""

    used = placeholders_of(body)
    allowed = (
        set(STAFF_PLACEHOLDERS) | {"nickname"}
        if audience == TemplateAudience.STAFF
        else set(CUSTOMER_PLACEHOLDERS)
    )
    unknown = [name for name in used if name not in allowed]
    if unknown:
        message = _("未知变量：%(names)s（可用：%(known)s）") % {
            "names": "、".join(f"{{{n}}}" for n in unknown),
            "known": "、".join(f"{{{n}}}" for n in sorted(allowed)),
        }
        raise PlaceholderError(message, fields={"body": [message]})
    if param_names:
        missing = [n for n in used if n not in param_names]
        extra = [n for n in param_names if n not in used]
        if missing or extra:
            message = _("参数顺序须与内容中的变量一致：%(names)s") % {
                "names": "、".join(missing + extra)
            }
            raise PlaceholderError(message, fields={"param_names": [message]})


def fill(*, body: str, params: dict) -> tuple[dict, list[str]]:
    """The values every placeholder of ``body`` gets, and the names left empty.

    ``params`` are the row's merged parameters; ``nickname`` falls back as documented above."""
    values = {k: str(v) for k, v in params.items() if v is not None}
    names = _parse(body)
    if "nickname" in names and not values.get("nickname", "").strip():
        values["nickname"] = NICKNAME_FALLBACK
    missing = [n for n in names if not values.get(n, "").strip()]
    return values, missing

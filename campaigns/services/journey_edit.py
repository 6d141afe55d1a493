"""Creating and editing journeys (自动化旅程) through the API and the workspace builder.

Edits never corrupt members in flight: a member walks the steps of the journey *version* it
entered with. Changing ``steps`` snapshots the old list (``JourneyVersion``) while members
still walk it and bumps ``Journey.version``; new members take the new steps, members in
flight finish the old ones. The trigger, name and holdout apply to new entries only, so
they change freely. Pausing stops new entries and holds members at their next step;
activating resumes them. Only a paused journey can be deleted (its members stop), so a
running journey never disappears under people mid-way.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import (
    BanditGoal,
    Channel,
    Journey,
    JourneyMembership,
    JourneyVersion,
    MembershipState,
    MessageClass,
    MessageTemplate,
    TemplateAudience,
    VariantMode,
)
from campaigns.services.policy import SERVICE_TRIGGERS
from core.errors import Conflict, DomainError
from core.models import Organization
from crm.conditions import ConditionError, validate_condition
from crm.services.events import EVENT_TYPES

# Triggers that do not come from the event log: the rooms' reminder sweep and the scorer.
SYNTHETIC_TRIGGERS = ("reservation.due", "grade.changed")
MAX_STEPS = 30
MAX_WAIT_SECONDS = 90 * 86400
# A send step's extra copies, and the most of its members held out or sent untimed.
MAX_VARIANTS = 4
MAX_STEP_PCT = 50

# type → {field: (kind, required)}; kinds: seconds, str, bool, condition, event, template,
# channel, goto, hours.
STEP_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "wait": {"seconds": ("seconds", True)},
    "wait_before_room_start": {"seconds": ("seconds", True)},
    "wait_room_end": {"seconds": ("seconds", False)},
    "wait_before_prop": {"prop": ("str", True), "seconds": ("seconds", False)},
    "wait_before_coupon_expiry": {"seconds": ("seconds", True)},
    "exit_if_event": {"event": ("event", True), "same_room": ("bool", False)},
    "exit_unless": {"condition": ("condition", True)},
    "branch": {"condition": ("condition", True), "else_goto": ("goto", True)},
    "send": {
        "template": ("template", True),
        "channel": ("channel", False),
        "fallback_template": ("template", False),
        # 智能节奏: at the member's own best hour (campaigns.services.send_time), with the
        # share sent untimed to measure it.
        "best_hour": ("bool", False),
        "untimed_pct": ("pct", False),
        # More copies, split evenly or by a bandit on a goal (campaigns.services.bandit),
        # and a holdout never sent.
        "variants": ("templates", False),
        "variant_mode": ("variant_mode", False),
        "bandit_goal": ("goal", False),
        "holdout_pct": ("pct", False),
    },
    "tag": {"tag": ("str", True)},
    "assign_owner": {},
    "create_task": {"title": ("str", False), "hours": ("hours", False)},
    "notify_owner": {
        "title": ("str", False),
        "sms_template": ("template", False),
        "wechat_template": ("template", False),
    },
}


class InvalidJourney(DomainError):
    code = "invalid_journey"


class JourneyActive(Conflict):
    code = "journey_active"


def trigger_events() -> tuple[str, ...]:
    return (*EVENT_TYPES, *SYNTHETIC_TRIGGERS)


def _bad(path: str, message: str) -> InvalidJourney:
    return InvalidJourney(f"{path}: {message}", fields={path: [message]})


def validate_trigger(*, event: str, condition: dict | None) -> None:
    """Raise InvalidJourney naming the bad part of a trigger (event, then condition path)."""

    if event not in trigger_events():
        raise _bad("trigger_event", _("未知触发事件：%(event)s") % {"event": event})
    if condition is not None:
        try:
            validate_condition(condition)
        except ConditionError as exc:
            raise _bad("trigger_condition", exc.message) from None


def validate_steps(*, org_id: int, steps: Any, trigger: str | None = None) -> list[dict]:
    """Check every step against STEP_FIELDS; the error names the step and field, e.g.
    ``steps[2].seconds``. Returns the steps (plain dicts, unknown keys refused).

    With the journey's ``trigger``, a ``send`` step's template must fit who it goes to: never
    a staff notice (it would reach a customer), and a service template only when the trigger
    is the person's own transaction (``policy.SERVICE_TRIGGERS``); otherwise the step is a
    send to whoever the trigger selects, which is marketing."""

    if not isinstance(steps, list):
        raise _bad("steps", _("步骤必须是列表"))
    if len(steps) > MAX_STEPS:
        raise _bad("steps", _("最多 %(n)s 个步骤") % {"n": MAX_STEPS})
    rows = MessageTemplate.objects.for_org(org_id).exclude(key="")
    templates = dict(rows.values_list("key", "channel"))
    kinds = {key: (cls, audience) for key, cls, audience in rows.values_list(
        "key", "message_class", "audience"
    )}  # fmt: skip
    for index, step in enumerate(steps):
        path = f"steps[{index}]"
        if not isinstance(step, dict):
            raise _bad(path, _("步骤必须是对象"))
        kind = step.get("type")
        if not isinstance(kind, str) or kind not in STEP_FIELDS:
            raise _bad(f"{path}.type", _("未知步骤类型：%(type)s") % {"type": kind})
        spec = STEP_FIELDS[kind]
        for name in step:
            if name != "type" and name not in spec:
                raise _bad(f"{path}.{name}", _("该步骤不支持此字段"))
        for name, (field_kind, required) in spec.items():
            where = f"{path}.{name}"
            if name not in step:
                if required:
                    raise _bad(where, _("必填"))
                continue
            value = step[name]
            if field_kind in ("event", "template", "channel") and not isinstance(value, str):
                raise _bad(where, _("应为字符串"))
            if field_kind == "seconds":
                if not _int_in(value, 0, MAX_WAIT_SECONDS):
                    raise _bad(where, _("应为 0 到 %(max)s 之间的秒数") % {"max": MAX_WAIT_SECONDS})
                if kind == "wait" and value < 1:
                    raise _bad(where, _("等待至少 1 秒"))
            elif field_kind == "hours":
                if not _int_in(value, 1, 720):
                    raise _bad(where, _("应为 1 到 720 之间的小时数"))
            elif field_kind == "str":
                if not isinstance(value, str) or not value.strip() or len(value) > 100:
                    raise _bad(where, _("应为 1 到 100 个字符"))
                if kind == "tag" and len(value.strip()) > 20:
                    raise _bad(where, _("标签最多 20 个字符"))
            elif field_kind == "bool":
                if not isinstance(value, bool):
                    raise _bad(where, _("应为 true 或 false"))
            elif field_kind == "event":
                if value not in EVENT_TYPES:
                    raise _bad(where, _("未知事件：%(event)s") % {"event": value})
            elif field_kind == "condition":
                try:
                    validate_condition(value)
                except ConditionError as exc:
                    raise _bad(where, exc.message) from None
            elif field_kind == "goto":
                # Forward only (no loops); len(steps) means "to the end".
                if not _int_in(value, index + 1, len(steps)):
                    raise _bad(
                        where,
                        _("应跳到后面的步骤（%(lo)s 到 %(hi)s）")
                        % {"lo": index + 1, "hi": len(steps)},
                    )
            elif field_kind == "pct":
                if not _int_in(value, 0, MAX_STEP_PCT):
                    raise _bad(where, _("应为 0 到 %(max)s 之间的整数") % {"max": MAX_STEP_PCT})
                if name == "untimed_pct" and not step.get("best_hour"):
                    raise _bad(where, _("仅用于智能节奏的发送"))
            elif field_kind == "templates":
                if not isinstance(value, list) or not 1 <= len(value) <= MAX_VARIANTS:
                    raise _bad(where, _("应为 1 到 %(n)s 个模板标识") % {"n": MAX_VARIANTS})
                copies = [step.get("template"), *value]
                if len(set(map(str, copies))) != len(copies):
                    raise _bad(where, _("各文案的模板不能重复"))
                for i, key in enumerate(value):
                    if not isinstance(key, str) or key not in templates:
                        raise _bad(f"{where}[{i}]", _("没有标识为 %(key)s 的模板") % {"key": key})
                    if templates[key] != templates.get(str(step.get("template"))):
                        raise _bad(f"{where}[{i}]", _("模板渠道不符"))
                    _check_send_template(f"{where}[{i}]", kinds[key], kind, trigger)
            elif field_kind == "variant_mode":
                if value not in VariantMode.values:
                    raise _bad(where, _("应为 fixed 或 bandit"))
                if value == VariantMode.BANDIT and not step.get("variants"):
                    raise _bad(where, _("自动优化至少需要两个文案"))
                if value == VariantMode.BANDIT and "bandit_goal" not in step:
                    raise _bad(f"{path}.bandit_goal", _("必填"))
            elif field_kind == "goal":
                if value not in BanditGoal.values:
                    raise _bad(where, _("未知优化目标：%(goal)s") % {"goal": value})
                if step.get("variant_mode") != VariantMode.BANDIT:
                    raise _bad(where, _("仅用于自动优化"))
                if value == BanditGoal.REPLY and templates.get(str(step.get("template"))) != (
                    Channel.SMS
                ):
                    raise _bad(where, _("回复只统计短信"))
            elif field_kind == "template":
                if value not in templates:
                    raise _bad(where, _("没有标识为 %(key)s 的模板") % {"key": value})
                wanted = {"sms_template": Channel.SMS, "wechat_template": Channel.WECHAT_TEMPLATE}
                if name in wanted and templates[value] != wanted[name]:
                    raise _bad(where, _("模板渠道不符"))
                if name == "fallback_template" and templates[value] != templates.get(
                    str(step.get("template"))
                ):
                    raise _bad(where, _("模板渠道不符"))
                _check_send_template(where, kinds[value], kind, trigger)
            elif field_kind == "channel":
                if value not in Channel.values:
                    raise _bad(where, _("未知渠道：%(channel)s") % {"channel": value})
                template_channel = templates.get(str(step.get("template")))
                if template_channel and template_channel != value:
                    raise _bad(where, _("与模板的渠道不一致"))
    return [dict(step) for step in steps]


def _check_send_template(where: str, kind_of: tuple[str, str], step_kind: str, trigger) -> None:
    """A ``send`` step's template must fit who it goes to (see ``validate_steps``)."""
    message_class, audience = kind_of
    if step_kind == "send" and audience == TemplateAudience.STAFF:
        raise _bad(where, _("员工通知模板不能发给客户，请用“通知负责人”步骤"))
    if (
        step_kind == "send"
        and trigger is not None
        and message_class == MessageClass.SERVICE
        and trigger not in SERVICE_TRIGGERS
    ):
        raise _bad(
            where,
            _(
                "服务通知模板只能用于客户本人预约、领券、下单触发的旅程；"
                "此触发下的发送属于营销，请选择营销模板"
            ),
        )


def _int_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def journey_create(
    *,
    org: Organization,
    name: str,
    trigger_event: str,
    trigger_condition: dict | None = None,
    steps: list,
    holdout_pct: int = 0,
    key: str = "",
    is_active: bool = False,
) -> Journey:
    """Create a journey (paused unless ``is_active``). Raises InvalidJourney naming the bad
    part of the trigger or steps, Conflict when the key is taken."""
    validate_trigger(event=trigger_event, condition=trigger_condition)
    steps = validate_steps(org_id=org.pk, steps=steps, trigger=trigger_event)
    key = key or f"j-{secrets.token_hex(4)}"
    if Journey.objects.for_org(org).filter(key=key).exists():
        raise Conflict(_("标识已被使用"), fields={"key": [_("标识已被使用")]}, code="key_taken")
    return Journey.objects.for_org(org).create(
        org=org,
        key=key,
        name=name,
        trigger_event=trigger_event,
        trigger_condition=trigger_condition,
        steps=steps,
        holdout_pct=holdout_pct,
        is_active=is_active,
    )


_UNSET = object()


def journey_update(
    *,
    journey: Journey,
    name: str | None = None,
    trigger_event: str | None = None,
    trigger_condition: dict | None | object = _UNSET,
    steps: list | None = None,
    holdout_pct: int | None = None,
) -> Journey:
    """Change a journey. New steps become a new version: members in flight finish the
    version they entered with (kept as a JourneyVersion), new members take the new one."""
    with transaction.atomic():
        journey = Journey.objects.for_org(journey.org_id).select_for_update().get(pk=journey.pk)
        event = trigger_event if trigger_event is not None else journey.trigger_event
        condition = journey.trigger_condition if trigger_condition is _UNSET else trigger_condition
        if trigger_event is not None or trigger_condition is not _UNSET:
            validate_trigger(event=event, condition=condition)
        fields = ["updated_at"]
        if steps is None and trigger_event is not None and trigger_event != journey.trigger_event:
            # The steps' templates must still fit the new trigger.
            validate_steps(org_id=journey.org_id, steps=journey.steps, trigger=event)
        if steps is not None:
            steps = validate_steps(org_id=journey.org_id, steps=steps, trigger=event)
            if steps != journey.steps:
                _keep_version(journey)
                journey.steps = steps
                journey.version += 1
                fields += ["steps", "version"]
        for attr, value in (
            ("name", name),
            ("trigger_event", trigger_event),
            ("holdout_pct", holdout_pct),
        ):
            if value is not None:
                setattr(journey, attr, value)
                fields.append(attr)
        if trigger_condition is not _UNSET:
            journey.trigger_condition = trigger_condition
            fields.append("trigger_condition")
        journey.save(update_fields=fields)
    return journey


def _keep_version(journey: Journey) -> None:
    """Snapshot the current steps if anyone still walks them; drop snapshots nobody walks."""
    in_flight = set(
        JourneyMembership.objects.for_org(journey.org_id)
        .filter(journey=journey, state=MembershipState.ACTIVE)
        .values_list("version", flat=True)
        .distinct()
    )
    if journey.version in in_flight:
        JourneyVersion.objects.for_org(journey.org_id).get_or_create(
            org_id=journey.org_id,
            journey=journey,
            number=journey.version,
            defaults={"steps": journey.steps},
        )
    JourneyVersion.objects.for_org(journey.org_id).filter(journey=journey).exclude(
        number__in=in_flight
    ).delete()


def journey_set_active(*, journey: Journey, active: bool) -> Journey:
    """Activate (entries on, held members resume) or pause (no entries, members held)."""
    if journey.is_active != active:
        journey.is_active = active
        journey.save(update_fields=["is_active", "updated_at"])
    return journey


def journey_delete(*, journey: Journey) -> None:
    """Delete a paused journey with its memberships and logs (sent messages stay)."""
    if journey.is_active:
        raise JourneyActive(_("请先暂停旅程再删除"))
    journey.delete()

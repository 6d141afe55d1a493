"""One-ID: attaching identities to contacts and merging two contacts that turn out to be one
person — reversibly.

Every row in any app that points at a contact moves with the merge. References are found
through Django's model meta (every ForeignKey / OneToOneField to Contact, in any installed
app, so new models are covered automatically) plus ``register_contact_reference(model,
field)`` for plain integer columns that hold a contact id without a foreign key.

A row whose move would break a unique constraint (the same coupon claimed by both, the
same consent purpose on both) stays on the absorbed contact and is listed as ``kept``;
consents are then re-derived from the merged ledger (latest decision per purpose wins).
The absorbed contact is kept as a tombstone (``merged_into``), out of every list and score,
so ``contact_merge_undo`` can move exactly the recorded rows back.
"""

from __future__ import annotations

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core import pii
from core.errors import Conflict, DomainError
from core.models import AuditLog
from core.phones import normalize_phone
from crm.models import (
    Consent,
    ConsentEvent,
    Contact,
    ContactIdentity,
    ContactMerge,
    IdentityKind,
)
from crm.services.scoring import contact_rescore

# (model, field name) pairs holding a contact id without a ForeignKey.
_extra_references: list[tuple[type[models.Model], str]] = []

# Contact fields the survivor takes from the absorbed contact when its own are empty.
FILLABLE = ["nickname", "avatar_url", "birth_year", "province", "city", "income_level", "owner"]
SKIPPED = {(ContactMerge, "survivor"), (ContactMerge, "absorbed")}


def register_contact_reference(model: type[models.Model], field: str) -> None:
    """Declare that ``model.field`` holds a contact id (a plain integer column): merges move it."""
    if (model, field) not in _extra_references:
        _extra_references.append((model, field))


def contact_references() -> list[tuple[type[models.Model], str]]:
    """Every (model, attname) that points at a contact: FKs discovered + registered columns."""
    refs = []
    # include_hidden: other apps often declare related_name="+" on their contact FKs.
    relations = [
        f
        for f in Contact._meta.get_fields(include_hidden=True)
        if f.auto_created and not f.concrete
    ]
    for rel in relations:
        if rel.many_to_many or rel.related_model is Contact:
            continue
        model, field = rel.related_model, rel.field
        if (model, field.name) in SKIPPED:
            continue
        refs.append((model, field.attname))
    refs += [(m, f) for m, f in _extra_references]
    return refs


def _manager(model):
    return getattr(model, "unscoped", model._default_manager)


class MergeError(DomainError):
    code = "merge_invalid"


def contact_merge(
    *, survivor: Contact, absorbed: Contact, actor=None, reason: str = ""
) -> ContactMerge:
    """Fold ``absorbed`` into ``survivor``: identities, events, claims, consents, notes, tasks
    and every other referencing row move; blank profile fields and the owner are filled from
    the absorbed contact; tags are united. Recorded in ContactMerge and the audit log."""
    if survivor.pk == absorbed.pk or survivor.org_id != absorbed.org_id:
        raise MergeError("cannot merge a contact into itself or across organisations")
    if survivor.merged_into_id or absorbed.merged_into_id:
        raise Conflict("contact already merged", code="already_merged")
    with transaction.atomic():
        survivor = Contact.objects.for_org(survivor.org_id).select_for_update().get(pk=survivor.pk)
        absorbed = Contact.objects.for_org(absorbed.org_id).select_for_update().get(pk=absorbed.pk)
        before = {
            "fields": {f: getattr(survivor, Contact._meta.get_field(f).attname) for f in FILLABLE},
            "tags": list(survivor.tags or []),
            "consents": {
                c.purpose: [c.granted, c.source]
                for c in Consent.objects.for_org(survivor.org_id).filter(contact=survivor)
            },
        }
        moved: dict[str, dict[str, list[int]]] = {}
        kept: dict[str, list[int]] = {}
        for model, attname in contact_references():
            if model is Consent:
                continue  # re-derived from the ledger below
            label = model._meta.label
            ids = list(
                _manager(model).filter(**{attname: absorbed.pk}).values_list("pk", flat=True)
            )
            if not ids:
                continue
            try:
                with transaction.atomic():
                    _manager(model).filter(pk__in=ids).update(**{attname: survivor.pk})
                    moved.setdefault(label, {})[attname] = ids
            except IntegrityError:
                # Row by row: the ones that collide with the survivor's stay where they are.
                done = []
                for pk in ids:
                    try:
                        with transaction.atomic():
                            _manager(model).filter(pk=pk).update(**{attname: survivor.pk})
                        done.append(pk)
                    except IntegrityError:
                        kept.setdefault(label, []).append(pk)
                if done:
                    moved.setdefault(label, {})[attname] = done
        for name in FILLABLE:
            attname = Contact._meta.get_field(name).attname
            if getattr(survivor, attname) in (None, "") and getattr(absorbed, attname) not in (
                None,
                "",
            ):
                setattr(survivor, attname, getattr(absorbed, attname))
        survivor.tags = sorted(set(survivor.tags or []) | set(absorbed.tags or []))
        survivor.last_seen_at = max(
            (t for t in (survivor.last_seen_at, absorbed.last_seen_at) if t), default=None
        )
        survivor.save()
        absorbed.merged_into = survivor
        absorbed.save(update_fields=["merged_into", "updated_at"])
        _rederive_consents(survivor)
        merge = ContactMerge.objects.for_org(survivor.org_id).create(
            org_id=survivor.org_id,
            survivor=survivor,
            absorbed=absorbed,
            reason=reason[:200],
            moved={"rows": moved, "kept": kept},
            survivor_before=before,
        )
        AuditLog.objects.for_org(survivor.org_id).create(
            org_id=survivor.org_id,
            actor=actor,
            action="contact.merge",
            target_type="contact",
            target_id=str(survivor.pk),
            detail={"absorbed": absorbed.pk, "merge": merge.pk, "reason": reason[:200]},
        )

    contact_rescore(contact=survivor, reason="merge")
    return merge


def _rederive_consents(contact: Contact) -> None:
    """Current consent per purpose = the latest ledger entry (over both merged histories)."""
    latest: dict[str, ConsentEvent] = {}
    for event in ConsentEvent.objects.for_org(contact.org_id).filter(contact=contact):
        latest[event.purpose] = event  # ordered by (at, id)
    for purpose, event in latest.items():
        Consent.objects.for_org(contact.org_id).update_or_create(
            contact=contact,
            purpose=purpose,
            defaults={
                "org_id": contact.org_id,
                "granted": event.action == "grant",
                "source": event.source,
            },
        )


def contact_merge_undo(*, merge: ContactMerge, actor=None) -> Contact:
    """Reverse a merge exactly: recorded rows move back, the survivor's fields, tags and
    consents return to their pre-merge state, the absorbed contact comes back to life."""
    if merge.undone_at is not None:
        raise Conflict("merge already undone", code="already_undone")
    models_by_label = {m._meta.label: m for m, _ in contact_references()}
    with transaction.atomic():
        survivor = (
            Contact.objects.for_org(merge.org_id).select_for_update().get(pk=merge.survivor_id)
        )
        absorbed = (
            Contact.objects.for_org(merge.org_id).select_for_update().get(pk=merge.absorbed_id)
        )
        for label, fields in (merge.moved.get("rows") or {}).items():
            model = models_by_label.get(label)
            if model is None:
                continue
            for attname, ids in fields.items():
                _manager(model).filter(pk__in=ids, **{attname: survivor.pk}).update(
                    **{attname: absorbed.pk}
                )
        before = merge.survivor_before or {}
        for name, value in (before.get("fields") or {}).items():
            setattr(survivor, Contact._meta.get_field(name).attname, value)
        survivor.tags = before.get("tags", survivor.tags)
        survivor.save()
        Consent.objects.for_org(merge.org_id).filter(contact=survivor).delete()
        for purpose, (granted, source) in (before.get("consents") or {}).items():
            Consent.objects.for_org(merge.org_id).create(
                org_id=merge.org_id,
                contact=survivor,
                purpose=purpose,
                granted=granted,
                source=source,
            )
        _rederive_consents(absorbed)
        absorbed.merged_into = None
        absorbed.save(update_fields=["merged_into", "updated_at"])
        merge.undone_at = timezone.now()
        merge.save(update_fields=["undone_at", "updated_at"])
        AuditLog.objects.for_org(merge.org_id).create(
            org_id=merge.org_id,
            actor=actor,
            action="contact.merge_undo",
            target_type="contact",
            target_id=str(survivor.pk),
            detail={"absorbed": absorbed.pk, "merge": merge.pk},
        )

    contact_rescore(contact=survivor, reason="unmerge")
    contact_rescore(contact=absorbed, reason="unmerge")
    return absorbed


def identity_attach(
    *, contact: Contact, kind: str, value: str, app_id: str = "", actor=None
) -> Contact:
    """Give ``contact`` another identity (a guest binds a phone, a WeChat login brings a
    unionid). If another contact already holds it, the two are one person: ``contact`` is
    merged into that one, which is returned (the surviving record)."""
    if kind not in IdentityKind.values:
        raise DomainError(f"unknown identity kind '{kind}'", fields={"kind": [kind]})
    value = identity_normalise(kind, value)
    value_hash = pii.lookup_hash(kind, value)
    holder = (
        ContactIdentity.objects.for_org(contact.org_id)
        .filter(kind=kind, app_id=app_id, value_hash=value_hash)
        .select_related("contact")
        .first()
    )
    if holder is not None:
        if holder.contact_id == contact.pk:
            return contact
        survivor = holder.contact
        while survivor.merged_into_id:
            survivor = survivor.merged_into
        contact_merge(
            survivor=survivor, absorbed=contact, actor=actor, reason=f"identity {kind} met"
        )
        survivor.refresh_from_db()
        return survivor
    try:
        with transaction.atomic():
            ContactIdentity.objects.for_org(contact.org_id).create(
                org_id=contact.org_id,
                contact=contact,
                kind=kind,
                app_id=app_id,
                value_hash=value_hash,
                value_encrypted=pii.encrypt(value),
            )
    except IntegrityError:
        # Someone attached it concurrently: retry once, which now merges.
        return identity_attach(contact=contact, kind=kind, value=value, app_id=app_id, actor=actor)
    return contact


def identity_normalise(kind: str, value: str) -> str:
    value = (value or "").strip()
    if kind == IdentityKind.PHONE:
        return normalize_phone(value)  # the one phone rule; raises PhoneInvalid (a DomainError)
    if not value or len(value) > 128:
        raise DomainError("invalid identity value", fields={kind: [value[:20]]})
    return value

"""The personal-data map cannot go stale: every field of every model of every project app is
classified in crm/personal_data.py, and every link to a contact is either followed or says
why not."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings

from crm import personal_data
from crm.models import Contact


def _project_models():
    base = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if base in path.parents and ".venv" not in path.parts:
            yield from config.get_models()


def _field_names(model) -> set[str]:
    return {
        f.name
        for f in model._meta.get_fields()
        if not (f.auto_created and not f.concrete)  # reverse relations live on the other side
    }


def test_every_field_of_every_project_model_is_classified():
    problems = []
    labels = set()
    for model in _project_models():
        label = model._meta.label
        labels.add(label)
        table = personal_data.TABLES.get(label)
        if table is None:
            problems.append(f"{label}: no entry in crm.personal_data.TABLES")
            continue
        names = _field_names(model)
        classified = set(table.fields) | (set(personal_data.BASE) & names)
        for name in sorted(names - classified):
            problems.append(f"{label}.{name}: not classified (none/personal/key/text…)")
        for name in sorted(set(table.fields) - names):
            problems.append(f"{label}.{name}: classified but no such field")
        for name, cls in table.fields.items():
            if cls not in personal_data.CLASSES:
                problems.append(f"{label}.{name}: unknown class {cls!r}")
    assert labels, "no project app found"
    assert problems == []


def test_every_entry_names_a_model_and_every_table_holding_personal_data_is_reached():
    problems = []
    for label, table in personal_data.TABLES.items():
        model = apps.get_model(label)  # raises on a stale entry
        erased = table.classes() & set(personal_data.ERASED)
        if erased and not table.reached:
            problems.append(f"{label}: holds {sorted(erased)} but no via/hashes/finder")
        for column in table.hashes:
            if table.fields.get(column) != personal_data.KEY:
                problems.append(f"{label}.{column}: a hash column must be classified key")
        for name in table.finders:
            if name not in personal_data.FINDERS:
                problems.append(f"{label}: finder {name} is not registered by any app")
        if table.on_erase not in ("scrub", "delete"):
            problems.append(f"{label}: on_erase {table.on_erase!r}")
        for path in table.via:
            if path != "pk" and "__" not in path:
                field = model._meta.get_field(path)
                if not (field.is_relation and field.related_model is Contact):
                    problems.append(f"{label}.{path}: via must end at the contact")
    assert problems == []


def test_every_foreign_key_to_a_contact_is_followed_or_says_why_not():
    problems = []
    for model in _project_models():
        table = personal_data.TABLES.get(model._meta.label)
        if table is None:
            continue  # reported by the classification test
        for f in model._meta.concrete_fields:
            linked = f.is_relation and f.related_model is Contact and model is not Contact
            if linked and f.name not in table.via and f.name not in table.not_via:
                problems.append(f"{model._meta.label}.{f.name}: add to via or not_via")
    assert problems == []


def test_docs_show_the_map_as_it_is():
    text = (Path(settings.BASE_DIR) / "docs" / "crm.md").read_text()
    start = text.index(personal_data.DOC_START)
    end = text.index(personal_data.DOC_END) + len(personal_data.DOC_END)
    assert text[start:end] == personal_data.markdown(), "run: manage.py personal_data_doc"

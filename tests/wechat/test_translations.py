"""The wechat app carries its own English (wechat/locale/en/LC_MESSAGES/django.po): every
string its Python code translates has an English msgstr there."""

from __future__ import annotations

import ast
from pathlib import Path

import polib
from django.conf import settings

GETTEXT = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy"}


def _translated_strings(root: Path) -> set[tuple[str | None, str]]:
    found = set()
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in GETTEXT or not node.args:
                continue
            args = [a.value if isinstance(a, ast.Constant) else None for a in node.args[:2]]
            if node.func.id.startswith("pgettext") and len(args) == 2 and all(args):
                found.add((args[0], args[1]))
            elif isinstance(args[0], str):
                found.add((None, args[0]))
    return found


def test_every_string_of_the_wechat_code_has_english():
    app = Path(settings.BASE_DIR) / "wechat"
    catalog = polib.pofile(str(app / "locale" / "en" / "LC_MESSAGES" / "django.po"))
    english = {(e.msgctxt, e.msgid) for e in catalog if e.msgstr and "fuzzy" not in e.flags}
    missing = sorted(m for _c, m in _translated_strings(app) - english)
    assert not missing, f"no English in wechat/locale for: {missing}"

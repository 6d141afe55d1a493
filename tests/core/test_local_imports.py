"""The one-way house (docs/architecture.md, "Imports"): no import of this repository's
modules hides inside a function unless it says why, and none sits behind an ImportError guard.

A function-local import hides a dependency from readers and from import-linter's picture of
the apps, and is the usual way a cycle gets papered over. The reasons that are allowed are
written on the import's line or the line above it as ``# local import: <reason>`` —
AppConfig.ready (the app registry), code run before ``django.setup()``, settings-time code,
a management command's lazy load, an optional heavy dependency on a rare path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "crm", "livecommerce", "campaigns", "wechat", "qianmian")
REASON = "# local import:"
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def app_modules() -> list[Path]:
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def is_project(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in APPS
    return any(alias.name.split(".")[0] in APPS for alias in node.names)


def explained(tree: ast.AST, lines: list[str]) -> set[int]:
    """Line numbers of the imports a reason covers: one on the import's own lines, or one on
    the line above a run of import statements (``AppConfig.ready``'s block) covering the run."""
    covered = set()
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            run_reason = False
            previous = None
            stmts = getattr(parent, field, None)
            for stmt in stmts if isinstance(stmts, list) else []:
                if not isinstance(stmt, ast.Import | ast.ImportFrom):
                    previous, run_reason = None, False
                    continue
                above = lines[stmt.lineno - 2].strip() if stmt.lineno >= 2 else ""
                if previous is None or stmt.lineno != previous.end_lineno + 1:
                    run_reason = above.startswith(REASON)
                elif above.startswith(REASON):
                    run_reason = True
                own = lines[stmt.lineno - 1 : stmt.end_lineno]
                if run_reason or any(REASON in line for line in own):
                    covered.add(stmt.lineno)
                previous = stmt
    return covered


def local_imports(tree: ast.AST):
    """Import statements anywhere inside a function body (nested blocks included)."""
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for stmt in func.body:
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        yield node


def import_error_guards(tree: ast.AST):
    """Import statements in the body of a ``try`` that catches ImportError."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)}
        if caught & IMPORT_ERRORS:
            for stmt in node.body:
                for inner in ast.walk(stmt):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        yield inner


def offences(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    lines = source.splitlines()
    covered = explained(tree, lines)
    found = set()
    for node in local_imports(tree):
        if is_project(node) and node.lineno not in covered:
            found.add(f"{name}:{node.lineno}: function-local import without '{REASON}'")
    for node in import_error_guards(tree):
        if is_project(node):
            found.add(f"{name}:{node.lineno}: ImportError guard around a module of this repo")
    return sorted(found)


def test_no_unexplained_local_import_or_import_error_guard_of_a_project_module():
    found = []
    for path in app_modules():
        found += offences(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ("def f():\n    from crm.models import Contact\n", 1),
        ("def f():\n    if x:\n        import campaigns.tasks\n", 1),
        ("def f():\n    from .models import Contact\n", 1),
        ("def f():\n    # local import: AppConfig.ready\n    from crm import tasks\n", 0),
        ("def f():\n    from crm import tasks  # local import: AppConfig.ready\n", 0),
        ("def f():\n    import redis\n", 0),
        ("def f():\n    # local import: ready\n    import crm.a\n    import crm.b\n", 0),
        ("def f():\n    # local import: ready\n    import crm.a\n\n    import crm.b\n", 1),
        ("from crm.models import Contact\n", 0),
        ("try:\n    from crm import tasks\nexcept ImportError:\n    tasks = None\n", 1),
        ("try:\n    import qrcode\nexcept (ImportError, OSError):\n    qrcode = None\n", 0),
    ],
)
def test_the_check_itself(source, count):
    assert len(offences(source, "m.py")) == count

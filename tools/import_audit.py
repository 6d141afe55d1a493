"""Count the imports made inside functions, and those reaching another app (issue 16).

    .venv/bin/python tools/import_audit.py [root]

Prints the number of function-local import statements in the apps' code (tests and
migrations left out), how many reach another app, and how many of those go up the layers of
the one-way-apps contract in pyproject.toml (`make lint` fails on any upward import, inside a
function or not).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = ["core", "crm", "livecommerce", "wechat", "campaigns"]  # bottom-up
RANK = {app: i for i, app in enumerate(LAYERS)}
SKIP = {".venv", "tests", "migrations", "node_modules", "var"}


def local_imports(root: Path) -> list[tuple[str, str]]:
    """(app of the file, imported module) for each import inside a function, counted once
    even inside nested functions."""
    found: dict[tuple[str, int, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if set(rel.parts) & SKIP or rel.parts[0] not in RANK:
            continue
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom):
                    modules = [(node.module or "") if node.level == 0 else rel.parts[0]]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    found[(str(rel), node.lineno, module)] = rel.parts[0]
    return [(app, module) for (_path, _line, module), app in found.items()]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    total = cross = upward = 0
    for app, module in local_imports(root):
        target = module.split(".")[0]
        total += 1
        if target in RANK and target != app:
            cross += 1
            upward += RANK[target] > RANK[app]
    print(f"function-local imports: {total}, reaching another app: {cross}, upward: {upward}")


if __name__ == "__main__":
    main()

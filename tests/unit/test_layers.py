"""The layers of docs/architecture.md, checked on the source: components never import each
other, and the installed package reaches the pyinfra layer only lazily (inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

from operations.order import COMPONENTS

ROOT = Path(__file__).resolve().parents[2]
NAMES = {c.__name__.split(".")[1] for c in COMPONENTS}


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of each import in a file under operations/ or pyinfra_jupyter/."""
    tree = ast.parse(path.read_text())
    # The package the file's relative imports start from (an __init__.py is its own).
    package = ".".join(path.parent.relative_to(ROOT).parts)
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [(node.lineno, module)]
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_components_never_import_each_other():
    assert len(NAMES) >= 10
    stray = []
    for name in sorted(NAMES):
        for path in sorted((ROOT / "operations" / name).rglob("*.py")):
            for line, module in _imports(path):
                parts = module.split(".")
                if parts[0] == "operations" and len(parts) > 1 and parts[1] in NAMES - {name}:
                    stray.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not stray, "what components share belongs in paths, Site, ops or platform:\n" + \
        "\n".join(stray)


def test_the_installed_package_imports_operations_only_lazily():
    stray = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in sorted((ROOT / "pyinfra_jupyter").rglob("*.py"))
             for line, module in _imports(path, top_level_only=True)
             if module.split(".")[0] == "operations"]
    assert not stray, "\n".join(stray)

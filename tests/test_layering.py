"""The layers of every server hold: tools never import tools, analytics never touch the database.

See docs/writing-a-tool.md. Checked on the source (imports anywhere in a module, including inside
functions), so a shortcut cannot hide in a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "cs": ROOT / "servers/cs/src/revops_cs",
    "sales": ROOT / "servers/sales/src/revops_sales",
    "marketing": ROOT / "servers/marketing/src/revops_marketing",
}
# What pure maths may not import: the database, the tables, the services that use them.
DATABASE_MODULES = ("sqlmodel", "sqlalchemy", "psycopg", "revops_core.db")


def _imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved against the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: use absolute imports (found a relative import)")
            module = node.module or ""
            found.append(module)
            # `from pkg.tools import x` imports the module pkg.tools.x when x is one
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def _modules(package: Path, layer: str) -> list[Path]:
    folder = package / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


@pytest.mark.parametrize("server", sorted(PACKAGES))
def test_tool_modules_never_import_other_tool_modules(server: str) -> None:
    package = PACKAGES[server]
    tools_pkg = f"{package.name}.tools"
    problems = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package, "tools")
        if path.name != "__init__.py"
        for name in _imports(path)
        if name.startswith(tools_pkg + ".")
    ]
    assert not problems, "move shared code into services/:\n" + "\n".join(problems)


@pytest.mark.parametrize("server", sorted(PACKAGES))
def test_analytics_never_import_the_database(server: str) -> None:
    package = PACKAGES[server]
    forbidden = (
        *DATABASE_MODULES,
        f"{package.name}.models",
        f"{package.name}.services",
        f"{package.name}.tools",
    )
    problems = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package, "analytics")
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert not problems, "analytics is pure maths; read the rows in services/:\n" + "\n".join(problems)


@pytest.mark.parametrize("server", sorted(PACKAGES))
def test_only_the_known_modules_sit_at_the_package_root(server: str) -> None:
    """Service code lives in services/, not as unnamed modules beside server.py."""
    package = PACKAGES[server]
    allowed = {"__init__", "__main__", "server", "toolsets", "params", "output", "schema", "resources"}
    stray = sorted(p.stem for p in package.glob("*.py") if p.stem not in allowed)
    assert not stray, f"{server}: move {stray} into services/, analytics/ or models/"


def test_the_import_scan_sees_a_lazy_tools_import(tmp_path: Path) -> None:
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from revops_cs.tools.support import get_ticket\n")
    assert "revops_cs.tools.support" in _imports(module)

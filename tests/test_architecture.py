"""The layout's rules, checked on the source: dependencies point one way and the edges know no HTTP."""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
WEB_LIBRARIES = ("flask", "flask_restx", "flask_sqlalchemy", "werkzeug")


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module path imports, at any depth of the file (function-level imports included)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # "from . import x" imports the module x when there is one
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(path): _imports(path) for path in APP.rglob("*.py") if "migrations" not in path.parts}


def _app_imports(module: str) -> set[str]:
    return {name for name in MODULES[module] if name in MODULES and name != module}


def test_the_sandbox_imports_no_web_framework_and_nothing_of_the_engine_around_it():
    for module, imported in MODULES.items():
        if module.startswith("app.sandbox"):
            web = {name for name in imported if name.split(".")[0] in WEB_LIBRARIES}
            outside = {name for name in _app_imports(module) if not name.startswith("app.sandbox")}
            assert not web and not outside, f"{module} imports {sorted(web | outside)}"


def test_nothing_but_the_factory_imports_the_api():
    for module in MODULES:
        if module == "app" or module.startswith("app.api"):
            continue
        api = {name for name in _app_imports(module) if name == "app.api" or name.startswith("app.api.")}
        assert not api, f"{module} imports {sorted(api)}"


def test_no_import_cycle():
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    def edges(module: str) -> set[str]:
        return {name for name in _app_imports(module) if not module.startswith(name + ".") and not name.startswith(module + ".")}

    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for name in sorted(edges(module)):
            if state.get(name) == "open":
                cycle = path[path.index(name):] + [name]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if name not in state:
                visit(name, [*path, name])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])

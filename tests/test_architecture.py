"""The layout's rules, checked on the source: dependencies point one way and the edges know no HTTP.

The layout: API -> services -> runner -> sandbox, with storage and live beside them; no arrow back
up. Imports are read at any depth of a file, so one under TYPE_CHECKING or in a function counts.
"""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
WEB_LIBRARIES = ("flask", "flask_restx", "flask_sqlalchemy", "werkzeug")
# what storage and live may take of Flask: the app object (its config, its app context); nothing of
# a request or a response. flask_sqlalchemy's db and Flask-Migrate's CLI are the storage's own.
FLASK_WITHOUT_HTTP = {"flask", "flask.Flask", "flask.current_app", "flask_sqlalchemy", "flask_sqlalchemy.SQLAlchemy", "flask_migrate", "flask_migrate.Migrate"}
HTTP_LIBRARIES = ("flask", "flask_restx", "werkzeug", "http", "urllib", "requests")
# who may not import whom: a layer never imports the layers above it
NOT_ABOVE = {
    "app.services": ("app.api",),
    "app.runner": ("app.api", "app.services"),
    "app.live": ("app.api", "app.services", "app.runner"),
    "app.storage": ("app.api", "app.services", "app.runner", "app.live", "app.errors", "app.auth", "app.web"),
}
MAX_MODULE_LINES = 400


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


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_arrow_points_back_up():
    for module in MODULES:
        for layer, above in NOT_ABOVE.items():
            if not _within(module, layer):
                continue
            upward = {name for name in _app_imports(module) if any(_within(name, package) for package in above)}
            assert not upward, f"{module} ({layer}) imports {sorted(upward)}, a layer above it"


def test_storage_imports_nothing_of_the_engine_around_it():
    for module in MODULES:
        if _within(module, "app.storage"):
            outside = {name for name in _app_imports(module) if name != "app" and not _within(name, "app.storage")}
            assert not outside, f"{module} imports {sorted(outside)}"


def test_storage_and_live_know_no_http():
    for module, imported in MODULES.items():
        if _within(module, "app.storage") or _within(module, "app.live"):
            http = {name for name in imported if name.split(".")[0] in HTTP_LIBRARIES and name not in FLASK_WITHOUT_HTTP}
            assert not http, f"{module} imports {sorted(http)}"


def test_no_module_of_the_app_is_longer_than_it_can_be_read():
    long = {
        str(path.relative_to(APP.parent)): lines
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_tests_share_code_through_support_only():
    """A test module imports no other test module and not conftest: what tests share is in tests/support/."""
    tests = Path(__file__).resolve().parent
    offenders = {}
    for path in sorted(tests.glob("*.py")):
        names = {alias.name for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.ImportFrom)}
        shared = sorted(name for name in names if name == "conftest" or name.startswith(("test_", "tests.")))
        if shared:
            offenders[path.name] = shared
    assert not offenders, f"import what they share from tests/support/ instead: {offenders}"

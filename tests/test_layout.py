"""The layout the README describes holds: imports point downward, the domain stays pure, tooling stays
out of the product, and the tests mirror the packages."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parent.parent
CHATIO: Final = ROOT / "chatio"

#: Each part of chatio and its level: a part imports only parts of a lower level (or itself).
LEVELS: Final = {
    "errors": 0,
    "jsontext": 0,
    "background": 0,
    "gctune": 0,
    "rfc6455": 0,
    "metrics": 0,
    "health": 0,
    "redisconn": 0,
    "store": 0,
    "schemas": 1,
    "config": 1,
    "accounts": 2,
    "presence": 2,
    "ratelimit": 2,
    "loadtest": 2,
    # The domain and the transport are peers: neither knows the other (the fan-out learns which rooms are
    # users' from the composition root); realtime joins them.
    "chat": 3,
    "transport": 3,
    "realtime": 5,
    # The typed AppKeys: names for the parts below, which create_app stores and the routes read back.
    "keys": 6,
    "web": 7,
    "cluster": 8,
    "backends": 9,
    "app": 10,
    "__main__": 11,
    "__init__": 0,
}
#: Imports that point sideways or up, each with its reason. Shrink this list; never grow it lightly.
EXCEPTIONS: Final[set[tuple[str, str]]] = set()
#: Third-party packages a part must not import.
FORBIDDEN: Final = {
    "chat": {"aiohttp", "socketio", "engineio", "redis", "pymongo"},
    "accounts": {"aiohttp", "socketio", "engineio", "redis"},
    "store": {"aiohttp", "socketio", "engineio", "redis"},
    "presence": {"aiohttp", "socketio", "engineio", "pymongo"},
    "ratelimit": {"socketio", "engineio", "pymongo"},
    "web": {"socketio", "engineio", "redis", "pymongo"},
    "loadtest": {"aiohttp", "socketio", "engineio", "redis", "pymongo"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(CHATIO)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _sources() -> list[Path]:
    return sorted(CHATIO.rglob("*.py"))


def test_every_part_has_a_level() -> None:
    assert {_part(path) for path in _sources()} <= set(LEVELS)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_downward(path: Path) -> None:
    part = _part(path)
    wrong = []
    for module in _imports(path):
        top, _, rest = module.partition(".")
        if top in ("tools", "tests"):
            wrong.append(f"{module}: the product never imports its tooling or tests")
        elif top == "chatio" and rest:
            target = rest.split(".")[0]
            if target != part and LEVELS[target] >= LEVELS[part] and (part, target) not in EXCEPTIONS:
                wrong.append(f"{module}: {part} (level {LEVELS[part]}) imports {target} ({LEVELS[target]})")
        elif top in FORBIDDEN.get(part, ()):
            wrong.append(f"{module}: {part} must not import {top}")
    assert not wrong, "\n".join(wrong)


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in sorted(CHATIO.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.relative_to(ROOT)}: its docstring must say what it may import"


def test_tests_mirror_the_packages() -> None:
    packages = {init.parent.name for init in CHATIO.glob("*/__init__.py")}
    missing = {name for name in packages if not (ROOT / "tests" / name).is_dir()}
    assert not missing, f"no tests/<package> folder for {sorted(missing)}"


def test_the_wheel_ships_the_server_and_the_load_tester_only() -> None:
    import tomllib

    import setuptools

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = setuptools.find_packages(str(ROOT), include=found["include"])
    assert "chatio.loadtest" in packages and "chatio.transport" in packages
    assert all(name == "chatio" or name.startswith("chatio.") for name in packages), packages

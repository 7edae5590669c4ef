"""The API reference (docs/reference/*.md, rendered by mkdocstrings) covers every public name.

A public name is one in the `__all__` of the package or of a public submodule
(no leading underscore). It has a reference entry when a `::: path` directive
renders it: the path itself, a module directive listing it under `members:` (or
a module directive without a list: all of the module's public names), or, for a
class or function re-exported from a private module, a directive on its
defining path. `mkdocs build --strict` (`nox -s docs`) checks that every
directive resolves; this test checks that none is missing, without needing the
docs toolchain.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import smspartner_async

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
#: Public modules documented elsewhere than the API reference, and why.
ELSEWHERE = {
    # The console script's entry point: docs/cli.md is its reference, checked against
    # --help by tests/test_docs_cli.py.
    "smspartner_async.cli": "docs/cli.md",
}
_DIRECTIVE = re.compile(r"^::: *([\w.]+) *$")
#: Private names a signature may show, and why: a sentinel for "not given", explained
#: in the method's docstring, is not a value the reader needs to know.
SENTINELS = {"_UNSET": "with_options: an option not given keeps the client's value"}


def public_modules() -> list[ModuleType]:
    modules = [smspartner_async]
    for info in pkgutil.walk_packages(smspartner_async.__path__, "smspartner_async."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name.startswith(tuple(ELSEWHERE)):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as exc:  # an extra not installed: that module's test is elsewhere
            pytest.skip(f"{info.name} needs {exc.name}")
    return modules


def directives() -> dict[str, list[str] | None]:
    """`::: path` -> the members it lists under `options: members:`, or None for all."""
    found: dict[str, list[str] | None] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = _DIRECTIVE.match(line)
            if match is None:
                continue
            members: list[str] | None = None
            for following in lines[number + 1 :]:
                if following and not following.startswith(" "):
                    break
                stripped = following.strip()
                if stripped == "members:":
                    members = []
                elif members is not None and stripped.startswith("- "):
                    members.append(stripped[2:].strip())
            found[match.group(1)] = members
    return found


def resolve(path: str) -> Any:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise LookupError(path)


def documented() -> tuple[set[str], list[Any]]:
    """Every documented path, and the objects behind them (for classes and functions)."""
    paths: set[str] = set()
    for path, members in directives().items():
        obj = resolve(path)
        if inspect.ismodule(obj):
            names = members if members is not None else list(getattr(obj, "__all__", []))
            paths.update(f"{path}.{name}" for name in names)
        else:
            paths.add(path)
    objects = [resolve(path) for path in paths]
    return paths, [o for o in objects if inspect.isclass(o) or inspect.isfunction(o)]


def public_names() -> list[str]:
    return [
        f"{module.__name__}.{name}"
        for module in public_modules()
        for name in getattr(module, "__all__", [])
    ]


def test_every_public_name_has_a_reference_entry() -> None:
    paths, objects = documented()
    missing = []
    for name in public_names():
        if name in paths:
            continue
        obj = resolve(name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and any(obj is o for o in objects):
            continue
        missing.append(name)
    assert not missing, f"no API reference entry (docs/reference/*.md) for {missing}"


def _private_defaults(source: str) -> list[str]:
    """Defaults in function signatures that name a private (`_x`) global."""
    found = []
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_") and node.name != "__init__":
            continue
        defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        for default in defaults:
            for name in ast.walk(default):
                if (
                    isinstance(name, ast.Name)
                    and name.id.startswith("_")
                    and name.id not in SENTINELS
                ):
                    found.append(f"{node.name}(... = {name.id})")
    return found


def test_no_rendered_signature_shows_a_private_default() -> None:
    _, objects = documented()
    shown = {}
    for obj in objects:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            continue
        if private := _private_defaults(source):
            shown[obj.__qualname__] = private
    assert not shown, f"signatures rendered with private defaults: {shown}"


def _documented_attributes(cls: type) -> set[str]:
    """Class-level annotated names followed by a docstring (what mkdocstrings renders)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    names = set()
    for node, after in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            names.add(node.target.id)
    return names


def test_the_sandbox_s_attributes_have_types_and_text() -> None:
    from smspartner_async.sandbox import Sandbox

    public = {name for name in vars(Sandbox()) if not name.startswith("_")}
    assert public <= _documented_attributes(Sandbox)

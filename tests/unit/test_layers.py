"""The import layers, the tree's promise: each package imports only the layers below it.

    errors, polling, config     settings, secrets, versions, layout, names, paths, endpoints
    clients, daemon             clients made from the endpoints; how a daemon starts and stops
    pipeline                    bronze → silver → query: the data path
    apps                        web, monitor, jobs: read the pipeline's output
    launcher                    the native stack, its services and supervisors, compose
    demo, chaos, benchmark      drive a stack
    cli                         the `lakehouse` command

So the data plane and the apps never reach for the launcher: they get `Endpoints` from the
settings and secrets, and run the same under `lakehouse up`, docker compose, or any stack.
Within a layer, no module reaches itself through others (no import cycle, type-only imports
included): each module can be read, and tested, after the ones it uses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "lakehouse"
RANK = {
    "errors": 0, "polling": 0, "config": 0, "clients": 1, "daemon": 1, "pipeline": 2, "apps": 3,
    "launcher": 4, "demo": 5, "chaos": 5, "benchmark": 5, "cli": 6,
}  # fmt: skip


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(path: Path) -> set[str]:
    """Every `lakehouse.…` module `path` imports, at any depth (type-checking and function-level
    imports included), as dotted names."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "lakehouse"}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = [*base, *(node.module.split(".") if node.module else [])]
            if mod and mod[0] == "lakehouse":
                out |= {".".join([*mod, a.name]) for a in node.names} | {".".join(mod)}
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lakehouse" else None


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _layer(".".join(_module(path)))
        if src not in RANK:
            continue
        for name in sorted(imported(path)):
            dst = _layer(name)
            if dst in RANK and RANK[dst] > RANK[src]:
                found.append(f"{path.relative_to(PACKAGE.parent)} ({src}) imports {name} ({dst})")
    return found


def modules() -> dict[str, Path]:
    return {".".join(_module(p)): p for p in sorted(PACKAGE.rglob("*.py"))}


def graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a name imported from a module counts as the
    module)."""
    known = modules()
    out: dict[str, set[str]] = {}
    for name, path in known.items():
        deps = set()
        for imp in imported(path):
            parts = imp.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                deps.add(".".join(parts))
        out[name] = deps
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `g`: each set of modules that reach one another, sorted."""
    reach: dict[str, set[str]] = {}
    for start, deps in g.items():
        seen: set[str] = set()
        todo = list(deps)
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(g.get(m, ()))
        reach[start] = seen
    found = {tuple(sorted(m for m in g if m in reach[s] and s in reach[m])) for s in g if s in reach[s]}
    return sorted(list(c) for c in found)


def test_each_layer_imports_only_the_layers_below_it() -> None:
    assert violations() == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle_and_only_its_members() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_check_sees_absolute_relative_and_nested_imports() -> None:
    names = imported(PACKAGE / "pipeline" / "silver" / "commands.py")
    assert "lakehouse.config.endpoints.Endpoints" in names  # type-checking only
    assert any(n.startswith("lakehouse.pipeline.silver.checkpoint_guard") for n in names)  # inside a function
    relative = imported(PACKAGE / "apps" / "monitor" / "__main__.py")
    assert "lakehouse.apps.monitor.probes" in relative or "lakehouse.apps.monitor" in relative


def test_every_module_is_in_a_layer() -> None:
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    assert top - {"__init__", "__pycache__", "py", "static"} <= set(RANK), top - set(RANK)


@pytest.mark.parametrize("layer", sorted(RANK))
def test_every_layer_named_exists(layer: str) -> None:
    assert (PACKAGE / layer).is_dir() or (PACKAGE / f"{layer}.py").is_file()

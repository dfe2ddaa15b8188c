"""The import layers: the data plane (bronze, silver, query) and the apps (monitor, web, jobs) and
the configuration under them never import the launcher (the native stack, its services, its
supervisor, compose, the CLI). They get endpoints from the settings and secrets (`Endpoints`),
so they run the same under `lakehouse up`, docker compose, or against any stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "lakehouse"
#: the launcher's modules (and what drives it: the CLI, chaos, benchmarks, the demo command)
LAUNCHER = ("stack", "services", "supervisor", "compose", "cli", "scratch", "demo", "chaos", "benchmark")
#: what may not import them: the data plane, the apps, and the configuration they share
BELOW = (
    "bronze", "silver", "query", "monitor", "web", "jobs",
    "settings", "secrets", "versions", "layout", "endpoints", "clients", "errors", "paths",
)  # fmt: skip


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
        if _layer(".".join(_module(path))) not in BELOW:
            continue
        for name in sorted(imported(path)):
            if _layer(name) in LAUNCHER:
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return found


def test_the_data_plane_and_the_apps_do_not_import_the_launcher() -> None:
    assert violations() == []


def test_the_check_sees_relative_absolute_and_nested_imports(tmp_path: Path) -> None:
    mod = PACKAGE / "silver" / "commands.py"
    names = imported(mod)
    assert "lakehouse.endpoints.Endpoints" in names  # `from ..endpoints import Endpoints`, type-checking only
    assert "lakehouse.silver.live" in names  # `from . import live`
    assert any(n.startswith("lakehouse.silver.job") for n in names)  # inside a function


@pytest.mark.parametrize("layer", BELOW)
def test_every_layer_named_exists(layer: str) -> None:
    assert (PACKAGE / layer).is_dir() or (PACKAGE / f"{layer}.py").is_file()

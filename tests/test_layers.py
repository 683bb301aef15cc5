"""The layering of DESIGN.md, checked on every import statement (also those inside functions)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["watchkeeper", "resources", "monitoring_assets", "sensors"]
# What each layer may import from the project (besides itself).
ALLOWED = {
    "watchkeeper": set(),
    "resources": {"watchkeeper"},
    "monitoring_assets": {"resources", "watchkeeper"},
    "sensors": {"monitoring_assets", "resources", "watchkeeper"},
}
PROJECT = set(LAYERS) | {"cli", "definitions"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_layers_below(layer):
    violations = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad = (imported_modules(path) & PROJECT) - ALLOWED[layer] - {layer}
        violations += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(bad)]
    assert not violations, "\n".join(violations)


def test_engine_has_no_dagster_import():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "watchkeeper").rglob("*.py")
                 if {"dagster", "dagster_webserver", "dagster_postgres"} & imported_modules(p)]
    assert offenders == []


def test_only_the_store_knows_its_tables():
    """Everything outside watchkeeper/store reads and writes results, the problem log and the outbox
    through the store's typed methods, so a migration that changes a table changes only the store."""
    sources = [p for layer in [*LAYERS, "cli", "bench"] for p in sorted((ROOT / layer).rglob("*.py"))]
    sources.append(ROOT / "definitions.py")
    store = ROOT / "watchkeeper" / "store"
    offenders = [str(p.relative_to(ROOT)) for p in sources
                 if store not in p.parents and _imports_store_tables(p)]
    assert offenders == []


def _imports_store_tables(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import) and any(a.name.startswith("watchkeeper.store.schema") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("watchkeeper.store.schema"):
                return True
            if node.module == "watchkeeper.store" and any(a.name == "schema" for a in node.names):
                return True
    return False

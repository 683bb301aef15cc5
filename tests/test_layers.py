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

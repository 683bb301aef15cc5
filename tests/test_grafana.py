"""The Grafana dashboards and provisioning in deploy/grafana/.

No Grafana server can be installed here, so the dashboards are checked against the JSON
Schemas generated from the TypeScript types of npm @grafana/schema 11.6.0 (the Grafana
version grafana-foundation-sdk 11.6.0 builds for; tools/grafana_schema.sh regenerates
them): the dashboard model, and each panel's options and field config by panel type.
Their PromQL is run against a real Prometheus in test_prometheus.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
SCHEMA = GRAFANA / "schema"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def validator(path: Path) -> jsonschema.Draft7Validator:
    schema = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(schema: jsonschema.Draft7Validator, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in schema.iter_errors(document)]


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_schemas_come_from_the_pinned_grafana_schema_package():
    assert json.loads((SCHEMA / "SOURCE.json").read_text())["version"] == "11.6.0"
    assert DASHBOARDS and [p.name for p in DASHBOARDS] == ["watchkeeper-fleet.json", "watchkeeper-model.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_validates_against_grafanas_dashboard_schema(path):
    assert errors(validator(SCHEMA / "dashboard.schema.json"), json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_validates_against_its_panel_type_schema(path):
    problems = []
    for panel in panels(json.loads(path.read_text())):
        kind = panel["type"].replace("-", "")
        options = SCHEMA / "panels" / f"{kind}.options.schema.json"
        assert options.exists(), f"no schema for panel type {panel['type']}: add it to tools/grafana_schema.sh"
        problems += [f"{panel['title']} options {e}" for e in errors(validator(options), panel.get("options", {}))]
        field_config = SCHEMA / "panels" / f"{kind}.fieldconfig.schema.json"
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if field_config.exists() and custom is not None:
            problems += [f"{panel['title']} fieldConfig {e}" for e in errors(validator(field_config), custom)]
    assert problems == []


def test_the_schema_rejects_what_grafana_would_not_load():
    """The validation has teeth: a panel without a type, an options typo and a bad enum all fail."""
    dashboard = json.loads(DASHBOARDS[0].read_text())
    broken = {**dashboard, "panels": [{"title": "no type"}]}
    assert errors(validator(SCHEMA / "dashboard.schema.json"), broken)
    stat = next(p for p in panels(dashboard) if p["type"] == "stat")
    stat_options = validator(SCHEMA / "panels" / "stat.options.schema.json")
    assert errors(stat_options, {**stat["options"], "colourMode": "value"})
    assert errors(stat_options, {**stat["options"], "graphMode": "sparkline"})


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_consistent(path):
    """Unique panel ids and titles, every query on the provisioned data source variable, no empty query."""
    dashboard = json.loads(path.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels(dashboard)]
    assert len(titles) == len(set(titles))
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ref_ids = [[t["refId"] for t in p["targets"]] for p in panels(dashboard)]
    assert all(len(r) == len(set(r)) for r in ref_ids)


def test_committed_dashboards_are_what_the_builder_makes():
    done = subprocess.run([sys.executable, "tools/build_dashboards.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_provisioning_loads_the_dashboards_folder_and_a_prometheus_data_source():
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "watchkeeper.yml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).name == "dashboards"
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["url"].startswith("http")
    assert source["isDefault"] is True   # the dashboards' $datasource variable starts on the default source
    for path in DASHBOARDS:
        variables = json.loads(path.read_text())["templating"]["list"]
        assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= variables[0].items()

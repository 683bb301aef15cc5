"""The CI/CD examples in deploy/ci cannot rot: the generic script, and every command of the GitHub Actions
workflow and the GitLab pipeline, run here against a small generated setup (real MLflow on sqlite, real
files), and their exit codes decide as documented: 0 pass, 1 the check failed, 2 bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from test_retraining import (  # noqa: F401  (empty_mlflow_db and tracking_uri are fixtures)
    FEATURES, MODEL, empty_mlflow_db, make_frame, register_champion, tracking_uri,
)
from watchkeeper.registry import Registry
from watchkeeper.retraining.challenger import register_challenger
from watchkeeper.retraining.trainers import SklearnPipelineTrainer

CI = ROOT / "deploy" / "ci"
SCRIPT = CI / "watchkeeper-ci.sh"
INSTALL = "Install Watchkeeper"   # the examples' install step: here the package is already installed


@pytest.fixture
def setup(tmp_path, tracking_uri) -> dict[str, str]:
    """A champion (v1), a candidate trained after a concept drift (v2, better), another like v1 (v3),
    the candidate's training data, recent production inputs and labelled evaluation data."""
    register_champion(tracking_uri, tmp_path / "artifacts", make_frame(1000, 1), make_frame(400, 2))
    registry = Registry(tracking_uri)
    champion = registry.champions()[MODEL]
    for train in (make_frame(1000, 3, concept="after"), make_frame(1000, 4)):
        register_challenger(registry, champion, SklearnPipelineTrainer().fit(train, FEATURES, "target", "binary"),
                            train, make_frame(300, 5), "retrain", {})
    data = tmp_path / "data"
    data.mkdir()
    make_frame(1000, 3, concept="after")[FEATURES].to_parquet(data / "candidate_train.parquet")   # its inputs
    make_frame(800, 7)[FEATURES].to_parquet(data / "production_recent.parquet")
    make_frame(1500, 50, concept="after").to_parquet(data / "evaluation.parquet")
    (tmp_path / "deploy").mkdir()
    for policy in ("monitoring.yaml", "alerting.yaml"):
        shutil.copy(ROOT / "deploy" / policy, tmp_path / "deploy" / policy)
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MLFLOW_TRACKING_URI": tracking_uri, "MODEL": MODEL, "CANDIDATE_VERSION": "2", "GATE_MARGIN": "0.05",
            "WATCHKEEPER_MONITORING": "deploy/monitoring.yaml", "WATCHKEEPER_ALERTING": "deploy/alerting.yaml",
            "CANDIDATE_TRAINING_DATA": str(data / "candidate_train.parquet"),
            "PRODUCTION_DATA": str(data / "production_recent.parquet"),
            "EVALUATION_DATA": str(data / "evaluation.parquet")}


def run(command: list[str] | str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    args = ["bash", "-eo", "pipefail", "-c", command] if isinstance(command, str) else command
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def github_commands() -> list[str]:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"]
            if "run" in step and step.get("name") != INSTALL]


def gitlab_commands() -> list[str]:
    pipeline = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    jobs = [job for job in pipeline.values() if isinstance(job, dict) and "script" in job]
    return [line for job in sorted(jobs, key=lambda j: pipeline["stages"].index(j["stage"])) for line in job["script"]]


def test_the_generic_script_passes_a_good_candidate_and_writes_its_reports(setup, tmp_path):
    done = run([str(SCRIPT), "all"], setup, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "monitoring.yaml: ok" in done.stdout
    assert json.loads((tmp_path / "watchkeeper-reports" / "drift.json").read_text())["dataset_drift"] is False
    gate = json.loads((tmp_path / "watchkeeper-reports" / "gate.json").read_text())
    assert gate["promote"] is True and gate["candidate"] == "2"


def test_each_check_fails_the_pipeline_with_its_own_exit_code(setup, tmp_path):
    drifted = make_frame(800, 8)[FEATURES]
    drifted["x0"] += 1.5
    drifted.to_parquet(tmp_path / "drifted.parquet")
    assert run([str(SCRIPT), "drift"], {**setup, "PRODUCTION_DATA": str(tmp_path / "drifted.parquet")},
               tmp_path).returncode == 1
    not_better = run([str(SCRIPT), "gate"], {**setup, "CANDIDATE_VERSION": "3"}, tmp_path)
    assert not_better.returncode == 1 and '"promote": false' in (tmp_path / "watchkeeper-reports" / "gate.json").read_text()
    (tmp_path / "deploy" / "monitoring.yaml").write_text("defaults: [not, a, mapping]\n")
    (tmp_path / "watchkeeper-reports" / "drift.json").unlink()
    broken = run([str(SCRIPT), "all"], setup, tmp_path)
    assert broken.returncode == 2 and "watchkeeper config validate: error:" in broken.stderr
    assert not (tmp_path / "watchkeeper-reports" / "drift.json").exists()     # `all` stopped at the first failure


@pytest.mark.parametrize("commands", [github_commands, gitlab_commands], ids=["github-actions", "gitlab-ci"])
def test_every_step_of_the_pipeline_runs_as_written(setup, tmp_path, commands):
    steps = commands()
    assert sum("watchkeeper config validate" in s for s in steps) == 1
    assert sum("--fail-on-drift" in s for s in steps) == 1 and sum("watchkeeper gate" in s for s in steps) == 1
    for step in steps:
        done = run(step, setup, tmp_path)
        assert done.returncode == 0, f"{step!r} exited {done.returncode}: {done.stderr[-1500:]}"
    assert (tmp_path / "reports" / "gate.json").exists() and (tmp_path / "reports" / "drift.json").exists()
    assert json.loads((tmp_path / "reports" / "gate.json").read_text())["promote"] is True

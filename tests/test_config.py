"""The monitoring configuration and `watchkeeper config validate`."""

from __future__ import annotations

import pytest

from cli.main import main
from conftest import ROOT
from watchkeeper.config import ConfigError, load_config


def test_checked_in_configuration_is_valid(capsys):
    assert main(["config", "validate"]) == 0
    assert capsys.readouterr().out.count(": ok") == 2


def test_model_overrides_merge_on_the_defaults(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("defaults:\n  drift: {alpha: 0.02}\n  retraining: {after_windows: 4}\n"
                    "models:\n  churn:\n    drift: {numeric_floor: 0.2}\n    segments: [region]\n")
    config = load_config(path)
    churn, other = config.for_model("churn"), config.for_model("fraud")
    assert (churn.drift.alpha, churn.drift.numeric_floor, churn.segments) == (0.02, 0.2, ("region",))
    assert (other.drift.alpha, other.drift.numeric_floor, other.segments) == (0.02, 0.1, ())
    assert churn.retraining.after_windows == 4 and churn.retraining.policy.approval == "auto"
    assert load_config(ROOT / "deploy" / "monitoring.yaml").for_model("x").retraining.policy.approval == "ticket"


@pytest.mark.parametrize("text, message", [
    ("defaults:\n  drift: {alpah: 0.1}\n", "unknown drift config keys: alpah"),
    ("defaults:\n  health: {tolerance: {accuracy: 0.05}, minimum: 3}\n", "unknown keys minimum"),
    ("models:\n  churn:\n    segments: region\n", "models.churn.segments: expected a list"),
    ("defaults:\n  retraining: {approval: maybe}\n", "approval must be"),
    ("defaults: [1, 2]\n", "expected a mapping"),
])
def test_bad_configuration_is_one_line_naming_the_path(tmp_path, capsys, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    assert main(["config", "validate", "--monitoring", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message.split(":")[0] in err

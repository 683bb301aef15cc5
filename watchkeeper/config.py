"""The monitoring configuration: defaults for every model, overrides per model.

One YAML file (deploy/monitoring.yaml) so a team reviews thresholds like code. It is
validated on load: an unknown key or a bad value is a one-line error naming its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.decision import DriftConfig
from watchkeeper.health import HealthPolicy
from watchkeeper.retraining.cycle import PolicyError, RetrainPolicy


class ConfigError(ValueError):
    """The monitoring configuration is invalid; the message names the offending path."""


@dataclass(frozen=True)
class RetrainSettings:
    """When to retrain (a problem persisting `after_windows` windows) and how (the gate's policy)."""

    after_windows: int = 3
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)


@dataclass(frozen=True)
class ModelConfig:
    drift: DriftConfig = field(default_factory=DriftConfig)
    health: HealthPolicy = field(default_factory=HealthPolicy)
    segments: tuple[str, ...] = ()     # categorical columns whose metrics are reported separately
    retraining: RetrainSettings = field(default_factory=RetrainSettings)


@dataclass(frozen=True)
class MonitoringConfig:
    defaults: ModelConfig = field(default_factory=ModelConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)

    def for_model(self, model: str) -> ModelConfig:
        return self.models.get(model, self.defaults)


def load_config(path: str | Path | None) -> MonitoringConfig:
    """Read and validate a monitoring config; no path means the documented defaults."""
    if not path:
        return MonitoringConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})".replace("\n", " ")) from error
    _only(raw, {"defaults", "models"}, str(path))
    defaults_raw = raw.get("defaults") or {}
    defaults = _model(defaults_raw, ModelConfig(), f"{path}: defaults")
    models = {name: _model(_merge(defaults_raw, spec or {}), ModelConfig(), f"{path}: models.{name}")
              for name, spec in (raw.get("models") or {}).items()}
    return MonitoringConfig(defaults, models)


def _model(raw: dict, base: ModelConfig, where: str) -> ModelConfig:
    _only(raw, {f.name for f in fields(ModelConfig)}, where)
    try:
        drift = DriftConfig.from_dict(raw.get("drift")) if "drift" in raw else base.drift
        health = _health(raw.get("health"), where) if "health" in raw else base.health
        retraining = _retraining(raw.get("retraining"), where) if "retraining" in raw else base.retraining
    except (ValueError, TypeError, PolicyError) as error:
        raise ConfigError(f"{where}: {error}") from error
    segments = raw.get("segments", list(base.segments))
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise ConfigError(f"{where}.segments: expected a list of column names")
    return ModelConfig(drift, health, tuple(segments), retraining)


def _retraining(raw: dict | None, where: str) -> RetrainSettings:
    raw = dict(raw or {})
    _only(raw, {"after_windows"} | {f.name for f in fields(RetrainPolicy)}, f"{where}.retraining")
    after = int(raw.pop("after_windows", RetrainSettings.after_windows))
    if after < 1:
        raise ConfigError(f"{where}.retraining.after_windows: must be at least 1, got {after}")
    return RetrainSettings(after, RetrainPolicy(**raw))


def _health(raw: dict | None, where: str) -> HealthPolicy:
    raw = raw or {}
    _only(raw, {f.name for f in fields(HealthPolicy)}, f"{where}.health")
    default = HealthPolicy()
    return HealthPolicy(tolerance={**default.tolerance, **(raw.get("tolerance") or {})},
                        min_labelled=int(raw.get("min_labelled", default.min_labelled)))


def _merge(defaults: dict, override: dict) -> dict:
    """A model's section on top of the defaults, one level deep (drift keys merge)."""
    merged = dict(defaults)
    for key, value in override.items():
        merged[key] = {**defaults.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def _only(raw: Any, allowed: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")

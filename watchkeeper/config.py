"""The monitoring configuration: defaults for every model, overrides per model.

One YAML file (deploy/monitoring.yaml) so a team reviews thresholds like code. It is
validated on load: an unknown key, a value of the wrong type (a quoted number, a bool for a
number), a value out of its range (a negative tolerance would make every window degraded)
or a file that is not UTF-8 is a one-line error naming its path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from watchkeeper.decision import DriftConfig
from watchkeeper.health import HealthPolicy
from watchkeeper.performance import HIGHER_IS_BETTER
from watchkeeper.privacy.retention import RetentionPolicy
from watchkeeper.privacy.sensitive import MIN_COUNT, SensitiveColumns
from watchkeeper.retraining.cycle import PolicyError, RetrainPolicy
from watchkeeper.yaml_file import YamlFileError, load_yaml, shown

BOUNDED_EFFECTS = ("jensen_shannon", "hellinger")   # distances in [0, 1]; PSI and Wasserstein are unbounded
MAX_RELATIVE_TOLERANCE = 10.0                       # an error metric 11 times the reference is not "tolerated"


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
    privacy: Privacy = field(default_factory=lambda: Privacy())


@dataclass(frozen=True)
class Privacy:
    """A model's sensitive columns (watchkeeper.privacy.sensitive) and the column naming the person a
    row is about, which `watchkeeper erase --subject` deletes by."""

    sensitive: SensitiveColumns = field(default_factory=SensitiveColumns)
    subject_column: str | None = None


@dataclass(frozen=True)
class MonitoringConfig:
    defaults: ModelConfig = field(default_factory=ModelConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def for_model(self, model: str) -> ModelConfig:
        return self.models.get(model, self.defaults)


def load_config(path: str | Path | None) -> MonitoringConfig:
    """Read and validate a monitoring config; no path means the documented defaults."""
    if not path:
        return MonitoringConfig()
    try:
        raw = load_yaml(path)
    except YamlFileError as error:
        raise ConfigError(str(error)) from None
    raw = {} if raw is None else raw
    _only(raw, {"defaults", "models", "retention"}, str(path))
    defaults_raw = _section(raw.get("defaults"), f"{path}: defaults")
    defaults = _model(defaults_raw, ModelConfig(), f"{path}: defaults")
    models_raw = _section(raw.get("models"), f"{path}: models")
    models = {}
    for name, spec in models_raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: models: a model name must be a non-empty string, got {shown(name)} "
                              "(quote it)")
        where = f"{path}: models.{name}"
        models[name] = _model(_merge(defaults_raw, _section(spec, where)), ModelConfig(), where)
    return MonitoringConfig(defaults, models, _retention(raw.get("retention"), f"{path}: retention"))


def load_drift_config(path: str | Path) -> DriftConfig:
    """A drift config file on its own (`watchkeeper drift --config`): the keys of a model's `drift` section."""
    try:
        raw = load_yaml(path)
    except YamlFileError as error:
        raise ConfigError(str(error)) from None
    return drift_config({} if raw is None else raw, str(path))


def drift_config(raw: Any, where: str) -> DriftConfig:
    """A DriftConfig from a mapping, every value checked for its type and range (one line naming its path)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {shown(raw)}")
    defaults = DriftConfig()
    for key, value in raw.items():
        if value is not None and hasattr(defaults, str(key)):
            _typed(value, getattr(defaults, key), f"{where}.{key}")
    try:
        config = DriftConfig.from_dict(raw)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    floors = {"numeric_floor": config.numeric_effect, "categorical_floor": config.categorical_effect}
    for key, metric in floors.items():
        if metric in BOUNDED_EFFECTS and getattr(config, key) > 1:
            raise ConfigError(f"{where}.{key}: {metric} lies in [0, 1], so a floor of "
                              f"{getattr(config, key)} would never let a feature drift")
    if config.missing_rate_floor > 1:
        raise ConfigError(f"{where}.missing_rate_floor: a change of rate is at most 1, got {config.missing_rate_floor}")
    return config


def _model(raw: dict, base: ModelConfig, where: str) -> ModelConfig:
    _only(raw, {f.name for f in fields(ModelConfig)}, where)
    drift = drift_config(raw["drift"] or {}, f"{where}.drift") if "drift" in raw else base.drift
    health = _health(raw.get("health"), where) if "health" in raw else base.health
    retraining = _retraining(raw.get("retraining"), where) if "retraining" in raw else base.retraining
    segments = raw.get("segments", list(base.segments))
    if not isinstance(segments, list) or not all(isinstance(s, str) and s.strip() for s in segments):
        raise ConfigError(f"{where}.segments: expected a list of column names")
    if len(set(segments)) < len(segments):
        raise ConfigError(f"{where}.segments: a column is listed twice")
    privacy = _privacy(raw.get("privacy"), where) if "privacy" in raw else base.privacy
    return ModelConfig(drift, health, tuple(segments), retraining, privacy)


def _privacy(raw: Any, where: str) -> Privacy:
    where = f"{where}.privacy"
    raw = _section(raw, where)
    _only(raw, {"sensitive", "min_count", "subject_column"}, where)
    sensitive = raw.get("sensitive") or []
    if not isinstance(sensitive, list) or not all(isinstance(s, str) and s.strip() for s in sensitive):
        raise ConfigError(f"{where}.sensitive: expected a list of column names")
    min_count = _typed(raw.get("min_count", MIN_COUNT), 1, f"{where}.min_count")
    if min_count < 2:
        raise ConfigError(f"{where}.min_count: a group of fewer than 2 rows is one person; got {min_count}")
    subject = raw.get("subject_column")
    if subject is not None and (not isinstance(subject, str) or not subject.strip()):
        raise ConfigError(f"{where}.subject_column: expected a column name")
    return Privacy(SensitiveColumns(frozenset(sensitive), min_count), subject)


def _retention(raw: Any, where: str) -> RetentionPolicy:
    """Days each class of data is kept (null: for ever)."""
    raw = _section(raw, where)
    defaults = RetentionPolicy()
    _only(raw, {f.name for f in fields(RetentionPolicy)}, where)
    days = {}
    for key, value in raw.items():
        days[key] = _typed(value, 1, f"{where}.{key}", optional=True)
        if days[key] is not None and days[key] < 1:
            raise ConfigError(f"{where}.{key}: keep data at least 1 day (null keeps it for ever), got {value}")
    return RetentionPolicy(**{**{f.name: getattr(defaults, f.name) for f in fields(RetentionPolicy)}, **days})


def _retraining(raw: Any, where: str) -> RetrainSettings:
    where = f"{where}.retraining"
    raw = dict(_section(raw, where))
    _only(raw, {"after_windows"} | {f.name for f in fields(RetrainPolicy)}, where)
    after = _typed(raw.pop("after_windows", RetrainSettings.after_windows), 1, f"{where}.after_windows")
    if after < 1:
        raise ConfigError(f"{where}.after_windows: must be at least 1, got {after}")
    defaults = RetrainPolicy()
    for key, value in raw.items():
        _typed(value, getattr(defaults, key), f"{where}.{key}", optional=key == "metric")
    if raw.get("metric") is not None and raw["metric"] not in HIGHER_IS_BETTER:
        raise ConfigError(f"{where}.metric: unknown metric {raw['metric']!r} (one of {', '.join(HIGHER_IS_BETTER)})")
    if not -1 < raw.get("margin", 0.0) < 1:
        raise ConfigError(f"{where}.margin: must lie strictly between -1 and 1 (absolute for scores, relative "
                          f"for errors), got {raw['margin']}")
    try:
        return RetrainSettings(after, RetrainPolicy(**raw))
    except PolicyError as error:
        raise ConfigError(f"{where}: {error}") from None


def _health(raw: Any, where: str) -> HealthPolicy:
    where = f"{where}.health"
    raw = _section(raw, where)
    _only(raw, {f.name for f in fields(HealthPolicy)}, where)
    default = HealthPolicy()
    tolerance = _section(raw.get("tolerance"), f"{where}.tolerance")
    for metric, value in tolerance.items():
        path = f"{where}.tolerance.{metric}"
        if metric not in HIGHER_IS_BETTER:
            raise ConfigError(f"{path}: unknown metric (one of {', '.join(HIGHER_IS_BETTER)})")
        limit = 1.0 if HIGHER_IS_BETTER[metric] else MAX_RELATIVE_TOLERANCE
        if not 0 <= _typed(value, 0.0, path) <= limit:
            kind = "absolute, in [0, 1]" if HIGHER_IS_BETTER[metric] else f"relative, in [0, {MAX_RELATIVE_TOLERANCE:g}]"
            raise ConfigError(f"{path}: a tolerance is {kind}; got {value}")
    min_labelled = _typed(raw.get("min_labelled", default.min_labelled), 1, f"{where}.min_labelled")
    if min_labelled < 1:
        raise ConfigError(f"{where}.min_labelled: must be at least 1, got {min_labelled}")
    return HealthPolicy(tolerance={**default.tolerance, **tolerance}, min_labelled=min_labelled)


def _typed(value: Any, like: Any, where: str, optional: bool = False) -> Any:
    """`value` when it has the type of the default `like` (None: a string), else a ConfigError naming the
    path. An int is a fine float; a bool is not a number; a number must be finite; a quoted number is text."""
    if optional and value is None:
        return value
    if isinstance(like, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(like, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(like, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        expected = "a finite number"
    else:
        kind = str if like is None else type(like)
        ok, expected = isinstance(value, kind), {str: "a string", dict: "a mapping"}.get(kind, kind.__name__)
    if not ok:
        raise ConfigError(f"{where}: expected {expected}, got {shown(value)}")
    return value


def _section(raw: Any, where: str) -> dict:
    """An optional mapping section: absent or empty is {}, anything else must be a mapping."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {shown(raw)}")
    return raw


def _merge(defaults: dict, override: dict) -> dict:
    """A model's section on top of the defaults, one level deep (drift keys merge)."""
    merged = dict(defaults)
    for key, value in override.items():
        merged[key] = {**(defaults.get(key) or {}), **value} if isinstance(value, dict) else value
    return merged


def _only(raw: Any, allowed: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {shown(raw)}")
    unknown = sorted(map(str, set(raw) - allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


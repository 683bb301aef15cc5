"""Generators of malformed inputs: data files, saved profiles and configuration files.

Each generator starts from a valid input and breaks it in one named way, so a corpus is the
product of (what is broken) x (where: reference or current) x (format: Parquet or CSV), and a
new kind of breakage is one more entry here. Every case says what must happen: a one-line
error containing some words, or a documented result checked by a function.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 200


def base_frame(seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Two numeric features and a categorical one: the valid input every breakage starts from."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows),
                         "colour": rng.choice(["red", "green", "blue"], size=rows)})


@dataclass(frozen=True)
class Outcome:
    """An error whose one line contains `words`, or success checked by `check(report or output)`."""

    words: str | None = None
    check: Callable[[dict], None] | None = None

    @property
    def fails(self) -> bool:
        return self.words is not None


def error(words: str) -> Outcome:
    return Outcome(words=words)


def ok(check: Callable[[dict], None] = lambda report: None) -> Outcome:
    return Outcome(check=check)


# ------------------------------------------------------------------------------------------ tables

def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def truncated(frame: pd.DataFrame, path: Path) -> Path:
    write(frame, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def garbage(frame: pd.DataFrame, path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    return path


def empty_file(frame: pd.DataFrame, path: Path) -> Path:
    path.write_bytes(b"")
    return path


def header_only(frame: pd.DataFrame, path: Path) -> Path:
    return write(frame.iloc[:0], path)


def one_row(frame: pd.DataFrame, path: Path) -> Path:
    return write(frame.iloc[:1], path)


def latin1(frame: pd.DataFrame, path: Path) -> Path:
    """A CSV saved in Latin-1 (an accented category); Parquet strings are always UTF-8."""
    changed = frame.assign(colour=frame["colour"].replace("red", "rosé"))
    if path.suffix == ".csv":
        path.write_bytes(changed.to_csv(index=False).encode("latin-1"))
        return path
    return write(changed, path)


def utf8_bom(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())
        return path
    return write(frame, path)


def duplicate_columns(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_arrays([pa.array(frame["x"]), pa.array(frame["y"]), pa.array(frame["colour"])],
                                 names=["x", "x", "colour"])
    if path.suffix == ".csv":
        path.write_text("x,x,colour\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(frame["x"], frame["y"],
                                                                                  frame["colour"])))
        return path
    pq.write_table(table, path)
    return path


def blank_column(frame: pd.DataFrame, path: Path) -> Path:
    return write(frame.rename(columns={"y": " "}), path)


def nested_column(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":     # a CSV cannot nest: the "list" is text, hence a categorical value
        return write(frame.assign(colour=[str([1, 2])] * len(frame)), path)
    table = pa.Table.from_pandas(frame, preserve_index=False).set_column(
        2, "colour", pa.array([[1, 2]] * len(frame)))
    pq.write_table(table, path)
    return path


def text_in_numbers(frame: pd.DataFrame, path: Path) -> Path:
    """Every seventh x is the word "unknown": the column is text (Parquet cannot mix types in one)."""
    return write(frame.assign(x=[str(v) if i % 7 else "unknown" for i, v in enumerate(frame["x"])]), path)


def infinities(frame: pd.DataFrame, path: Path) -> Path:
    """A fifth of x is +-inf: counted as missing (docs/drift.md), so the missing rate moves."""
    x = frame["x"].to_numpy().copy()
    x[::5] = np.inf
    x[1::10] = -np.inf
    return write(frame.assign(x=x), path)


def huge_values(frame: pd.DataFrame, path: Path) -> Path:
    """x scaled to about 1e300: finite, near the top of float64."""
    return write(frame.assign(x=frame["x"] * 1e300), path)


def all_missing(frame: pd.DataFrame, path: Path) -> Path:
    return write(frame.assign(y=np.nan), path)


def missing_column(frame: pd.DataFrame, path: Path) -> Path:
    return write(frame.drop(columns="y"), path)


def odd_names(frame: pd.DataFrame, path: Path) -> Path:
    """Names that broke rendering before: mathtext, HTML attributes, markdown, a newline."""
    return write(frame.rename(columns={"x": ODD_NAMES[0], "y": ODD_NAMES[1], "colour": ODD_NAMES[2]}), path)


ODD_NAMES = ["usd_$_to_$_eur", '"><img src=x onerror=alert(1)>(', "a|b\n*c* [l](http://x) <!channel> \\"]


def wrong_suffix(frame: pd.DataFrame, path: Path) -> Path:
    target = path.with_suffix(".txt")
    target.write_text(frame.to_csv(index=False))
    return target


def a_folder(frame: pd.DataFrame, path: Path) -> Path:
    target = path.with_suffix(".parquet")
    target.mkdir()
    return target


def nowhere(frame: pd.DataFrame, path: Path) -> Path:
    return path.with_name("does-not-exist" + path.suffix)


# ------------------------------------------------------------------------------------------ profiles

def saved_profile(frame: pd.DataFrame) -> dict:
    from watchkeeper.profile import fit_profile

    return fit_profile(frame).to_dict()


def _feature(profile: dict, name: str) -> dict:
    return next(f for f in profile["features"] if f["name"] == name)


def _set(name: str, key: str, value) -> Callable[[dict], dict]:
    def change(profile: dict) -> dict:
        _feature(profile, name)[key] = value
        return profile
    return change


def _reverse(name: str, key: str) -> Callable[[dict], dict]:
    def change(profile: dict) -> dict:
        _feature(profile, name)[key] = _feature(profile, name)[key][::-1]
        return profile
    return change


def _drop_feature_key(name: str, key: str) -> Callable[[dict], dict]:
    def change(profile: dict) -> dict:
        del _feature(profile, name)[key]
        return profile
    return change


def _top(key: str, value) -> Callable[[dict], dict]:
    def change(profile: dict) -> dict:
        profile[key] = value
        return profile
    return change


def _swap_kinds(profile: dict) -> dict:
    _feature(profile, "x")["kind"], _feature(profile, "colour")["kind"] = "categorical", "numeric"
    return profile


def _duplicate_feature(profile: dict) -> dict:
    profile["features"].append(dict(profile["features"][0]))
    return profile


def _unsorted_exact(profile: dict) -> dict:
    values = _feature(profile, "x")["exact_values"]
    values[0], values[-1] = values[-1], values[0]
    return profile


def _bin_counts_sum(profile: dict) -> dict:
    _feature(profile, "x")["bin_counts"][0] += 1
    return profile


# (name, how the saved profile is broken, words its one-line error must contain)
PROFILE_BREAKAGES: list[tuple[str, Callable[[dict], dict], str]] = [
    ("negative_count", _set("x", "count", -1), "feature 'x': Expected `int` >= 0"),
    ("negative_missing", _set("colour", "missing", -3), "feature 'colour': Expected `int` >= 0"),
    ("bool_count", _set("x", "count", True), "feature 'x': Expected `int`, got `bool`"),
    ("text_count", _set("x", "count", "200"), "Expected `int`, got `str`"),
    ("reversed_quantiles", _reverse("x", "quantiles"), "quantiles must never decrease"),
    ("nan_quantile", lambda p: _set("x", "quantiles", [float("nan")] + _feature(p, "x")["quantiles"][1:])(p),
     "quantiles[0] is nan"),
    ("short_quantiles", lambda p: _set("x", "quantiles", _feature(p, "x")["quantiles"][:10])(p), "10 quantiles"),
    ("infinite_mean", _set("x", "mean", float("inf")), "mean is inf"),
    ("negative_m2", _set("y", "m2", -1.0), "m2 (the sum of squared deviations) is negative"),
    ("min_above_max", _set("x", "min", 1e9), "min 1000000000.0 is above max"),
    ("mean_outside", _set("x", "mean", -1e9), "lies outside [min, max]"),
    ("reversed_bin_edges", _reverse("x", "bin_edges"), "bin_edges must increase strictly"),
    ("bin_counts_length", lambda p: _set("x", "bin_counts", _feature(p, "x")["bin_counts"][:-1])(p),
     "bin_counts for"),
    ("bin_counts_sum", _bin_counts_sum, "bin_counts add up to"),
    ("negative_category", _set("colour", "categories", {"red": -5, "green": 100, "blue": 105}),
     "feature 'colour': Expected `int` >= 0"),
    ("category_sum", _set("colour", "categories", {"red": 1}), "category counts add up to 1"),
    ("categories_on_numeric", _set("x", "categories", {"a": 200}), "a numeric feature has categories"),
    ("numbers_on_categorical", _set("colour", "mean", 0.5), "a categorical feature has numeric fields (mean)"),
    ("swapped_kinds", _swap_kinds, "numeric fields"),
    ("unknown_kind", _set("x", "kind", "ordinal"), "Invalid enum value 'ordinal'"),
    ("numeric_without_quantiles", _drop_feature_key("x", "quantiles"), "quantiles is missing"),
    ("unsorted_exact_values", _unsorted_exact, "exact_values must never decrease"),
    ("short_exact_values", lambda p: _set("x", "exact_values", _feature(p, "x")["exact_values"][:-1])(p),
     "199 exact_values for count = 200"),
    ("quantile_beyond_max", lambda p: _set("x", "quantiles", _feature(p, "x")["quantiles"][:-1] + [1e9])(p),
     "quantile 1000000000.0 lies outside [min, max]"),
    ("bin_edge_below_min", lambda p: _set("x", "bin_edges", [-1e9] + _feature(p, "x")["bin_edges"][1:])(p),
     "bin edge -1000000000.0 lies outside [min, max]"),
    ("too_many_categories", _set("colour", "categories", {f"c{i}": 2 if i < 100 else 0 for i in range(100)}),
     "100 categories, more than the 50 kept plus the tail"),
    ("duplicate_feature", _duplicate_feature, "appears twice"),
    ("blank_name", _set("y", "name", "   "), "blank name"),
    ("empty_name", _set("y", "name", ""), "Expected `str` of length >= 1"),
    ("no_features", _top("features", []), "the profile has no features"),
    ("n_rows_inconsistent", _top("n_rows", 10), "count + missing = 200, but the profile has n_rows = 10"),
    ("negative_n_rows", _top("n_rows", -1), "Expected `int` >= 0"),
    ("missing_n_rows", lambda p: {k: v for k, v in p.items() if k != "n_rows"}, "missing required field `n_rows`"),
    ("newer_version", _top("schema_version", 99), "newer than this Watchkeeper"),
    ("unknown_key", _top("colour_map", {}), "unknown field `colour_map`"),
    ("metadata_not_text", _top("metadata", {"version": 3}), "Expected `str`, got `int`"),
    ("features_not_a_list", _top("features", {"x": 1}), "Expected `array`, got `object`"),
]


def profile_file(frame: pd.DataFrame, path: Path, breakage: Callable[[dict], dict]) -> Path:
    path.write_text(json.dumps(breakage(saved_profile(frame))))
    return path


# ------------------------------------------------------------------------------------------ configuration

# (name, monitoring.yaml text, words of the one-line error naming the path)
MONITORING_BREAKAGES = [
    ("negative_tolerance", "defaults:\n  health: {tolerance: {accuracy: -0.1}}\n",
     "defaults.health.tolerance.accuracy: a tolerance is absolute, in [0, 1]"),
    ("huge_relative_tolerance", "defaults:\n  health: {tolerance: {mae: 50}}\n", "relative, in [0, 10]"),
    ("unknown_metric", "defaults:\n  health: {tolerance: {acuracy: 0.1}}\n", "acuracy: unknown metric"),
    ("quoted_number", "defaults:\n  drift: {alpha: '0.05'}\n", "drift.alpha: expected a finite number, got str"),
    ("bool_for_number", "defaults:\n  drift: {numeric_floor: true}\n", "expected a finite number, got bool"),
    ("nan_threshold", "defaults:\n  drift: {numeric_floor: .nan}\n", "expected a finite number, got float nan"),
    ("fraction_of_a_count", "defaults:\n  drift: {min_drifted_features: 2.5}\n", "expected a whole number"),
    ("alpha_out_of_range", "defaults:\n  drift: {alpha: 1.5}\n", "alpha must be in (0, 1)"),
    ("floor_never_reached", "defaults:\n  drift: {categorical_floor: 2}\n", "would never let a feature drift"),
    ("missing_floor_above_one", "defaults:\n  drift: {missing_rate_floor: 1.5}\n", "missing_rate_floor"),
    ("negative_min_labelled", "defaults:\n  health: {min_labelled: -5}\n", "min_labelled: must be at least 1"),
    ("margin_out_of_range", "defaults:\n  retraining: {margin: 3}\n", "margin: must lie strictly between -1 and 1"),
    ("confidence_out_of_range", "defaults:\n  retraining: {confidence: 1.2}\n", "confidence and holdout_fraction"),
    ("bool_after_windows", "defaults:\n  retraining: {after_windows: true}\n", "after_windows: expected a whole number"),
    ("zero_after_windows", "defaults:\n  retraining: {after_windows: 0}\n", "after_windows: must be at least 1"),
    ("text_for_bool", "defaults:\n  retraining: {recalibrate_first: 'yes'}\n", "expected true or false"),
    ("unknown_key", "defaults:\n  drift: {alpah: 0.1}\n", "unknown drift config keys: alpah"),
    ("segments_not_a_list", "models:\n  churn:\n    segments: region\n", "models.churn.segments"),
    ("segment_twice", "models:\n  churn:\n    segments: [a, a]\n", "listed twice"),
    ("models_a_list", "models: [churn]\n", "models: expected a mapping, got list"),
    ("model_name_a_number", "models:\n  123: {}\n", "a model name must be a non-empty string, got int 123"),
    ("document_a_list", "- 1\n- 2\n", "expected a mapping, got list"),
    ("repeated_key", "defaults:\n  drift: {alpha: 0.01}\ndefaults:\n  drift: {alpha: 0.5}\n",
     "line 3: key 'defaults' appears twice"),
    ("not_yaml", "defaults: [1, 2\n", "not valid YAML"),
    ("python_tag", "defaults: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
]

ALERTING_VALID = """version: 1
channels:
  outbox: {type: outbox}
routes:
  - to: [outbox]
"""


def alerting(channel: str = "", route_cooldown: str | None = None, escalation: str = "") -> str:
    """An alerting policy with one extra channel, route cooldown or escalation block."""
    text = "version: 1\nchannels:\n  outbox: {type: outbox}\n" + channel + "routes:\n  - to: [outbox]\n"
    if route_cooldown is not None:
        text += f"    cooldown: {route_cooldown}\n"
    return text + escalation


ALERTING_BREAKAGES = [
    ("slack_over_http", alerting("  chat: {type: slack, channel_id: C1, base_url: 'http://slack.example.com/api/'}\n"),
     "channels.chat: Slack channel: base_url must be https"),
    ("jira_over_http", alerting("  t: {type: jira, server: 'http://jira.example.com', project: OPS}\n"),
     "Jira channel: server must be https"),
    ("servicenow_over_http", alerting("  sn: {type: servicenow, instance_url: 'http://x.service-now.com'}\n"),
     "ServiceNow channel: instance_url must be https"),
    ("loopback_opt_out_elsewhere", alerting("  t: {type: jira, server: 'http://jira.example.com', project: OPS, "
                                            "allow_http_loopback: true}\n"), "loopback host only"),
    ("not_a_url", alerting("  t: {type: jira, server: 'jira', project: OPS}\n"), "must be an https:// URL"),
    ("bad_port", alerting("  t: {type: jira, server: 'https://jira:99999', project: OPS}\n"), "is not a valid URL"),
    ("jql_quote_in_project", alerting("  t: {type: jira, server: 'https://j.example.com', project: 'OPS\" OR 1=1'}\n"),
     "project must be a project key"),
    ("absurd_cooldown", alerting(route_cooldown="99999999999999999999w"), "is longer than 366 days"),
    ("zero_cooldown", alerting(route_cooldown="0m"), "is zero"),
    ("bad_duration", alerting(route_cooldown="soon"), "bad duration 'soon'"),
    ("number_duration", alerting(route_cooldown="30"), "bad duration 30"),
    ("text_timeout", alerting("  t: {type: teams, timeout: '5'}\n"), "timeout must be a positive number"),
    ("huge_timeout", alerting("  t: {type: teams, timeout: 100000}\n"), "at most 300"),
    ("text_flag", alerting("  t: {type: teams, retry_ambiguous: 'no'}\n"), "retry_ambiguous must be true or false"),
    ("negative_lookback", alerting("  s: {type: slack, channel_id: C1, lookback_days: -1}\n"), "lookback_days"),
    ("unknown_type", alerting("  p: {type: pager}\n"), "unknown channel type 'pager'"),
    ("unknown_setting", alerting("  t: {type: teams, colour: red}\n"), "unexpected keyword argument 'colour'"),
    ("zero_escalation", alerting(escalation="escalation: {after_windows: 0, to: [outbox]}\n"),
     "expected a whole number of windows >= 1"),
    ("absurd_escalation", alerting(escalation="escalation: {unacknowledged_for: 5000d, to: [outbox]}\n"),
     "longer than 366 days"),
    ("repeated_channel", "version: 1\nchannels:\n  outbox: {type: outbox}\n  outbox: {type: outbox}\n"
                         "routes:\n  - to: [outbox]\n", "key 'outbox' appears twice"),
    ("version_2", ALERTING_VALID.replace("version: 1", "version: 2"), "unsupported version 2"),
]

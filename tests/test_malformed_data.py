"""Malformed outside data given to the parsers that read it: inference rows, labels, saved profiles, and
the answers of Slack, Jira, ServiceNow and Teams. Each ends in its one documented error type (one line)
or a documented result; none raises anything else. The command-line side is tests/test_malformed_cli.py."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import malformed as m
from standins import JiraStandin, ServiceNowStandin, SlackStandin, Standin, TeamsStandin
from watchkeeper.alerting.channels import JiraChannel, ServiceNowChannel, SlackChannel, TeamsChannel
from watchkeeper.alerting.record import AlertRecord, ChannelError
from watchkeeper.inference_log import INFERENCE, LABELS, WINDOWS, InferenceInputError, InferenceLog, window_problems
from watchkeeper.profile import ProfileError, ReferenceProfile, fit_profile
from watchkeeper.profile_schema import check_profile

pytestmark = pytest.mark.timeout(120)
DAY = "2026-11-08"


# ------------------------------------------------------------------------------------- inference rows

def window(rows: int = 20) -> pd.DataFrame:
    """A valid day of predictions."""
    return pd.DataFrame({"timestamp": pd.date_range(f"{DAY} 08:00", periods=rows, freq="min", tz="UTC"),
                         "prediction_id": [f"p{i}" for i in range(rows)], "prediction": np.arange(rows) % 2,
                         "x": np.linspace(0, 1, rows)})


def with_column(name: str, values) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.assign(**{name: values(frame) if callable(values) else values})


def renamed(mapping: dict) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.rename(columns=mapping)


def duplicated_x(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame[["x"]]], axis=1)


# (breakage, the problems window_problems must report: every one, in order)
WINDOW_CASES = [
    ("valid", lambda f: f, []),
    ("no_rows", lambda f: f.iloc[:0], []),
    ("missing_feature", lambda f: f.drop(columns="x"), ["missing columns: x"]),
    ("no_columns", lambda f: pd.DataFrame(index=f.index), ["missing columns: timestamp, prediction_id, prediction, x"]),
    ("duplicate_ids", with_column("prediction_id", lambda f: ["p0", "p0", "p1"] + list(f["prediction_id"][3:])),
     ["1 duplicate prediction ids"]),
    ("missing_ids", with_column("prediction_id", lambda f: [None, None] + list(f["prediction_id"][2:])),
     ["2 rows without a prediction id"]),
    ("missing_timestamps", with_column("timestamp", lambda f: f["timestamp"].where(f.index > 2)),
     ["3 rows without a timestamp"]),
    ("unreadable_timestamps", with_column("timestamp", lambda f: ["yesterday"] * 5 + [f"{DAY}T10:00:00Z"] * 15),
     ["5 rows with a timestamp that is not a time"]),
    ("other_day", with_column("timestamp", lambda f: f["timestamp"] + pd.Timedelta(days=1)),
     ["20 rows with a timestamp outside 2026-11-08"]),
    ("epoch_numbers", with_column("timestamp", lambda f: np.arange(len(f))), ["20 rows with a timestamp outside"]),
    ("timestamps_as_lists", with_column("timestamp", lambda f: [[1, 2]] * len(f)),
     ["20 rows with a timestamp that is not a time"]),
    ("mixed_offsets", with_column("timestamp", lambda f: [f"{DAY}T10:00:00+02:00", f"{DAY}T10:00:00Z"] * 10), []),
    ("duplicate_columns", duplicated_x, ["duplicate columns: 'x'"]),
    ("blank_column", renamed({"prediction": ""}), ["column 3 has a blank name", "missing columns: prediction"]),
]


@pytest.mark.parametrize("name, breakage, problems", WINDOW_CASES, ids=[c[0] for c in WINDOW_CASES])
def test_window_problems_are_counted_never_raised(name, breakage, problems):
    found = window_problems(breakage(window()), ["x"], DAY)
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found)), found
    assert all("\n" not in problem for problem in found)


def write_raw(path, breakage: str, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if breakage == "nested":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).append_column(
            "extra", pa.array([[1]] * len(frame))), path)
    else:
        getattr(m, breakage)(frame, path)


def labels(rows: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": [f"p{i}" for i in range(rows)], "label": np.arange(rows) % 2})


# (stream, breakage, reader call, words of the InferenceInputError)
READER_CASES = [
    (INFERENCE, "truncated", lambda log: log.read_predictions("m", DAY), "cannot be read as Parquet"),
    (INFERENCE, "garbage", lambda log: log.read_predictions("m", DAY), "cannot be read as Parquet"),
    (INFERENCE, "empty_file", lambda log: log.read_predictions("m", DAY), "cannot be read as Parquet"),
    (INFERENCE, "duplicate_columns", lambda log: log.read_predictions("m", DAY), "duplicate columns: 'x'"),
    (INFERENCE, "nested", lambda log: log.read_predictions("m", DAY), "nested columns are not features: 'extra'"),
    (WINDOWS, "truncated", lambda log: log.read_window("m", DAY), "cannot be read as Parquet"),
    (LABELS, "truncated", lambda log: log.read_labels("m"), "cannot be read as Parquet"),
    (LABELS, "truncated", lambda log: log.read_arrivals("m", DAY), "cannot be read as Parquet"),
    (LABELS, "missing_label", lambda log: log.read_labels("m"), "no column 'label' (columns: prediction_id)"),
    (LABELS, "missing_id", lambda log: log.read_arrivals("m", DAY), "no column 'prediction_id' (columns: label)"),
]


@pytest.mark.parametrize("stream, breakage, read, words", READER_CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(READER_CASES)])
def test_a_bad_drop_file_is_one_inference_input_error(tmp_path, stream, breakage, read, words):
    log = InferenceLog(tmp_path)
    path = tmp_path / stream / "m" / f"{DAY}.parquet"
    frame = labels() if stream == LABELS else window()
    if breakage == "missing_label":
        write_raw(path, "write", frame.drop(columns="label"))
    elif breakage == "missing_id":
        write_raw(path, "write", frame.drop(columns="prediction_id"))
    elif breakage == "duplicate_columns":
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_arrays([pa.array(frame[c]) for c in frame.columns] + [pa.array([1.0] * 20)],
                                            names=[*frame.columns, "x"]), path)
    else:
        write_raw(path, breakage, frame)
    with pytest.raises(InferenceInputError) as raised:
        read(log)
    assert str(path) in str(raised.value) and words in str(raised.value) and "\n" not in str(raised.value)


def test_readers_return_rows_of_good_files(tmp_path):
    log = InferenceLog(tmp_path)
    write_raw(tmp_path / INFERENCE / "m" / f"{DAY}.parquet", "write", window())
    write_raw(tmp_path / LABELS / "m" / f"{DAY}.parquet", "write", labels().assign(arrived_at=DAY))
    assert len(log.read_predictions("m", DAY)) == 20 and list(log.read_labels("m").columns) == ["prediction_id", "label"]
    [arrival], predictions = log.scan(LABELS, DAY, DAY, DAY).files, log.scan(INFERENCE, DAY, DAY, DAY).files
    assert log.label_days(arrival, predictions, 3).days == [DAY] and log.read_window("m", DAY) is None


@pytest.mark.parametrize("broken", [LABELS, INFERENCE])
def test_label_days_reports_a_file_it_cannot_read_instead_of_raising(tmp_path, broken):
    """The inference sensor maps label files to windows with it: one bad file must not stop a tick."""
    log = InferenceLog(tmp_path)
    write_raw(tmp_path / INFERENCE / "m" / f"{DAY}.parquet", "truncated" if broken == INFERENCE else "write", window())
    write_raw(tmp_path / LABELS / "m" / f"{DAY}.parquet", "truncated" if broken == LABELS else "write", labels())
    [arrival], predictions = log.scan(LABELS, DAY, DAY, DAY).files, log.scan(INFERENCE, DAY, DAY, DAY).files
    found = log.label_days(arrival, predictions, 3)
    [unreadable] = found.unreadable
    assert found.days == [] and unreadable.name == f"{broken}/m/{DAY}.parquet"
    assert unreadable.reason.startswith("its prediction ids cannot be read: cannot be read as Parquet (")


# ---------------------------------------------------------------------------------------- profiles

@pytest.mark.parametrize("name, breakage, words", m.PROFILE_BREAKAGES, ids=[c[0] for c in m.PROFILE_BREAKAGES])
def test_a_broken_profile_is_one_profile_error(name, breakage, words):
    with pytest.raises(ProfileError) as raised:
        ReferenceProfile.from_dict(breakage(m.saved_profile(m.base_frame(1))))
    assert words in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("data", [None, [], "profile", 3, {"features": None, "n_rows": 1}])
def test_a_profile_that_is_not_an_object_is_one_profile_error(data):
    with pytest.raises(ProfileError):
        ReferenceProfile.from_dict(data)


def test_profiles_of_the_current_release_load_and_fitted_profiles_keep_every_invariant():
    """Schema version 2 (and 1, without schema_version and exact_values) as this release writes them."""
    profile = fit_profile(m.base_frame(1, rows=2000).assign(empty=np.nan, flag=[True, False] * 1000))
    check_profile(profile)
    saved = profile.to_dict()
    assert ReferenceProfile.from_dict(saved) == profile
    legacy = {k: v for k, v in saved.items() if k != "schema_version"}
    legacy["features"] = [{k: v for k, v in f.items() if k != "exact_values"} for f in saved["features"]]
    assert ReferenceProfile.from_dict(legacy).features["x"].quantiles == profile.features["x"].quantiles


def test_a_profile_checked_in_at_schema_version_2_still_loads():
    """A profile as watchkeeper 0.1.0 wrote it (tests/data): the on-disk format is a contract."""
    profile = ReferenceProfile.from_json(os.path.join(os.path.dirname(__file__), "data", "profile_v2.json"))
    assert profile.n_rows == 300 and list(profile.features) == ["x", "colour"]


# -------------------------------------------------------------------------------- channel answers

ALERT = AlertRecord("m:1:data_drift", "m", "1", DAY, "warning", "data_drift", "m v1: data drift (warning)",
                    "binary model m v1, window 2026-11-08: 1 of 3 features drifted")
SECRETS = {"slack": "xoxb-malformed-9f", "jira": "jira-malformed-41", "servicenow": "sn-malformed-07"}


@contextmanager
def channel(kind: str, monkeypatch) -> Iterator[tuple[Standin, object]]:
    if kind == "slack":
        with SlackStandin(token=SECRETS["slack"]) as standin:
            monkeypatch.setenv("SLACK_BOT_TOKEN", SECRETS["slack"])
            yield standin, SlackChannel("C0ALERTS", base_url=standin.api_url, timeout=2, allow_http_loopback=True)
    elif kind == "jira":
        with JiraStandin(token=SECRETS["jira"], user="bot@example.com") as standin:
            monkeypatch.setenv("JIRA_API_TOKEN", SECRETS["jira"])
            yield standin, JiraChannel(standin.url, "OPS", user="bot@example.com", timeout=2, allow_http_loopback=True)
    elif kind == "servicenow":
        with ServiceNowStandin(password=SECRETS["servicenow"]) as standin:
            monkeypatch.setenv("SERVICENOW_USER", standin.user)
            monkeypatch.setenv("SERVICENOW_PASSWORD", SECRETS["servicenow"])
            yield standin, ServiceNowChannel(standin.url, timeout=2, allow_http_loopback=True)
    else:
        with TeamsStandin() as standin:
            monkeypatch.setenv("TEAMS_WEBHOOK_URL", standin.webhook_url)
            yield standin, TeamsChannel(timeout=2, allow_http_loopback=True)


HTML = "<html><body>maintenance</body></html>"
# (channel, the request answered, the answer, words of the ChannelError, permanent?)
ANSWER_CASES = [
    ("slack", "conversations.history", HTML, "Slack: unexpected answer (not JSON)", False),
    ("slack", "conversations.history", {"ok": True, "messages": "none"}, "no message list", False),
    ("slack", "chat.postMessage", {"ok": True, "channel": "C0ALERTS"}, "chat.postMessage (no ts)", False),
    ("slack", "chat.postMessage", {"ok": False, "error": 42}, "Slack: 42", True),
    ("jira", "serverInfo", HTML, "Jira: unexpected answer (not JSON)", False),
    ("jira", "serverInfo", {"deploymentType": "Server"}, "unexpected answer to serverInfo (no 'versionNumbers')", False),
    ("jira", "search", {"total": 0}, "unexpected answer to search (no issue list)", False),
    ("jira", "search", {"issues": [{"fields": {"description": 5}}]}, "an issue without a key", False),
    ("servicenow", "incident", {"result": {"sys_id": "x"}}, "record query (no list)", False),
    ("servicenow", "incident", {"result": [{"number": "INC0000001"}]}, "an incident without sys_id or number", False),
    ("servicenow", "incident", {"result": [{"number": "INC1", "sys_id": "../../sys_user/admin"}]},
     "a sys_id that is not 32 hex digits", False),
    ("servicenow", "incident", HTML, "HTTP 200 without a Table API result", False),
    ("teams", None, ("status", 429, ["not", "an", "object"]), "Teams: rate limited (HTTP 429)", False),
    ("teams", None, ("status", 400, {"error": {"code": "Bad\nForged: line"}}), "Teams: HTTP 400: Bad Forged: line", True),
]


@pytest.mark.parametrize("kind, path, answer, words, permanent", ANSWER_CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(ANSWER_CASES)])
def test_a_malformed_answer_is_one_channel_error(monkeypatch, kind, path, answer, words, permanent):
    with channel(kind, monkeypatch) as (standin, sender):
        if isinstance(answer, tuple):
            standin.answer_next(answer[2], status=answer[1], path=path)
        else:
            standin.answer_next(answer, path=path)
        with pytest.raises(ChannelError) as raised:
            sender.send(ALERT)
    text = str(raised.value)
    assert words in text and "\n" not in text and raised.value.permanent == permanent, text
    assert not any(secret in text for secret in SECRETS.values())
    basic = base64.b64encode(f"bot@example.com:{SECRETS['jira']}".encode()).decode()
    assert basic not in text


def test_slack_skips_history_messages_of_another_shape_and_posts(monkeypatch):
    """Foreign or damaged metadata in the channel's history is not ours: skipped, and the alert is posted."""
    odd = [{"metadata": "text"}, {"ts": 5, "metadata": {"event_type": "watchkeeper_alert"}},
           {"ts": "1.2", "metadata": {"event_type": "watchkeeper_alert", "event_payload": ["m:1:data_drift"]}}]
    with channel("slack", monkeypatch) as (standin, sender):
        standin.answer_next({"ok": True, "messages": odd, "response_metadata": {"next_cursor": 7}},
                            path="conversations.history")
        delivery = sender.send(ALERT)
        assert delivery.action == "created" and len(standin.messages) == 1

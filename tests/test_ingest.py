"""Stream ingestion without a broker: event checks and their reasons, the durable write that
stores each prediction id once and rolls forward a part a crash left unrenamed, the inference
log reading a day written in parts, the Kafka adapter's shape, and the command's one-line errors."""

from __future__ import annotations

import json
import struct
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from cli.main import main
from test_encryption import kms  # noqa: F401  (fixture)
from watchkeeper.inference_log import INFERENCE, LABELS, InferenceInputError, InferenceLog, files_digest
from watchkeeper.ingest.events import EventChecker, Message, ModelSchema
from watchkeeper.ingest.messages import Batch
from watchkeeper.ingest.sources.kafka_topic import KafkaSource, consumer_config, offsets_to_commit
from watchkeeper.ingest.sources.redis_stream import RedisSource, _batch
from watchkeeper.ingest.writer import LogWriter
from watchkeeper.profile import fit_profile
from watchkeeper.reference import ModelReference
from watchkeeper.security.envelope import EncryptionError
from watchkeeper.security.kms import KMS_DIR_ENV
from watchkeeper.store import MonitoringStore
from watchkeeper.store.ingest_rows import DedupeIndexError

DAY = "2026-12-03"


def reference() -> ModelReference:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=500), "plan": rng.choice(["a", "b"], 500),
                         "code": rng.integers(0, 3, 500)})
    return ModelReference("churn", "1", "binary", ["x", "plan", "code"], fit_profile(data), {}, [0, 1])


def event(pid: str, **changes) -> bytes:
    body = {"type": "prediction", "model": "churn", "prediction_id": pid, "timestamp": f"{DAY}T10:00:00Z",
            "prediction": 1, "features": {"x": 0.5, "plan": "a", "code": 2}, "proba": {"0": 0.3, "1": 0.7}}
    return json.dumps({**body, **changes}).encode()


@pytest.fixture
def checker() -> EventChecker:
    return EventChecker({"churn": ModelSchema.of(reference())})


def messages(*payloads: bytes) -> list[Message]:
    return [Message(str(i), p) for i, p in enumerate(payloads)]


def test_each_malformed_event_is_a_dead_letter_with_its_own_reason_and_the_rest_are_rows(checker):
    checked = checker.check(messages(
        event("ok-1"),
        b"{not json",
        json.dumps({"type": "prediction", "model": "ghost", "prediction_id": "g"}).encode(),
        event("", ),
        event("m", features={"x": 1.0, "plan": "a"}),
        event("e", features={"x": 1.0, "plan": "a", "code": 1, "salary": 3}),
        event("t", features={"x": "high", "plan": "a", "code": 1}),
        event("c", features={"x": 1.0, "plan": 7, "code": 1}),
        event("k", features={"x": 1.0, "plan": "a", "code": 1.5}),
        event("p", prediction=3),
        event("s", timestamp="yesterday"),
        event("q", proba=None),
        event("r", proba={"0": 0.3, "yes": 0.7}),
        event("ok-2", features={"x": None, "plan": "b", "code": 0}),
        json.dumps({"type": "label", "model": "churn", "prediction_id": "ok-1", "label": "yes"}).encode(),
        json.dumps({"type": "label", "model": "churn", "prediction_id": "ok-1", "label": 0}).encode(),
    ))
    reasons = {m: r for m, r, _ in checked.dead}
    assert reasons["1"].startswith("not JSON")
    assert "unknown model 'ghost'" in reasons["2"]
    assert "prediction_id" in reasons["3"]
    assert reasons["4"] == "missing features: code"
    assert reasons["5"] == "features the model does not read: salary"
    assert reasons["6"] == "feature 'x': must be a number"
    assert reasons["7"] == "feature 'plan': must be a string category"
    assert reasons["8"] == "feature 'code': must be an integer code"
    assert "prediction '3' is not one of the classes 0, 1" in reasons["9"]
    assert reasons["10"] == "timestamp is not an ISO 8601 time"
    assert reasons["11"] == "proba is required for a classifier (a number per class)"
    assert reasons["12"].startswith("proba must map each class (0, 1)")
    assert "label 'yes' is not one of the classes" in reasons["14"]
    assert len(reasons) == 13
    rows = checked.rows[("churn", INFERENCE)]
    assert rows["prediction_id"].tolist() == ["ok-1", "ok-2"] and np.isnan(rows["x"].iloc[1])
    assert checked.rows[("churn", LABELS)]["label"].tolist() == [0]


def test_the_columnar_path_accepts_and_rejects_exactly_what_the_event_by_event_checks_do(checker):
    """A batch that reads as one table is checked by column; each event it cannot pass is handed
    to the event-by-event checks, so rows, order and reasons are the same either way."""
    label = {"type": "label", "model": "churn"}
    payloads = [event(f"ok-{i}", prediction=i % 2, features={"x": i / 3, "plan": "ab"[i % 2], "code": i % 3})
                for i in range(50)]
    payloads[5:5] = [event("m", features={"x": 1.0, "plan": "a"}), event("n", features={"x": None, "plan": "b", "code": 0}),
                     event("e", features={"x": 1.0, "plan": "a", "code": 1, "salary": 3}),
                     event("p", prediction=3), event("s", timestamp="yesterday"), event("", ),
                     event("r", proba={"0": 0.3, "1": 1.7}), event("i", prediction_id="x" * 201),
                     json.dumps({**label, "prediction_id": "ok-1", "label": 1}).encode(),
                     json.dumps({**label, "prediction_id": "ok-2", "label": 5}).encode(),
                     json.dumps({**label, "prediction_id": "ok-3"}).encode(),
                     json.dumps({"type": "guess", "model": "churn", "prediction_id": "g"}).encode(),
                     json.dumps({"type": "prediction", "model": "ghost", "prediction_id": "g"}).encode()]
    payloads.append(json.dumps({**label, "prediction_id": "ok-4", "label": 0}).encode())
    batch = messages(*payloads)
    from watchkeeper.ingest.columnar import fast_rows

    _, rest = fast_rows(checker.schemas, batch)
    assert 0 < len(rest) <= 13          # the valid events went the columnar way
    fast, slow = checker.check(batch), checker.check([*batch, Message("bad", b"{not json")])   # one bad line: all slow
    assert sorted(fast.dead) == sorted(d for d in slow.dead if d[0] != "bad")
    assert fast.rows.keys() == slow.rows.keys()
    for key, frame in fast.rows.items():
        pd.testing.assert_frame_equal(frame, slow.rows[key])
    assert fast.rows[("churn", INFERENCE)]["prediction_id"].tolist()[:7] == ["ok-0", "ok-1", "ok-2", "ok-3", "ok-4", "n",
                                                                              "ok-5"]
    assert fast.rows[("churn", LABELS)]["prediction_id"].tolist() == ["ok-1", "ok-4"]


def test_a_redis_read_becomes_a_batch_of_columns_checked_and_acknowledged_as_its_messages(checker):
    """XREADGROUP's raw entries become two columns (ids as Redis sent them, payloads); an entry
    deleted from the stream (None) is left out and one whose first field is not `data` still
    gives its `data`; the batch checks exactly as the same messages one by one."""
    raw = [[b"1-0", [b"data", event("a")]], [b"2-0", [b"data", b"{not json"]], [b"3-0", [b"data", event("c")]]]
    batch = _batch(raw)
    assert isinstance(batch, Batch) and batch.ids == [b"1-0", b"2-0", b"3-0"] and len(batch) == 3
    assert batch[1] == Message("2-0", b"{not json") and list(batch[1:]) == [batch[1], batch[2]]
    odd = _batch([[b"1-0", [b"source", b"x", b"data", event("a")]], [b"2-0", None], [b"3-0", [b"data", event("c")]]])
    assert odd.ids == [b"1-0", b"3-0"] and odd.payloads == [event("a"), event("c")]
    as_columns, one_by_one = checker.check(batch), checker.check(list(batch))
    assert as_columns.dead == one_by_one.dead and [d[0] for d in as_columns.dead] == ["2-0"]
    pd.testing.assert_frame_equal(as_columns.rows[("churn", INFERENCE)], one_by_one.rows[("churn", INFERENCE)])

    class Client:
        def xack(self, stream, group, *ids):
            self.acked = (stream, group, ids)

    source = object.__new__(RedisSource)
    source.stream, source.group, source.client = "s", "g", Client()
    source.ack(batch)
    assert source.client.acked == ("s", "g", (b"1-0", b"2-0", b"3-0"))
    source.ack([Message("4-0", b"")])       # messages claimed from a dead consumer come one by one
    assert source.client.acked == ("s", "g", ("4-0",))


@pytest.fixture
def writer(tmp_path) -> LogWriter:
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    store.put_profile("churn", "1", "binary", *reference().to_stored())
    return LogWriter(tmp_path, store, "test://stream")


def test_a_redelivered_batch_is_stored_once_and_the_day_reads_as_one_window(writer, checker, tmp_path):
    first = writer.commit(checker.check(messages(event("a"), event("b"), event("a"))), DAY)
    before = files_digest(InferenceLog(tmp_path).scan(INFERENCE, "2026-11-01", DAY, DAY).files)
    again = writer.commit(checker.check(messages(event("b"), event("c"), b"junk")), DAY)
    assert (first.stored[INFERENCE], first.duplicates) == (2, 1)
    assert (again.stored[INFERENCE], again.duplicates, again.dead) == (1, 1, 1)
    log = InferenceLog(tmp_path)
    assert sorted(log.read_predictions("churn", DAY)["prediction_id"]) == ["a", "b", "c"]
    listing = log.scan(INFERENCE, "2026-11-01", DAY, DAY)
    assert [f.day for f in listing.files] == [DAY] and not listing.skipped
    assert files_digest(listing.files) != before       # a new part is a changed day: the sensor evaluates it again
    assert writer.store.ingest_rows.dead_letters()[0]["payload"] == "junk"


def test_a_label_that_arrives_before_its_prediction_is_fed_once_when_the_prediction_is_stored(writer, checker,
                                                                                            tmp_path):
    from watchkeeper.concept import ERRORS
    from watchkeeper.ingest.live import LiveConcept

    live = LiveConcept(writer.store, tmp_path, {"churn": reference()}, None)
    label = {"type": "label", "model": "churn"}
    early = messages(*(json.dumps({**label, "prediction_id": pid, "label": value}).encode()
                       for pid, value in (("a", 0), ("b", 1))))
    assert writer.commit(checker.check(early), DAY, live).stored[LABELS] == 2
    assert writer.store.stream_day("churn", ERRORS, DAY) is None         # nothing to measure yet
    writer.commit(checker.check(messages(event("a"), event("b"), event("c"))), DAY, live)
    assert writer.store.stream_day("churn", ERRORS, DAY).n_values == 2  # both fed when their predictions came
    writer.commit(checker.check(messages(event("a"), event("b"))), DAY, live)    # redelivered: fed no second time
    assert writer.store.stream_day("churn", ERRORS, DAY).n_values == 2
    late = messages(json.dumps({**label, "prediction_id": "c", "label": 1}).encode())
    writer.commit(checker.check(late), DAY, live)
    assert writer.store.stream_day("churn", ERRORS, DAY).n_values == 3


def test_with_a_kms_parts_and_dead_letters_are_sealed_and_read_back_only_with_the_key(writer, checker, tmp_path,
                                                                                       kms, monkeypatch):
    secret, planted = "PLANTED-77e1-customer", 0.0123456789012345
    writer.commit(checker.check(messages(event(secret, features={"x": planted, "plan": "a", "code": 1}),
                                         event("b"), f'{{"leaked": "{secret}"'.encode())), DAY)
    writer.commit(checker.check(messages(event("c"))), DAY)      # a second part of the same day
    on_disk = [p for p in tmp_path.rglob("*") if p.is_file() and "kms" not in p.parts]
    assert len(list((tmp_path / INFERENCE / "churn" / f"{DAY}.parquet").iterdir())) == 2
    for needle in (secret.encode(), struct.pack("<d", planted), repr(planted).encode()):
        assert [p.name for p in on_disk if needle in p.read_bytes()] == []      # parts and the store's file
    log = InferenceLog(tmp_path)
    day = log.read_predictions("churn", DAY)
    assert sorted(day["prediction_id"]) == sorted([secret, "b", "c"]) and planted in set(day["x"])
    assert secret in writer.store.ingest_rows.dead_letters()[0]["payload"]
    monkeypatch.delenv(KMS_DIR_ENV)
    with pytest.raises(InferenceInputError, match="no key is configured"):
        log.read_predictions("churn", DAY)
    with pytest.raises(EncryptionError, match="no key is configured"):
        writer.store.ingest_rows.dead_letters()


def test_a_committed_part_left_unrenamed_by_a_crash_is_rolled_forward_and_never_written_twice(writer, checker, tmp_path):
    writer.commit(checker.check(messages(event("a"), event("b"))), DAY)
    folder = tmp_path / INFERENCE / "churn" / f"{DAY}.parquet"
    (part,) = folder.glob("part-*.parquet")
    part.rename(folder / f".{part.name}.tmp")          # the state a kill between commit and rename leaves
    assert InferenceLog(tmp_path).read_predictions("churn", DAY) is None   # no part to read: no day yet
    assert writer.commit(checker.check(messages(event("a"), event("b"))), DAY).stored[INFERENCE] == 0
    assert writer.recover() == 1
    assert sorted(InferenceLog(tmp_path).read_predictions("churn", DAY)["prediction_id"]) == ["a", "b"]


def test_the_in_memory_digest_set_answers_as_a_python_set_even_when_digests_share_their_first_64_bits():
    from watchkeeper.store.digest_set import DigestSet

    rng = np.random.default_rng(1)
    keys = rng.integers(0, 2**63, size=(3000, 2), dtype=np.uint64)
    keys[1000:1010, 0] = keys[0, 0]                 # ten keys that differ only in their second word
    index, seen = DigestSet(), set()
    for start in range(0, 2000, 150):               # batches of uneven size: runs are merged as they grow
        index.add(keys[start:start + 150])
        seen.update(map(tuple, keys[start:start + 150].tolist()))
    probes = np.concatenate([keys, keys[:, ::-1]])   # stored ones, unstored ones, and swapped words
    assert index.contains(probes).tolist() == [tuple(k) in seen for k in probes.tolist()]
    assert len(index) == len(seen) == 2100


def test_consumers_share_the_dedupe_index_and_a_restarted_one_rebuilds_it_from_the_store(writer, checker, tmp_path):
    other = LogWriter(tmp_path, MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), "test://stream")
    assert writer.commit(checker.check(messages(event("a"), event("b"))), DAY).stored[INFERENCE] == 2
    assert other.commit(checker.check(messages(event("b"), event("c"))), DAY).stored[INFERENCE] == 1
    assert writer.commit(checker.check(messages(event("c"), event("d"))), DAY).stored[INFERENCE] == 1
    restarted = LogWriter(tmp_path, MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), "test://stream")
    again = restarted.commit(checker.check(messages(*(event(p) for p in "abcde"))), DAY)
    assert (again.stored[INFERENCE], again.duplicates) == (1, 4)
    assert restarted.store.ingest_rows.stored("churn", INFERENCE) == 5
    assert sorted(InferenceLog(tmp_path).read_predictions("churn", DAY)["prediction_id"]) == list("abcde")


def test_consumers_racing_on_the_same_ids_each_claim_an_id_once(store_url):
    """Two consumers (two stores: two processes' memories) claim overlapping batches at the same
    time, on SQLite and on PostgreSQL: every id is new to exactly one of them."""
    from concurrent.futures import ThreadPoolExecutor

    members = [MonitoringStore(store_url).ingest_rows, MonitoringStore(store_url).ingest_rows]

    def consume(member, offset: int) -> list[str]:
        claimed = []
        for start in range(0, 600, 50):     # batches that overlap the other member's
            ids = [f"p{i}" for i in range(start + offset, start + offset + 80)]
            with member.engine.begin() as tx:
                claimed += [i for i, new in zip(ids, member.claim(tx, "churn", INFERENCE, ids)) if new]
        return claimed

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(consume, members, [0, 25])
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(f"p{i}" for i in range(0, 655))
    assert members[0].stored("churn", INFERENCE) == 655


def test_a_batch_that_dies_between_its_claim_and_its_part_claims_nothing(writer, checker, tmp_path, monkeypatch):
    import watchkeeper.ingest.writer as module

    def killed(frame, path):
        raise OSError("killed while writing the part")

    with monkeypatch.context() as patched:
        patched.setattr(module, "_write_synced", killed)
        with pytest.raises(OSError, match="killed"):
            writer.commit(checker.check(messages(event("a"), event("b"))), DAY)
    assert writer.commit(checker.check(messages(event("a"), event("b"))), DAY).stored[INFERENCE] == 2   # redelivered
    restarted = LogWriter(tmp_path, MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}"), "test://stream")
    assert restarted.commit(checker.check(messages(event("a"), event("b"))), DAY).stored[INFERENCE] == 0
    assert sorted(InferenceLog(tmp_path).read_predictions("churn", DAY)["prediction_id"]) == ["a", "b"]


def test_after_a_failed_commit_no_later_batch_is_committed_or_acknowledged(writer, tmp_path):
    """The consumer fetches batch k+1 while k is checked and committed: when k's commit fails, it
    stops there, with k+1 not stored ahead of k and nothing acknowledged (both come again)."""
    from watchkeeper.ingest.consumer import Consumer

    class Listed:
        name = "test://listed"

        def __init__(self, batches: list[list[Message]]) -> None:
            self.batches, self.acked = batches, []

        def fetch(self, max_messages: int, timeout: float) -> list[Message]:
            return self.batches.pop(0) if self.batches else []

        def ack(self, got) -> None:
            self.acked += [m.id for m in got]

        def close(self) -> None: ...

    source = Listed([[Message(f"m-{pid}", event(pid))] for pid in "abc"])
    consumer = Consumer(source, writer.store, tmp_path, log=lambda line: None)
    commit, calls = consumer.writer.commit, []

    def full_disk_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no space left on device")
        return commit(*args, **kwargs)

    consumer.writer.commit = full_disk_once
    with pytest.raises(OSError, match="no space"):
        consumer.run(idle_exit=0.1)
    assert source.acked == [] and len(calls) == 1
    assert InferenceLog(tmp_path).read_predictions("churn", DAY) is None


def test_a_day_written_by_another_writer_as_a_file_is_refused_in_one_line(writer, checker, tmp_path):
    folder = tmp_path / INFERENCE / "churn"
    folder.mkdir(parents=True)
    (folder / f"{DAY}.parquet").write_bytes(b"PAR1")
    with pytest.raises(RuntimeError, match="written by another writer"):
        writer.commit(checker.check(messages(event("a"))), DAY)


def test_the_kafka_adapter_commits_the_offset_after_each_partitions_last_stored_message():
    parts = urlsplit("kafka://broker.example:9093/inference?group=wk")
    config = consumer_config(parts, {"group": "wk"}, "consumer-1")
    assert config["enable.auto.commit"] is False and config["group.id"] == "wk"
    assert config["bootstrap.servers"] == "broker.example:9093" and config["group.instance.id"] == "consumer-1"
    batch = [Message(f"inference:{p}:{o}", b"") for p, o in ((0, 7), (1, 3), (0, 9), (1, 2))]
    assert offsets_to_commit(batch) == [("inference", 0, 10), ("inference", 1, 4)]
    source = KafkaSource(parts, "inference", {"group": "wk"}, None)   # the client builds without a broker
    assert source.name == "kafka://broker.example:9093/inference"
    source.close()


@pytest.mark.parametrize("argv, message", [
    (["--source", "amqp://127.0.0.1/x"], "must start with nats://, redis:// or kafka://"),
    (["--source", "redis://127.0.0.1:6379/0"], "needs ?stream=KEY"),
    (["--source", "nats://127.0.0.1:4222"], "needs a stream"),
])
def test_a_bad_source_is_a_one_line_error(argv, message, tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'monitoring.db'}"
    MonitoringStore(store)
    assert main(["ingest", *argv, "--dir", str(tmp_path), "--store-url", store]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_command_line_default_batch_is_the_consumers():
    """The CLI keeps its own copy (its parser must not import the consumer); the two must not drift apart."""
    from cli import ingest as cli_ingest
    from watchkeeper.ingest import consumer

    assert cli_ingest.DEFAULT_BATCH == consumer.DEFAULT_BATCH


@pytest.mark.parametrize("damage", ["X'00'", "'not digests'"])
def test_a_damaged_dedupe_index_row_stops_the_claim_with_one_line_naming_the_row(tmp_path, damage):
    """A row of the index that is not whole digests (a torn write, a hand edit, text stored in SQLite's
    loosely typed column) is refused: guessing which events are stored could store them twice."""
    store = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    with store.engine.begin() as conn:
        store.ingest_rows.claim(conn, "churn", INFERENCE, ["p-1", "p-2"])
        conn.exec_driver_sql(f"UPDATE ingest_digests SET digests = {damage}")
    with store.engine.begin() as conn, pytest.raises(DedupeIndexError) as refused:
        store.ingest_rows.claim(conn, "churn", INFERENCE, ["p-3"])
    message = str(refused.value)
    assert "\n" not in message and "ingest_digests row 1 of 'churn'" in message and "damaged" in message

"""The monitoring store's tables: one per result kind keyed by model and window, the problem
log, evaluation failures, and the alert outbox.

This module is the schema's one definition for the code; the database's is the Alembic
history in watchkeeper/store/migrations, and tests/test_migrations.py checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

MODEL, VERSION, WINDOW = 200, 50, 10   # column widths: model names, version ids, YYYY-MM-DD


def _result(name: str, *columns: sa.Column, day: str = "window") -> sa.Table:
    """A result table: one row set per (model, window), written by one stage of a window's evaluation."""
    return sa.Table(name, metadata, sa.Column("model", sa.String(MODEL), primary_key=True),
                    sa.Column(day, sa.String(WINDOW), primary_key=True), *columns)


profiles = sa.Table(
    "profiles", metadata,
    sa.Column("model", sa.String(MODEL), primary_key=True),
    sa.Column("version", sa.String(VERSION), primary_key=True),
    sa.Column("task", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("profile_json", sa.Text, nullable=False),
    sa.Column("reference_json", sa.Text, nullable=False),
)

windows = _result(
    "windows",
    sa.Column("version", sa.String(VERSION)),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("problems_json", sa.Text, nullable=False),
    sa.Column("path", sa.Text),
)

drift_reports = _result(
    "drift_reports",
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("dataset_drift", sa.Boolean, nullable=False),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
)

metrics = _result(
    "metrics",
    sa.Column("metric", sa.String(50), primary_key=True),
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("lower", sa.Float),
    sa.Column("upper", sa.Float),
    sa.Column("n_labelled", sa.Integer, nullable=False),
    sa.Column("n_predictions", sa.Integer, nullable=False),
)

segment_metrics = _result(
    "segment_metrics",
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("segments_json", sa.Text, nullable=False),   # [{segment, metric, value, lower, upper}]
)

quality = _result(
    "quality",
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),     # passed | warning | failed
    sa.Column("result_json", sa.Text, nullable=False),      # QualityResult.to_dict()
)

health = _result(
    "health",
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),     # ok | drifted | degraded | no_data | failed
    sa.Column("reasons_json", sa.Text, nullable=False),
)

streams = _result(
    "streams",
    sa.Column("stream", sa.String(30), primary_key=True),   # "errors" | "predictions"
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("n_values", sa.Integer, nullable=False),
    sa.Column("state_json", sa.Text, nullable=False),
    sa.Column("alarms_json", sa.Text, nullable=False),
    sa.Column("source", sa.String(10), nullable=False, server_default="daily"),   # "daily" | "live" (ingest)
    day="day",
)

# Why a model's window could not be evaluated, per stage; a stage that later succeeds for the
# window deletes its row, so what is here is what is still broken.
failures = _result(
    "failures",
    sa.Column("stage", sa.String(20), primary_key=True),
    sa.Column("version", sa.String(VERSION)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
)

# The problem log (watchkeeper/problems.py owns its lifecycle): one row per problem fingerprint.
problems = sa.Table(
    "problems", metadata,
    sa.Column("fingerprint", sa.String(300), primary_key=True),
    sa.Column("model", sa.String(MODEL), nullable=False),
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),      # open | acknowledged | resolved | reopened
    sa.Column("first_window", sa.String(WINDOW), nullable=False),
    sa.Column("last_window", sa.String(WINDOW), nullable=False),
    sa.Column("occurrence", sa.Integer, nullable=False),    # windows in which it was seen
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("payload_json", sa.Text, nullable=False),     # the newest AlertRecord of the problem
    sa.Column("episode", sa.Integer, nullable=False, server_default="1"),   # incidents of the same problem key
    sa.Column("record", sa.String(10), nullable=False, server_default="incident"),   # incident | problem | change
    sa.Column("healthy_windows", sa.Integer, nullable=False, server_default="0"),    # newest windows without it
    sa.Index("ix_problems_model", "model", "version"),
)

# The alerts each window's verdict raised, full record kept: a later re-materialisation of the
# window (a label refresh) replaces them, one that queues nothing new still shows them.
window_alerts = sa.Table(
    "window_alerts", metadata,
    sa.Column("model", sa.String(MODEL), primary_key=True),
    sa.Column("window", sa.String(WINDOW), primary_key=True),
    sa.Column("fingerprint", sa.String(300), primary_key=True),
    sa.Column("record", sa.String(10), nullable=False),
    sa.Column("payload_json", sa.Text, nullable=False),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(300), nullable=False),
    sa.Column("channel", sa.String(100), nullable=False),
    sa.Column("occurrence", sa.Integer, nullable=False),
    sa.Column("payload_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_owner", sa.String(32)),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("external_id", sa.String(300)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("event", sa.String(10), nullable=False, server_default="raised"),   # raised | resolved
    sa.UniqueConstraint("fingerprint", "channel", "occurrence", "event", name="uq_outbox_delivery"),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
)

# A channel that keeps failing is paused for every sender, so an outage costs one request per
# backoff step instead of one per queued row; its rows keep their place in the queue.
channel_pauses = sa.Table(
    "outbox_channel_pauses", metadata,
    sa.Column("channel", sa.String(100), primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
)

# Stream ingestion (watchkeeper/ingest): the dedupe index, the parts each batch committed, and
# the dead letters. A batch's digests, its part and its dead letters commit in one transaction, so
# a redelivered event finds its id's digest here and is stored once. The index is append-only, one
# row per batch, model and kind: consumers read it into memory (watchkeeper.store.digest_set).
ingest_digests = sa.Table(
    "ingest_digests", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),   # commit order within a model
    sa.Column("model", sa.String(MODEL), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),            # "inference" | "labels"
    sa.Column("digests", sa.LargeBinary, nullable=False),        # SHA-256 of each new id, 32 bytes each, never an id
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),   # retention drops old rows (privacy.retention)
    sa.Index("ix_ingest_digests_model", "model", "kind", "seq"),
)

ingest_parts = sa.Table(
    "ingest_parts", metadata,
    sa.Column("path", sa.String(500), primary_key=True),         # the part, inside the drop folder
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
)

dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(300), nullable=False),         # the stream, e.g. nats://host/STREAM
    sa.Column("message_id", sa.String(100), nullable=False),     # its id in the stream (sequence, entry id, offset)
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),               # the event as received (truncated), never parsed again
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("source", "message_id", name="uq_dead_letter_message"),
)

# Every decided verdict, kept: `health` holds the current one of each window, this table every
# version (a re-run adds one), with what it was computed from (watchkeeper/lineage.py).
verdict_versions = sa.Table(
    "verdict_versions", metadata,
    sa.Column("model", sa.String(MODEL), primary_key=True),
    sa.Column("window", sa.String(WINDOW), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),    # 1, 2, ... per model and window
    sa.Column("version", sa.String(VERSION), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reasons_json", sa.Text, nullable=False),
    sa.Column("lineage_json", sa.Text, nullable=False),     # data, profile, model and code versions
    sa.Column("run_id", sa.String(64)),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

# The audit trail (watchkeeper/security/audit.py): append-only, hash-chained. Times are kept as
# the exact text that was hashed; on PostgreSQL the application role may only INSERT and SELECT.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("partition", sa.String(100)),
    sa.Column("details_json", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_action", "action", "subject", "seq"),   # the newest entry of an action, at once
)

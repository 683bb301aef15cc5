"""A Feast repository made on the spot for the demo and the tests: nothing is downloaded.

Local provider, file offline store (one Parquet file per feature view, sealed at rest when a
KMS is configured and named by a `wksealed://` URI, which Feast reads through
watchkeeper.security.sealed_fs), SQLite online store and SQL registry on SQLite. The definitions are applied from Python, so the repository folder
holds no .py file for `feast apply` to execute. One entity (`customer`), one feature view of
daily customer statistics (`customer_stats`: four numeric features) and one feature service
(`churn_features`). From `shift_from` on, `x0` of every customer moves by `shift` standard
deviations: the drift a report names `customer_stats:x0`.

`entity_rows` draws entity rows (customer, time) with a label that follows the features as
they were at that time, the way a team's training labels do.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from watchkeeper.feature_store import EVENT_TIMESTAMP, FeastFeatures, feast_store
from watchkeeper.security.sealed_files import write_parquet
from watchkeeper.security.sealed_fs import sealed_uri

KEY, VIEW, SERVICE = "customer_id", "customer_stats", "churn_features"
FEATURES = ("x0", "x1", "x2", "x3")
CUSTOMERS = 2000   # a day's window draws few repeats of one customer: its rows are near-independent
TTL_DAYS = 2
YAML = """project: watchkeeper_demo
provider: local
registry:
  registry_type: sql
  path: sqlite:///{root}/registry.db
  cache_ttl_seconds: 0
online_store:
  type: sqlite
  path: {root}/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def feature_rows(start: date, days: int, seed: int = 0, shift_from: date | None = None,
                 shift: float = 1.5) -> pd.DataFrame:
    """One row of the four features per customer per day, stamped at the day's midnight."""
    rng = np.random.default_rng(seed)
    stamps = [_midnight(start + timedelta(days=i)) for i in range(days)]
    frame = pd.DataFrame([(c, t) for t in stamps for c in range(CUSTOMERS)], columns=[KEY, EVENT_TIMESTAMP])
    for name in FEATURES:
        frame[name] = rng.normal(size=len(frame))
    if shift_from is not None:
        frame.loc[frame[EVENT_TIMESTAMP] >= _midnight(shift_from), "x0"] += shift
    frame["created"] = frame[EVENT_TIMESTAMP]
    return frame


def write_repo(root: Path, start: date, days: int, seed: int = 0, shift_from: date | None = None) -> FeastFeatures:
    """Write the repository's configuration and data under `root` and apply its definitions."""
    root = Path(root).resolve()
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(YAML.format(root=root), encoding="utf-8")
    write_parquet(feature_rows(start, days, seed, shift_from), root / "data" / f"{VIEW}.parquet")
    apply(root)
    return FeastFeatures(root)


def apply(root: Path, ttl_days: int = TTL_DAYS, description: str = "daily customer statistics") -> None:
    """What `feast apply` does with the repository's definitions; a changed argument changes the view."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    root = Path(root).resolve()
    customer = Entity(name="customer", join_keys=[KEY], value_type=ValueType.INT64)
    source = FileSource(path=sealed_uri(root / "data" / f"{VIEW}.parquet"), timestamp_field=EVENT_TIMESTAMP,
                        created_timestamp_column="created")
    view = FeatureView(name=VIEW, entities=[customer], ttl=timedelta(days=ttl_days), source=source,
                       schema=[Field(name=name, dtype=Float64) for name in FEATURES], description=description)
    feast_store(root).apply([customer, view, FeatureService(name=SERVICE, features=[view])])


def materialize(root: Path, start: date, end: date) -> None:
    """Load the views' values of [start, end) into the online store (`feast materialize`)."""
    feast_store(root).materialize(_midnight(start), _midnight(end))


def entity_rows(start: date, days: int, n: int, seed: int, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """`n` entity rows (customer, event_timestamp) in [start, start + days); with the feature rows,
    also a `target` that follows the features the customer had that day (logistic in x0, x1, x2)."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, days, n)
    stamps = [_midnight(start + timedelta(days=int(d))) + timedelta(seconds=int(s))
              for d, s in zip(day, rng.integers(60, 86_000, n))]
    rows = pd.DataFrame({KEY: rng.integers(0, CUSTOMERS, n), EVENT_TIMESTAMP: pd.to_datetime(stamps, utc=True)})
    if features is None:
        return rows
    asof = rows.assign(day=rows[EVENT_TIMESTAMP].dt.floor("D")).merge(
        features.rename(columns={EVENT_TIMESTAMP: "day"}), on=[KEY, "day"], how="left")
    logit = 2.0 * asof["x0"] - asof["x1"] + 0.5 * asof["x2"]
    return rows.assign(target=(rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype("int64"))

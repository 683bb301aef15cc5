"""Feast as Watchkeeper uses it: training sets, features of logged entity keys, and the registry's state.

A model whose features come from Feast names its feature service on its registered model
(tag `watchkeeper.feast.feature_service`). Then:

- its reference frames (the training run's `reference/*.parquet`) may hold only entity rows:
  the join keys, an `event_timestamp` and the target. The features are the point-in-time
  training set of the feature service for those rows (`FeatureStore.get_historical_features`);
- its production windows may log only entity keys, a timestamp and the prediction: each row's
  features are joined point-in-time as of its timestamp, so a window sees what serving saw;
- features are named as Feast names them, `view:feature`, in the reference profile, the drift
  report and every window, so a report can be read next to the Feast registry.

Feast drops an entity row whose keys have no feature row within the view's TTL. Watchkeeper
keeps every row (rows are never dropped silently): such a row's features are missing, counted
as a problem of the window and by the data-quality checks.

`view_states` is what the Feast sensor compares between ticks: a digest of each feature view's
definition (it changes on `feast apply`) and the end of its newest materialised interval.

Feast is imported only here and only when a repository is used: it costs seconds to import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from watchkeeper.messages import one_line

FEATURE_SERVICE_TAG = "watchkeeper.feast.feature_service"
EVENT_TIMESTAMP = "event_timestamp"   # Feast's name for the time an entity row is asked about
_ROW = "watchkeeper_row_"   # the entity row a joined row answers (Feast reorders rows)


class FeatureStoreError(ValueError):
    """A Feast repository, service or entity frame that cannot be used; one line."""


@dataclass(frozen=True)
class ViewState:
    """What the sensor compares: the definition's digest and the newest materialised time."""

    definition: str
    materialized_from: str | None = None    # the newest materialised interval, ISO times; None before any
    materialized_until: str | None = None

    def to_dict(self) -> dict:
        return {"definition": self.definition, "materialized_from": self.materialized_from,
                "materialized_until": self.materialized_until}


class FeastFeatures:
    """One Feast repository (a folder with feature_store.yaml)."""

    def __init__(self, repo_path: str | Path) -> None:
        self.repo_path = Path(repo_path)

    @cached_property
    def store(self) -> Any:
        if not (self.repo_path / "feature_store.yaml").is_file():
            raise FeatureStoreError(f"{self.repo_path}: no feature_store.yaml (not a Feast repository)")
        return feast_store(self.repo_path)

    def refresh(self) -> None:
        """Read the registry afresh (another process may have applied or materialised since)."""
        self.store.refresh_registry()

    def service(self, name: str) -> Any:
        try:
            return self.store.get_feature_service(name, allow_cache=False)
        except Exception as error:   # Feast raises its own not-found types; any failure is this service's
            raise FeatureStoreError(f"feature service {name!r}: {one_line(error, 200)}") from None

    def features(self, service: str) -> list[str]:
        """The service's features as Feast references them (`view:feature`), in service order."""
        return [f"{p.name_to_use()}:{f.name}" for p in self.service(service).feature_view_projections
                for f in p.features]

    def views(self, service: str) -> list[str]:
        return [p.name for p in self.service(service).feature_view_projections]

    def join_keys(self, service: str) -> list[str]:
        """The entity columns a row needs to be joined to every view of the service."""
        keys: list[str] = []
        for view in self.views(service):
            for column in self.store.get_feature_view(view).entity_columns:
                if column.name not in keys:
                    keys.append(column.name)
        return keys

    def join(self, service: str, entities: pd.DataFrame, timestamp: str = EVENT_TIMESTAMP) -> pd.DataFrame:
        """`entities` with the service's features as of each row's `timestamp`, every row kept, in order."""
        keys = self.join_keys(service)
        missing = [c for c in (*keys, timestamp) if c not in entities.columns]
        if missing:
            raise FeatureStoreError(f"rows for feature service {service!r} lack columns {', '.join(missing)}")
        asked = entities[keys].assign(**{EVENT_TIMESTAMP: pd.to_datetime(entities[timestamp], utc=True),
                                         _ROW: range(len(entities))})
        try:
            found = self.store.get_historical_features(entity_df=asked, features=self.service(service),
                                                       full_feature_names=True).to_df()
        except FeatureStoreError:
            raise
        except Exception as error:   # Feast's own errors (a missing source file, a type clash) are this join's
            raise FeatureStoreError(f"feature service {service!r}: {type(error).__name__}: "
                                    f"{one_line(error, 300)}") from None
        names = {name.replace(":", "__", 1): name for name in self.features(service)}   # Feast's full names
        values = found.rename(columns=names).set_index(_ROW)[list(names.values())]
        joined = values.reindex(range(len(entities)))
        joined.index = entities.index
        return pd.concat([entities.drop(columns=[c for c in joined.columns if c in entities.columns]), joined],
                         axis=1)

    def training_set(self, service: str, entities: pd.DataFrame, target: str) -> pd.DataFrame:
        """The point-in-time training set of `entities` (join keys, event_timestamp, target): the
        service's features then the target, as a reference frame has them."""
        joined = self.join(service, entities)
        return joined[[*self.features(service), target]].reset_index(drop=True)

    def view_states(self, views: Iterable[str] | None = None) -> dict[str, ViewState]:
        """Every feature view's (or the named ones') definition digest and materialised end."""
        wanted = None if views is None else set(views)
        states = {}
        for view in self.store.list_feature_views(allow_cache=False):
            if wanted is not None and view.name not in wanted:
                continue
            spec = view.to_proto().spec.SerializeToString()
            newest = max(view.materialization_intervals, key=lambda interval: interval[1], default=None)
            start, end = (t.isoformat() for t in newest) if newest else (None, None)
            states[view.name] = ViewState(hashlib.sha256(spec).hexdigest()[:16], start, end)
        return states


def feast_store(repo_path: str | Path) -> Any:
    """A Feast FeatureStore on `repo_path`, able to read sources sealed at rest (`wksealed://` paths,
    watchkeeper.security.sealed_fs)."""
    from feast import FeatureStore

    from watchkeeper.security.sealed_fs import register

    register()
    return FeatureStore(repo_path=str(Path(repo_path).resolve()))


def needs_features(frame: pd.DataFrame, features: Iterable[str]) -> bool:
    """Whether a frame holds only entity rows (none of the features): then they are joined from Feast."""
    return not any(f in frame.columns for f in features)

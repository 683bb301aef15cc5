"""Any MLflow model, scored the way monitoring scores it, whatever flavour it was logged with.

Monitoring needs three things from a model: its predicted labels (or values), its class
probabilities when it has them, and its classes. A scikit-learn estimator, a LightGBM
model logged with its own flavour and a custom `mlflow.pyfunc.PythonModel` answer those
questions differently, so each is wrapped once here in a `ScoringModel` with the
scikit-learn names (`predict`, `predict_proba`, `classes_`), and no other module asks which
flavour a model is. A model without probabilities (a pyfunc that only predicts) says so:
`has_proba` is False and `predict_proba` raises `NoProbabilities`, so what needs them (AUC,
log loss, Brier, CBPE estimation, calibration) is left out with that reason instead of failing.

A custom pyfunc may return, per row, either a label/value, or a frame with a `prediction`
column and one `proba_<class>` column per class (the inference log's own columns): then it
has probabilities and its classes come from those column names. Flavours that do not keep
class labels (a LightGBM Booster, a label-only pyfunc) can state them in the model's MLflow
metadata under `watchkeeper_classes`.

Nothing executes from storage that was not meant to: a model whose flavour stores it as a
pickle (`serialization_format` pickle/cloudpickle, a pickled `python_model.pkl`) is refused
with one line saying how to log it instead (skops, a native LightGBM file, or a pyfunc
"model from code", whose code is a reviewed file in the artifact, as in any deployment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

SKLEARN, LIGHTGBM, PYFUNC = "sklearn", "lightgbm", "python_function"
CLASSES_KEY = "watchkeeper_classes"          # MLmodel metadata: classes of a flavour that does not keep them
PROBA_PREFIX = "proba_"
PICKLED_FORMATS = ("pickle", "cloudpickle")
NO_PROBABILITIES = "the model gives no class probabilities (it only predicts labels)"


class ModelLoadError(ValueError):
    """A registered model that cannot be loaded for monitoring; one line."""


class NoProbabilities(ValueError):
    """Asked for probabilities of a model that has none; one line."""


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (classes are stored as JSON)."""
    return value.item() if hasattr(value, "item") else value


@dataclass
class ScoringModel:
    """A loaded model as monitoring uses it: scikit-learn's names whatever the flavour.

    `native` is the flavour's own object (the estimator a recalibration wraps, when it is a
    scikit-learn one). `classes_` is None for regressors, and for a classifier that cannot
    name its classes (they are then taken from the labels where it is scored).
    """

    flavor: str
    native: Any
    predict_fn: Callable[[pd.DataFrame], np.ndarray]
    proba_fn: Callable[[pd.DataFrame], np.ndarray] | None = None
    classes_: list | None = None
    feature_names: list[str] | None = field(default=None)

    @property
    def has_proba(self) -> bool:
        return self.proba_fn is not None

    @property
    def is_sklearn(self) -> bool:
        return self.flavor == SKLEARN

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predict_fn(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.proba_fn is None:
            raise NoProbabilities(NO_PROBABILITIES)
        return np.asarray(self.proba_fn(X), dtype=float)

    def fit(self, *_: Any, **__: Any) -> None:
        """Never fitted here: present only because scikit-learn's inspection tools look for it."""
        raise TypeError("a loaded model is scored, never refitted")


def from_estimator(estimator: Any, flavor: str = SKLEARN) -> ScoringModel:
    """A scikit-learn-API estimator (scikit-learn itself, LightGBM's LGBMClassifier, ...)."""
    proba = getattr(estimator, "predict_proba", None)
    classes = getattr(estimator, "classes_", None)
    names = getattr(estimator, "feature_names_in_", None)
    return ScoringModel(flavor, estimator, estimator.predict, proba if classes is not None else None,
                        [plain(c) for c in classes] if classes is not None else None,
                        [str(n) for n in names] if names is not None else None)


def as_scoring(model: Any) -> ScoringModel:
    """A ScoringModel as it is; a scikit-learn-API estimator wrapped."""
    return model if isinstance(model, ScoringModel) else from_estimator(model)


def from_booster(booster: Any, classes: list | None) -> ScoringModel:
    """A LightGBM Booster (stored as LightGBM's own text file): probabilities for classifiers,
    values for regressors, by the objective it was trained with."""
    objective = str(booster.params.get("objective", booster.dump_model().get("objective", ""))).split()[0]
    names = list(booster.feature_name())
    if not objective.startswith(("binary", "multiclass", "softmax", "multiclassova")):
        return ScoringModel(LIGHTGBM, booster, lambda X: booster.predict(X[names]), None, None, names)

    def proba(X: pd.DataFrame) -> np.ndarray:
        raw = np.asarray(booster.predict(X[names]), dtype=float)
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    known = classes if classes is not None else list(range(max(2, int(booster.params.get("num_class", 2)))))
    return ScoringModel(LIGHTGBM, booster, lambda X: np.asarray(known)[proba(X).argmax(axis=1)], proba, known, names)


def from_pyfunc(model: Any, classes: list | None) -> ScoringModel:
    """A pyfunc model: labels from its output; probabilities when it returns `proba_<class>` columns."""
    names = _signature_inputs(model)

    def output(X: pd.DataFrame) -> Any:
        return model.predict(X if names is None else X[names])

    def predict(X: pd.DataFrame) -> np.ndarray:
        out = output(X)
        if isinstance(out, pd.DataFrame):
            if "prediction" in out.columns:
                return out["prediction"].to_numpy()
            if len(out.columns) == 1:
                return out.iloc[:, 0].to_numpy()
            raise ModelLoadError(f"the model's output has columns {list(out.columns)[:5]} but no 'prediction'")
        return np.asarray(out).ravel()

    try:
        columns = _probe_columns(model, names)
    except Exception:   # a probe cannot know the model's inputs: assume labels only, scoring will say more
        columns = []
    proba_columns = [c for c in columns if str(c).startswith(PROBA_PREFIX)]
    if not proba_columns:
        return ScoringModel(PYFUNC, model, predict, None, classes, names)
    found = [_class_value(str(c)[len(PROBA_PREFIX):]) for c in proba_columns]
    return ScoringModel(PYFUNC, model, predict, lambda X: output(X)[proba_columns].to_numpy(dtype=float),
                        found, names)


def load_model(model_uri: str) -> ScoringModel:
    """The model at an MLflow URI (`models:/name/3`, `runs:/...`), wrapped by its flavour."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(model_uri)
    except MlflowException as error:
        raise ModelLoadError(f"{model_uri}: {str(error.message).splitlines()[0]}") from None
    flavors, classes = info.flavors, (info.metadata or {}).get(CLASSES_KEY)
    _refuse_pickles(model_uri, flavors)
    if SKLEARN in flavors:
        return from_estimator(mlflow.sklearn.load_model(model_uri))
    if LIGHTGBM in flavors:
        native = mlflow.lightgbm.load_model(model_uri)
        if hasattr(native, "predict_proba") or hasattr(native, "n_features_in_"):
            return from_estimator(native, LIGHTGBM)
        return from_booster(native, classes)
    if PYFUNC in flavors:
        return from_pyfunc(mlflow.pyfunc.load_model(model_uri), classes)
    raise ModelLoadError(f"{model_uri}: flavours {sorted(flavors)} include no python_function: "
                         "it cannot be loaded as pyfunc")


def _refuse_pickles(model_uri: str, flavors: dict) -> None:
    """Refuse what MLflow would unpickle: a stored pickle could run any code in a worker."""
    for name, conf in flavors.items():
        if str(conf.get("serialization_format", "")).lower() in PICKLED_FORMATS:
            raise ModelLoadError(f"{model_uri}: its {name} flavour is stored as a {conf['serialization_format']}; "
                                 "Watchkeeper loads no pickle: log it with serialization_format='skops'")
    pyfunc = flavors.get(PYFUNC, {})
    if pyfunc.get("python_model") and not pyfunc.get("model_code_path"):
        raise ModelLoadError(f"{model_uri}: a pickled custom PythonModel ({pyfunc['python_model']}); Watchkeeper "
                             "loads no pickle: log it as a model from code (python_model='path/to/model.py')")


def _signature_inputs(model: Any) -> list[str] | None:
    signature = getattr(getattr(model, "metadata", None), "signature", None)
    names = signature.inputs.input_names() if signature is not None and signature.inputs else None
    return [str(n) for n in names] if names and all(isinstance(n, str) for n in names) else None


def _probe_columns(model: Any, names: list[str] | None) -> list:
    """The columns of the model's output on one example row (its input example, else zeros)."""
    example = None
    try:
        example = model.input_example
    except Exception:   # no example logged, or one that cannot be read: fall back to zeros
        example = None
    if not isinstance(example, pd.DataFrame) or example.empty:
        if names is None:
            return []
        example = pd.DataFrame([[0.0] * len(names)], columns=names)
    out = model.predict(example.head(1))
    return list(out.columns) if isinstance(out, pd.DataFrame) else []


def _class_value(text: str) -> Any:
    """'1' -> 1 for integer classes named in a column; other labels stay text."""
    try:
        return int(text)
    except ValueError:
        return text

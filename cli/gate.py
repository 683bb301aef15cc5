"""`watchkeeper gate`: the promotion gate as a CI/CD step.

Exit 0 when the candidate version beats the version it is compared against by the
margin (the same paired-bootstrap rule the retrain_model job applies), 1 when it does
not, 2 on bad input. Nothing in the registry is changed: the pipeline decides what to do.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.main import CommandError


def add_gate_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    gate = commands.add_parser(
        "gate", help="does a candidate model version beat the champion on labelled data? (exit 0 yes, 1 no)")
    gate.add_argument("--tracking-uri", required=True, help="MLflow tracking/registry URI")
    gate.add_argument("--model", required=True, help="registered model name")
    gate.add_argument("--candidate", required=True, help="candidate version number (or alias)")
    gate.add_argument("--against", default="champion", help="version or alias to beat (default: champion)")
    gate.add_argument("--data", type=Path, required=True, help="Parquet/CSV evaluation data: features and the label")
    gate.add_argument("--target", default="target", help="label column of --data (default: target)")
    gate.add_argument("--metric", help="metric to compare (default: the task's primary metric)")
    gate.add_argument("--margin", type=float, default=0.0,
                      help="improvement the lower bound must exceed: absolute for scores, relative for errors")
    gate.add_argument("--confidence", type=float, default=0.95, help="paired bootstrap interval (default 0.95)")
    gate.add_argument("--format", choices=["json", "text"], default="json")
    return gate


def gate_command(args: argparse.Namespace) -> int:
    from cli.drift import read_table
    from watchkeeper.performance import MetricsInputError
    from watchkeeper.retraining.gate import GateError, evaluate_gate

    _check_store(args.tracking_uri)
    data = read_table(args.data)
    models = _load_versions(args.tracking_uri, args.model, args.candidate, args.against)
    (candidate, candidate_model, task), (against, against_model, _) = models
    try:
        features = _features(candidate_model, data, args.target)
        decision = evaluate_gate(task, against_model, candidate_model, data, features, args.margin, args.metric,
                                 target=args.target, confidence=args.confidence)
    except (GateError, MetricsInputError) as error:
        raise CommandError(str(error)) from error
    result = {"model": args.model, "candidate": candidate, "against": against, "task": task, **decision.to_dict()}
    print(json.dumps(result, indent=2) if args.format == "json" else
          f"{'PASS' if decision.promote else 'FAIL'} {args.model} v{candidate} vs v{against}: {decision.reason}")
    return 0 if decision.promote else 1


def _check_store(uri: str) -> None:
    """A mistyped sqlite path would make MLflow create an empty registry and report 'no such model'."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise CommandError(f"{uri}: no such MLflow database")


def _load_versions(uri: str, model: str, *references: str) -> list[tuple[str, object, str]]:
    """(version, loaded model, task) for each version number or alias."""
    from mlflow.exceptions import MlflowException

    from watchkeeper.demo.models import quiet_mlflow
    from watchkeeper.registry import TASK_TAG, Champion, Registry

    quiet_mlflow()
    registry = Registry(uri)
    loaded = []
    try:
        tags = registry.client.get_registered_model(model).tags
        for reference in references:
            details = (registry.client.get_model_version(model, reference) if reference.isdigit()
                       else registry.client.get_model_version_by_alias(model, reference))
            estimator = registry.load_model(Champion(model, str(details.version), details.run_id, ""))
            loaded.append((str(details.version), estimator, tags.get(TASK_TAG) or _task_of(estimator)))
    except MlflowException as error:
        raise CommandError(f"{model}: {str(error.message).splitlines()[0]}") from error
    return loaded


def _task_of(estimator) -> str:
    """For a model registered without the watchkeeper.task tag."""
    if not hasattr(estimator, "predict_proba"):
        return "regression"
    return "binary" if len(estimator.classes_) == 2 else "multiclass"


def _features(estimator, data, target: str) -> list[str]:
    """The columns the model was fitted on when it knows them, else every column but the label."""
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [c for c in data.columns if c != target]

"""`watchkeeper gate`: the promotion gate as a CI/CD step.

Exit 0 when the candidate version beats the version it is compared against by the
margin (the same paired-bootstrap rule the retrain_model job applies), 1 when it does
not, 2 on bad input. Nothing in the registry is changed: the pipeline decides what to do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
from urllib.parse import urlsplit

from cli import arguments as arg
from cli.main import CommandError


DEFAULT_TIMEOUT = 30.0
RETRIES = 2   # MLflow's default is 7 with exponential backoff: minutes of silence before a CI step fails


def add_gate_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    gate = commands.add_parser(
        "gate", help="does a candidate model version beat the champion on labelled data? (exit 0 yes, 1 no)")
    gate.add_argument("--tracking-uri", type=arg.tracking_uri, required=True,
                      help="MLflow tracking/registry URI (http(s)://host:port, sqlite:///mlflow.db, ...)")
    gate.add_argument("--model", type=arg.name, required=True, help="registered model name")
    gate.add_argument("--candidate", type=arg.version, required=True, help="candidate version number (or alias)")
    gate.add_argument("--against", type=arg.version, default="champion",
                      help="version or alias to beat (default: champion)")
    gate.add_argument("--data", type=arg.input_file, required=True,
                      help="Parquet/CSV evaluation data: features and the label")
    gate.add_argument("--target", type=arg.name, default="target", help="label column of --data (default: target)")
    gate.add_argument("--metric", type=arg.name, help="metric to compare (default: the task's primary metric)")
    gate.add_argument("--margin", type=arg.margin, default=0.0,
                      help="improvement the lower bound must exceed: absolute for scores, relative for errors")
    gate.add_argument("--confidence", type=arg.confidence, default=0.95,
                      help="paired bootstrap interval (default 0.95)")
    gate.add_argument("--timeout", type=arg.seconds, default=DEFAULT_TIMEOUT,
                      help=f"seconds to connect to and to wait for the MLflow server, per request "
                           f"(default {DEFAULT_TIMEOUT:g}; {RETRIES} retries)")
    gate.add_argument("--format", choices=["json", "text"], default="json")
    return gate


def gate_command(args: argparse.Namespace) -> int:
    from cli.drift import read_table
    from watchkeeper.performance import METRIC_NAMES, MetricsInputError
    from watchkeeper.retraining.gate import GateError, evaluate_gate

    known = sorted({m for names in METRIC_NAMES.values() for m in names})
    if args.metric is not None and args.metric not in known:
        raise CommandError(f"unknown metric {args.metric!r} (one of {', '.join(known)})")
    data = read_table(args.data)
    if args.target not in data.columns:
        raise CommandError(f"{args.data}: no label column {args.target!r} (columns: {', '.join(map(str, data.columns))})")
    _limit_waiting(args.tracking_uri, args.timeout)
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


def _limit_waiting(uri: str, timeout: float) -> None:
    """Bound every wait on a remote MLflow: a server that is down fails in one line within `timeout`,
    and one that hangs is given up on after it (MLflow reads these variables at each request)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(timeout)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(RETRIES)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        reason = "no answer in time" if isinstance(error, TimeoutError) else error.strerror or type(error).__name__
        raise CommandError(f"cannot reach the MLflow server at {parts.hostname}:{port} ({reason})") from None


def _load_versions(uri: str, model: str, *references: str) -> list[tuple[str, object, str]]:
    """(version, loaded model, task) for each version number or alias."""
    from mlflow.exceptions import MlflowException

    from watchkeeper.demo.models import quiet_mlflow
    from watchkeeper.flavors import ModelLoadError
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
        raise CommandError(f"{model}: {_first_line(error.message)}") from None
    except ModelLoadError as error:
        raise CommandError(f"{model}: {error}") from None
    except OSError as error:   # an artifact download that failed below MLflow's own error handling
        raise CommandError(f"{model}: cannot load the model ({type(error).__name__}: {_first_line(error)})") from None
    return loaded


def _first_line(text: object) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300]


def _task_of(model) -> str:
    """For a model registered without the watchkeeper.task tag (a ScoringModel of any flavour)."""
    if model.classes_ is None:
        return "regression"
    return "binary" if len(model.classes_) == 2 else "multiclass"


def _features(model, data, target: str) -> list[str]:
    """The columns the model reads when it knows them (fitted names, signature), else all but the label."""
    names = model.feature_names
    return list(names) if names is not None else [c for c in data.columns if c != target]

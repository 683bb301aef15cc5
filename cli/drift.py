"""`watchkeeper drift` and `watchkeeper profile`: the engine on files, no Dagster needed."""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path

import pandas as pd

from cli.main import CommandError
from watchkeeper.drift import DriftConfig, DriftInputError, evaluate_drift
from watchkeeper.drift_tests import available_tests
from watchkeeper.profile import ReferenceProfile, fit_profile
from watchkeeper.tables import markdown_table

TEXT_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"]


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a frame, or a one-line error."""
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
    except Exception as error:  # any reader failure is the user's file, not our bug
        raise CommandError(f"{path}: cannot be read ({type(error).__name__}: {error})") from error
    raise CommandError(f"{path}: expected a .parquet or .csv file")


def is_profile(path: Path) -> bool:
    return path.suffix.lower() == ".json" and path.exists()


def load_reference(path: Path) -> ReferenceProfile:
    if is_profile(path):
        try:
            return ReferenceProfile.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:
            raise CommandError(f"{path}: not a Watchkeeper profile ({error})") from error
    return fit_profile(read_table(path))


def load_config(path: Path | None) -> DriftConfig:
    """The model's drift config from a YAML/JSON mapping (keys as in DriftConfig), or the defaults."""
    if path is None:
        return DriftConfig()
    import yaml  # YAML is a superset of JSON, so one reader serves both

    try:
        return DriftConfig.from_dict(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, ValueError, AttributeError) as error:
        raise CommandError(f"{path}: not a drift config ({' '.join(str(error).split())})") from error


def drift_command(args: argparse.Namespace) -> int:
    profile = load_reference(args.reference)
    config = load_config(getattr(args, "config", None))
    current = read_table(args.current)
    try:
        report = evaluate_drift(profile, current, config)
    except DriftInputError as error:
        raise CommandError(str(error)) from error
    result = report.to_dict()
    if not is_profile(args.reference):   # joint drift needs the reference rows, which a profile does not keep
        result["multivariate"] = multivariate(read_table(args.reference)[profile.feature_names()],
                                              current[profile.feature_names()])
    render = {"json": lambda r: json.dumps(r, indent=2), "text": render_text, "html": render_html}[args.format]
    output = render(result)
    if args.output:
        args.output.write_text(output)
    else:
        print(output)
    return 0


def multivariate(reference: pd.DataFrame, current: pd.DataFrame) -> list[dict]:
    """PCA reconstruction error and a domain classifier, each calibrated on the reference:
    they catch changes in the joint distribution that every marginal test misses."""
    from watchkeeper.multivariate import DomainClassifierDetector, PCADriftDetector

    results = []
    for detector in (PCADriftDetector(), DomainClassifierDetector()):
        try:
            fitted = detector.fit(reference, len(current)) if isinstance(detector, PCADriftDetector) \
                else detector.fit(reference)
            results.append(fitted.score(current).to_dict())
        except ValueError as error:   # e.g. a single numeric feature: nothing joint to test
            results.append({"method": type(detector).__name__, "skipped": str(error)})
    return results


def profile_command(args: argparse.Namespace) -> int:
    profile = fit_profile(read_table(args.data))
    args.output.write_text(json.dumps(profile.to_dict()))
    print(f"profile of {profile.n_rows} rows x {len(profile.features)} features written to {args.output}")
    return 0


def render_text(report: dict) -> str:
    verdict = "DATASET DRIFT" if report["dataset_drift"] else "no dataset drift"
    header = f"{verdict}: {len(report['drifted_features'])} of {len(report['features'])} features drifted " \
             f"(reference {report['n_reference']} rows, current {report['n_current']} rows)"
    tests = ", ".join(f"{name} ({source})" for name, source in available_tests().items())
    return header + "\n\n" + markdown_table(report["features"], TEXT_COLUMNS) + f"\n\ndrift tests available: {tests}"


def render_html(report: dict) -> str:
    """A self-contained page: the verdict, the feature table, and a plot per feature."""
    from watchkeeper.plots import drift_histograms, markdown_image  # matplotlib only when asked for

    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(f.get(c)))}</td>" for c in TEXT_COLUMNS) + "</tr>"
                   for f in report["features"])
    plots = []
    for feature in sorted(report["features"], key=lambda f: -(f["effect_size"] or 0.0)):
        uri = markdown_image(drift_histograms([feature], feature["name"], limit=1), feature["name"])
        plots.append(f'<figure><img alt="{html.escape(feature["name"])}" src="{uri[uri.index("(") + 1:-1]}"></figure>')
    verdict = "Dataset drift" if report["dataset_drift"] else "No dataset drift"
    head = "".join(f"<th>{c}</th>" for c in TEXT_COLUMNS)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Watchkeeper drift report</title></head>"
            f"<body><h1>{verdict}</h1><p>{report['n_reference']} reference rows, {report['n_current']} current rows, "
            f"drifted: {html.escape(', '.join(report['drifted_features']) or 'none')}</p>"
            f"<table border='1'><tr>{head}</tr>{rows}</table>{''.join(plots)}</body></html>")

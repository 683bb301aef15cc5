"""`watchkeeper drift` and `watchkeeper profile`: the engine on files, no Dagster needed.

Start-up is part of the speed a user meets: these commands import numpy and pyarrow, not pandas or
scipy (watchkeeper.files reads Arrow columns directly), so two small files take a fraction of a
second. The multivariate detectors on raw reference rows run within a budget (MULTIVARIATE_MODES).
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cli.main import CommandError
from watchkeeper.drift import DriftConfig, DriftInputError
from watchkeeper.drift_tests import available_tests
from watchkeeper.files import RowSample, evaluate_file, fit_profile_file, kinds, open_file
from watchkeeper.profile import ReferenceProfile
from watchkeeper.tables import markdown_table

if TYPE_CHECKING:
    import pandas as pd

TEXT_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"]
# --multivariate: rows sampled from each file for the PCA detector and for the domain classifier
# (None: not run). auto (the default) is the PCA detector alone, in numpy: about 0.1 s for 20,000
# rows x 100 features. full adds the domain classifier (scikit-learn, five folds: seconds to a minute).
MULTIVARIATE_MODES = {"auto": (20_000, None), "full": (100_000, 20_000), "off": (None, None)}


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a pandas frame, or a one-line error (for commands that need pandas)."""
    import pandas as pd

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


def load_profile(path: Path) -> ReferenceProfile:
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise CommandError(f"{path}: not a Watchkeeper profile ({error})") from error


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
    config = load_config(getattr(args, "config", None))
    pca_rows, classifier_rows = MULTIVARIATE_MODES[getattr(args, "multivariate", "auto")]
    try:
        current = open_file(args.current)
        samples = None
        if is_profile(args.reference):  # joint drift needs the reference rows, which a profile does not keep
            profile = load_profile(args.reference)
        else:
            reference = open_file(args.reference)
            rows = max(pca_rows or 0, classifier_rows or 0)
            samples = (RowSample(reference.num_rows, rows), RowSample(current.num_rows, rows, seed=1)) if rows else None
            profile = fit_profile_file(reference, samples[0] if samples else None)
        report = evaluate_file(profile, current, config, samples[1] if samples else None)
    except DriftInputError as error:
        raise CommandError(str(error)) from error
    result = report.to_dict()
    if samples:
        result["multivariate"] = multivariate(samples[0].columns(), samples[1].columns(), kinds(profile),
                                              pca_rows, classifier_rows)
    render = {"json": lambda r: json.dumps(r, indent=2), "text": render_text, "html": render_html}[args.format]
    output = render(result)
    if args.output:
        args.output.write_text(output)
    else:
        print(output)
    return 0


def multivariate(reference: dict, current: dict, feature_kinds: dict[str, str], pca_rows: int,
                 classifier_rows: int | None) -> list[dict]:
    """PCA reconstruction error and (on request) a domain classifier, each calibrated on the reference:
    they catch changes in the joint distribution that every marginal test misses. Each result's
    detail says how many rows it used; a detector that did not run says why."""
    from watchkeeper.multivariate import DomainClassifierDetector, PCADriftDetector

    results = []
    plan = [(PCADriftDetector(), pca_rows), (DomainClassifierDetector(max_rows=classifier_rows or 1), classifier_rows)]
    for detector, rows in plan:
        if rows is None:
            results.append({"method": detector.method, "skipped": "runs with --multivariate full (seconds to minutes)"})
            continue
        try:
            results.append(detector.fit(reference, kinds=feature_kinds).score(current).to_dict())
        except ValueError as error:   # e.g. a single numeric feature: nothing joint to test
            results.append({"method": detector.method, "skipped": str(error)})
    return results


def profile_command(args: argparse.Namespace) -> int:
    try:
        profile = fit_profile_file(open_file(args.data))
    except DriftInputError as error:
        raise CommandError(str(error)) from error
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

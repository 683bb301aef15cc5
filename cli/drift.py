"""`watchkeeper drift` and `watchkeeper profile`: the engine on files, no Dagster needed."""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path

import pandas as pd

from cli.main import CommandError
from watchkeeper import frames
from watchkeeper.drift import DriftConfig, DriftInputError, evaluate_drift
from watchkeeper.drift_tests import available_tests
from watchkeeper.profile import ProfileError, ReferenceProfile, fit_profile
from watchkeeper.tables import markdown_table

TEXT_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"]


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a frame, or a one-line error."""
    try:
        return frames.read_table(path)
    except frames.DataFileError as error:
        raise CommandError(str(error)) from None


def is_profile(path: Path) -> bool:
    return path.suffix.lower() == ".json" and path.exists()


def load_reference(path: Path) -> ReferenceProfile:
    """A saved profile or a profile fitted on reference data; refused when too small to test drift."""
    try:
        profile = ReferenceProfile.from_json(path) if is_profile(path) else fit_profile(read_table(path))
        profile.require_rows()
    except ProfileError as error:
        text = str(error)   # from_json names the file already
        raise CommandError(text if text.startswith(f"{path}: ") else f"{path}: {text}") from None
    return profile


def load_config(path: Path | None) -> DriftConfig:
    """The model's drift config from a YAML/JSON mapping (keys as in DriftConfig), or the defaults."""
    if path is None:
        return DriftConfig()
    from watchkeeper.config import ConfigError, load_drift_config

    try:
        return load_drift_config(path)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def drift_command(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    profile = load_reference(args.reference)
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
    write(render(result), args.output)
    return 0


def write(text: str, path: Path | None) -> None:
    """To `path`, or to stdout; a failed write (disk full, ...) is one line."""
    if path is None:
        print(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"{path}: cannot be written ({error.strerror or error})") from None


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
    profile = load_reference(args.data)
    write(json.dumps(profile.to_dict(), allow_nan=False), args.output)
    print(f"profile of {profile.n_rows} rows x {len(profile.features)} features written to {args.output}")
    return 0


def render_text(report: dict) -> str:
    verdict = "DATASET DRIFT" if report["dataset_drift"] else "no dataset drift"
    header = f"{verdict}: {len(report['drifted_features'])} of {len(report['features'])} features drifted " \
             f"(reference {report['n_reference']} rows, current {report['n_current']} rows)"
    tests = ", ".join(f"{name} ({source})" for name, source in available_tests().items())
    return header + "\n\n" + markdown_table(report["features"], TEXT_COLUMNS) + f"\n\ndrift tests available: {tests}"


def render_html(report: dict) -> str:
    """A self-contained page: the verdict, the feature table, and a plot per feature.

    Everything that came from the data (feature names, labels, values) is escaped for HTML,
    attributes included, and the page forbids scripts outright (Content-Security-Policy), so a
    feature named `"><img src=x onerror=alert(1)>` is shown as text, never run.
    """
    from watchkeeper.plots import PlotError, data_uri, drift_histograms  # matplotlib only when asked for

    def text(value: object) -> str:
        return html.escape(str(value), quote=True)

    rows = "".join("<tr>" + "".join(f"<td>{text(f.get(c))}</td>" for c in TEXT_COLUMNS) + "</tr>"
                   for f in report["features"])
    def figure(feature: dict) -> str:
        try:
            uri = data_uri(drift_histograms([feature], feature["name"], limit=1))
        except PlotError as error:   # the report stands without its picture; the reason is shown instead
            return f"<figure><figcaption>{text(error)}</figcaption></figure>"
        return f'<figure><img alt="{text(feature["name"])}" src="{uri}"></figure>'

    plots = [figure(f) for f in sorted(report["features"], key=lambda f: -(f["effect_size"] or 0.0))]
    verdict = "Dataset drift" if report["dataset_drift"] else "No dataset drift"
    head = "".join(f"<th>{c}</th>" for c in TEXT_COLUMNS)
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:\">"
            "<title>Watchkeeper drift report</title></head>"
            f"<body><h1>{verdict}</h1><p>{int(report['n_reference'])} reference rows, "
            f"{int(report['n_current'])} current rows, "
            f"drifted: {text(', '.join(report['drifted_features']) or 'none')}</p>"
            f"<table border='1'><tr>{head}</tr>{rows}</table>{''.join(plots)}</body></html>")

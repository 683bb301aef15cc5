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
from watchkeeper.files import RowSample, Source, evaluate_file, fit_profile_file, kinds, open_file
from watchkeeper.profile import ProfileError, ReferenceProfile
from watchkeeper.tables import markdown_table

if TYPE_CHECKING:
    import pandas as pd

TEXT_COLUMNS = ["name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"]
# --multivariate: rows sampled from each file for the PCA detector and for the domain classifier
# (None: not run). auto (the default) is the PCA detector alone, in numpy, within AUTO_PCA_WORK.
# full adds the domain classifier (scikit-learn, five folds: seconds to a minute).
MULTIVARIATE_MODES = {"auto": (20_000, None), "full": (100_000, 20_000), "off": (None, None)}
# auto's time budget: the PCA's cost is rows x (encoded columns)^2 multiply-adds (scatter matrices and
# reconstructions), so rows are cut to AUTO_PCA_WORK / columns^2 (a tenth of a second or so), never
# below AUTO_PCA_MIN_ROWS: 20,000 rows up to 70 encoded columns, 3,460 at 170 (100,000 x 60 with ten
# 12-label columns). Beyond 2,000 rows its AUC test is bound by its effect floor (min_auc 0.55), not by
# sampling noise (null sd 0.009 at 2,000 rows a side), so fewer rows lose little power.
AUTO_PCA_WORK = 10**8
AUTO_PCA_MIN_ROWS = 2_000


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a pandas frame, or a one-line error (for commands that need pandas)."""
    from watchkeeper import frames

    try:
        return frames.read_table(path)
    except frames.DataFileError as error:
        raise CommandError(str(error)) from None


def is_profile(path: Path) -> bool:
    return path.suffix.lower() == ".json" and path.exists()


def open_data(path: Path) -> Source:
    try:
        return open_file(path)
    except DriftInputError as error:
        raise CommandError(str(error)) from None


def load_reference(path: Path, data: Source | None = None, sample: RowSample | None = None) -> ReferenceProfile:
    """The saved profile at ``path``, or the profile fitted on reference ``data`` (its rows sampled
    into ``sample`` on the way); refused when too small to test drift."""
    try:
        profile = ReferenceProfile.from_json(path) if data is None else fit_profile_file(data, sample)
        profile.require_rows()
    except (ProfileError, DriftInputError) as error:
        text = str(error)   # from_json and the file readers name the file already
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
    mode = getattr(args, "multivariate", "auto")
    pca_rows, classifier_rows = MULTIVARIATE_MODES[mode]
    rows = max(pca_rows or 0, classifier_rows or 0)
    current = open_data(args.current)
    reference = None if is_profile(args.reference) else open_data(args.reference)
    samples = None  # joint drift needs the reference rows, which a profile does not keep
    if reference is not None and rows:
        samples = [RowSample(reference.num_rows, rows)]
    profile = load_reference(args.reference, reference, samples[0] if samples else None)
    if samples:  # the window's rows, once the profile sets auto's budget: no more than the PCA will use
        budget = budget_rows(profile, pca_rows) if mode == "auto" else pca_rows
        samples.append(RowSample(current.num_rows, max(budget, classifier_rows or 0), seed=1))
    try:
        report = evaluate_file(profile, current, config, samples[1] if samples else None)
    except DriftInputError as error:
        raise CommandError(str(error)) from error
    result = report.to_dict()
    if samples:
        result["multivariate"] = multivariate(samples[0].columns(), samples[1].columns(), kinds(profile),
                                              budget, classifier_rows)
        if mode == "auto":  # say what ran and how to get more
            result["multivariate"][0]["budget"] = (
                f"auto: PCA on at most {budget:,} rows per file (rows x encoded columns^2 <= {AUTO_PCA_WORK:.0e}, "
                f"at least {AUTO_PCA_MIN_ROWS:,}, at most {pca_rows:,}); --multivariate full: up to "
                f"{MULTIVARIATE_MODES['full'][0]:,} rows and the domain classifier")
    render = {"json": lambda r: json.dumps(r, indent=2), "text": render_text, "html": render_html}[args.format]
    write(render(result), args.output)
    return 1 if getattr(args, "fail_on_drift", False) and result["dataset_drift"] else 0


def write(text: str, path: Path | None) -> None:
    """To `path`, or to stdout; a failed write (disk full, ...) is one line."""
    if path is None:
        print(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"{path}: cannot be written ({error.strerror or error})") from None


def budget_rows(profile: ReferenceProfile, most: int) -> int:
    """Rows per file for the PCA detector within auto's time budget (AUTO_PCA_WORK), from the columns
    the encoder will make of the profiled features: one per number, one per kept label (at most
    TOP_CATEGORIES), one more for each feature with missing values."""
    from watchkeeper.multivariate import TOP_CATEGORIES
    from watchkeeper.profile import CATEGORICAL, NUMERIC

    width = sum((1 if f.kind == NUMERIC else min(len(f.categories or ()), TOP_CATEGORIES)) + (f.missing > 0)
                for f in profile.features.values() if f.kind in (NUMERIC, CATEGORICAL))
    return min(most, max(AUTO_PCA_MIN_ROWS, AUTO_PCA_WORK // max(width, 1) ** 2))


def multivariate(reference: dict, current: dict, feature_kinds: dict[str, str], pca_rows: int,
                 classifier_rows: int | None) -> list[dict]:
    """PCA reconstruction error and (on request) a domain classifier, each calibrated on the reference:
    they catch changes in the joint distribution that every marginal test misses. The PCA sees at most
    ``pca_rows`` of each file (a uniform subsample of the rows sampled while reading), the classifier
    samples its own; each result's detail says how many rows it used; a detector that did not run
    says why."""
    from watchkeeper.multivariate import DomainClassifierDetector, PCADriftDetector, subsample

    results = []
    pca_data = (subsample(reference, pca_rows, seed=0), subsample(current, pca_rows, seed=1)) if pca_rows else None
    plan = [(PCADriftDetector(), pca_data),
            (DomainClassifierDetector(max_rows=classifier_rows or 1), (reference, current) if classifier_rows else None)]
    for detector, data in plan:
        if data is None:
            results.append({"method": detector.method, "skipped": "runs with --multivariate full (seconds to minutes)"})
            continue
        try:
            results.append(detector.fit(data[0], kinds=feature_kinds).score(data[1]).to_dict())
        except ValueError as error:   # e.g. a single numeric feature: nothing joint to test
            results.append({"method": detector.method, "skipped": str(error)})
    return results


def profile_command(args: argparse.Namespace) -> int:
    profile = load_reference(args.data, open_data(args.data))
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

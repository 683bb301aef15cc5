"""The `watchkeeper drift` / `profile` contract of DESIGN.md, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cli.main import main
from conftest import ROOT

CONTRACT_FEATURE_KEYS = {"name", "kind", "test", "statistic", "p_value", "effect_size", "effect_metric", "drifted"}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "y": rng.normal(size=3000),
                              "colour": rng.choice(["red", "green", "blue"], size=3000)})
    current = pd.DataFrame({"x": rng.normal(1.0, 1.0, size=2000), "y": rng.normal(size=2000),
                            "colour": rng.choice(["red", "green", "blue"], size=2000)})
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_drift_json_contract(files, capsys):
    code, out, _ = run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(files / "cur.csv"))
    report = json.loads(out)
    assert code == 0
    assert (report["n_reference"], report["n_current"]) == (3000, 2000)
    assert all(CONTRACT_FEATURE_KEYS <= set(f) for f in report["features"])
    drifted = {f["name"]: f["drifted"] for f in report["features"]}
    assert drifted == {"x": True, "y": False, "colour": False}
    assert {f["name"]: f["kind"] for f in report["features"]}["colour"] == "categorical"


def test_saved_profile_gives_the_same_verdict(files, capsys):
    assert run(capsys, "profile", "--data", str(files / "ref.parquet"), "--output", str(files / "p.json"))[0] == 0
    _, from_data, _ = run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(files / "cur.csv"))
    _, from_profile, _ = run(capsys, "drift", "--reference", str(files / "p.json"), "--current", str(files / "cur.csv"))
    assert [f["drifted"] for f in json.loads(from_data)["features"]] == \
           [f["drifted"] for f in json.loads(from_profile)["features"]]


def test_text_and_html_reports(files, capsys):
    _, text, _ = run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(files / "cur.csv"),
                     "--format", "text")
    assert text.startswith("DATASET DRIFT") or text.startswith("no dataset drift")
    assert "| x |" in text
    output = files / "report.html"
    run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(files / "cur.csv"),
        "--format", "html", "--output", str(output))
    page = output.read_text()
    assert page.count("<img") == 3 and "data:image/png;base64," in page


@pytest.mark.parametrize("problem, expected", [
    ("missing_file", "no such file"),
    ("missing_column", "missing columns: y"),
    ("not_a_table", "expected a .parquet or .csv file"),
])
def test_bad_input_is_one_line_and_exit_2(files, capsys, problem, expected):
    current = {"missing_file": files / "nope.parquet", "not_a_table": files / "cur.txt",
               "missing_column": files / "cur_missing.csv"}[problem]
    pd.read_csv(files / "cur.csv").drop(columns="y").to_csv(files / "cur_missing.csv", index=False)
    (files / "cur.txt").write_text("x\n1\n")
    code, out, err = run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(current))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_drift_help_does_not_load_dagster_or_mlflow():
    probe = ("import sys\nfrom cli.main import main\ntry:\n    main(['drift', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('dagster', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().endswith("[]"), done.stdout + done.stderr


def test_joint_drift_invisible_to_marginals_is_reported_by_the_multivariate_detectors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 3000), columns=["a", "b"])
    current = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], 2000), columns=["a", "b"])
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    paths = ("--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"))
    report = json.loads(run(capsys, "drift", *paths, "--multivariate", "full")[1])
    assert report["drifted_features"] == [], "each marginal is unchanged"
    assert {m["method"]: m["drifted"] for m in report["multivariate"]} == {"pca_reconstruction": True,
                                                                          "domain_classifier": True}
    by_default = json.loads(run(capsys, "drift", *paths)[1])["multivariate"]  # within its budget: PCA only
    assert by_default[0]["drifted"] and "--multivariate full" in by_default[1]["skipped"]
    assert "multivariate" not in json.loads(run(capsys, "drift", *paths, "--multivariate", "off")[1])


def test_default_pca_runs_within_its_time_budget_and_says_so(tmp_path, capsys, monkeypatch):
    """auto cuts the PCA's rows to AUTO_PCA_WORK / encoded columns^2 (here 2 columns, a budget of 2,500
    rows) and states it; full uses every sampled row."""
    import cli.drift

    rng = np.random.default_rng(2)
    for name, rows in (("ref", 3000), ("cur", 2800)):
        pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"]).to_parquet(tmp_path / f"{name}.parquet")
    paths = ("--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet"))
    monkeypatch.setattr(cli.drift, "AUTO_PCA_WORK", 2_500 * 2**2)
    pca = json.loads(run(capsys, "drift", *paths)[1])["multivariate"][0]
    assert (pca["detail"]["n_reference"], pca["detail"]["n_rows"]) == (2500, 2500)
    assert "at most 2,500 rows per file" in pca["budget"] and "--multivariate full" in pca["budget"]
    full = json.loads(run(capsys, "drift", *paths, "--multivariate", "full")[1])["multivariate"][0]
    assert (full["detail"]["n_reference"], full["detail"]["n_rows"]) == (3000, 2800) and "budget" not in full


def test_a_saved_profile_has_no_rows_for_multivariate_tests(files, capsys):
    run(capsys, "profile", "--data", str(files / "ref.parquet"), "--output", str(files / "p.json"))
    _, out, _ = run(capsys, "drift", "--reference", str(files / "p.json"), "--current", str(files / "cur.csv"))
    assert "multivariate" not in json.loads(out)


def test_drift_leaves_the_cyclic_collector_as_it_found_it(files, capsys):
    """drift and profile run without the cyclic collector (start-up speed), and give it back; only
    the command line itself (argv None: the process ends next) freezes what is left for the exit."""
    import gc

    frozen = gc.get_freeze_count()
    run(capsys, "drift", "--reference", str(files / "ref.parquet"), "--current", str(files / "cur.csv"))
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()
    try:
        run(capsys, "profile", "--data", str(files / "ref.parquet"), "--output", str(files / "p.json"))
        assert not gc.isenabled()
    finally:
        gc.enable()

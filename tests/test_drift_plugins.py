"""A team's own drift test, registered through the "watchkeeper.drift_tests" entry point group.

The test installs a real (if tiny) distribution on sys.path, the way pip would, so discovery goes
through importlib.metadata exactly as in production.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from watchkeeper.drift import DriftConfig, evaluate_drift
from watchkeeper.drift_tests import ENTRY_POINT_GROUP, available_tests, load_test
from watchkeeper.profile import CATEGORICAL, NUMERIC, fit_profile

PLUGIN = '''
import numpy as np
from scipy.stats import chi2_contingency


class GTest:
    """Likelihood-ratio (G) test of homogeneity over the label counts."""

    name, kind = "gtest", "categorical"

    def __call__(self, histograms):
        results = []
        for ref, cur in zip(histograms.reference, histograms.current):
            keep = (ref + cur) > 0
            table = np.vstack([ref[keep], cur[keep]])
            results.append(chi2_contingency(table, lambda_="log-likelihood")[:2] if keep.sum() > 1 else (0.0, 1.0))
        return np.array([r[0] for r in results]), np.array([r[1] for r in results])
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    (tmp_path / "team_drift.py").write_text(PLUGIN)
    info = tmp_path / "team_drift-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-drift\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        gtest = team_drift:GTest
        broken = team_drift:DoesNotExist
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_test.cache_clear()
    yield
    load_test.cache_clear()


def test_registered_test_is_listed_and_reported_like_a_built_in(installed):
    assert available_tests() == {"ks": "built-in", "chi2": "built-in", "broken": "team_drift:DoesNotExist",
                                 "gtest": "team_drift:GTest"}
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 5_000, p=[0.5, 0.3, 0.2]), "x": rng.normal(size=5_000)})
    cur = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 2_000, p=[0.3, 0.3, 0.4]), "x": rng.normal(size=2_000)})
    profile = fit_profile(ref, {"plan": CATEGORICAL, "x": NUMERIC})
    config = DriftConfig.from_dict({"categorical_test": "gtest"})
    plan = evaluate_drift(profile, cur, config).to_dict()["features"][0]
    table = [ref["plan"].value_counts()[["a", "b", "c"]], cur["plan"].value_counts()[["a", "b", "c"]]]
    expected = stats.chi2_contingency(np.array(table), lambda_="log-likelihood")
    assert plan["test"] == "gtest" and plan["drifted"] and plan["p_adjusted"] is not None
    assert (plan["statistic"], plan["p_value"]) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_broken_or_mistyped_plugins_fail_in_one_line(installed):
    with pytest.raises(ValueError, match="^drift test plugin 'broken' failed to load: AttributeError"):
        DriftConfig(categorical_test="broken")
    with pytest.raises(ValueError, match="^drift test 'gtest' is for categorical features, not numeric$"):
        DriftConfig(numeric_test="gtest")
    with pytest.raises(ValueError, match="^unknown drift test 'nope'; available: ks, chi2, broken, gtest$"):
        DriftConfig(numeric_test="nope")

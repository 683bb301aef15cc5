"""Two-sample tests and distances, vectorised across features: one row per feature.

Every function takes matrices whose rows are features and whose columns are common bins (or grid
edges), so a window with hundreds of features costs a handful of numpy calls, not a Python loop.
Each is checked against scipy, or a published formula, in tests/test_drift_stats.py. Tail
probabilities come from watchkeeper.special (numpy), so that the engine never imports scipy.stats.
"""

from __future__ import annotations

import numpy as np

from watchkeeper.special import chi2_sf, ks_sf

PSI_CLIP = 1e-4  # an empty bin would make PSI infinite; clipping caps one bin's contribution
MIN_EXPECTED = 5.0  # chi-square cells expected below this are pooled: the asymptotics need it


def shares(counts: np.ndarray) -> np.ndarray:
    """Row-normalised counts; an all-zero row stays zero."""
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=float), where=total > 0)


def psi(reference_share: np.ndarray, current_share: np.ndarray) -> np.ndarray:
    """Population stability index per row, shares clipped at PSI_CLIP before the log."""
    r = np.clip(np.asarray(reference_share, dtype=float), PSI_CLIP, None)
    c = np.clip(np.asarray(current_share, dtype=float), PSI_CLIP, None)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (square root of the divergence, base 2, so in [0, 1]) per row."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)
        return np.sum(a * np.log2(ratio), axis=-1)

    return np.sqrt(np.clip((kl(p) + kl(q)) / 2, 0.0, None))


def hellinger(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hellinger distance sqrt(1 - sum sqrt(p q)) per row, in [0, 1]."""
    return np.sqrt(np.clip(1.0 - np.sum(np.sqrt(p * q), axis=-1), 0.0, None))


def label_shift(reference_share: np.ndarray, current_share: np.ndarray, ratio_floor: float) -> np.ndarray:
    """Per row, the largest change of one label's share (in share points) among the labels whose
    share moved by at least ``ratio_floor`` of the larger of their two shares.

    The ratio keeps a large label's wobble (40% -> 43%) from counting like a small label's jump
    (10% -> 13%); the points keep a tiny label's doubling (1% -> 2%) from counting at all
    (DriftConfig.label_change_floor). A new or vanished label moved by 100% of itself.
    """
    change = np.abs(current_share - reference_share)
    larger = np.maximum(current_share, reference_share)
    relative = np.divide(change, larger, out=np.zeros_like(change), where=larger > 0)
    return np.where(relative >= ratio_floor, change, 0.0).max(axis=-1, initial=0.0)


def two_sample_ks(reference: np.ndarray, current: np.ndarray) -> float:
    """The KS statistic of two sorted samples, exactly (as scipy's ks_2samp)."""
    both = np.concatenate([reference, current])
    gap = (np.searchsorted(reference, both, side="right") / len(reference)
           - np.searchsorted(current, both, side="right") / len(current))
    return float(np.abs(gap).max(initial=0.0))


def ks_from_cdfs(ref_cdf: np.ndarray, cur_cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS distance read at grid edges, and an upper bound for the supremum between edges.

    Both CDFs are non-decreasing, so inside a cell (e_k, e_k+1] the gap is at most
    max(F_cur(e_k+1) - F_ref(e_k), F_ref(e_k+1) - F_cur(e_k)); outside the grid F_ref is 0 or 1.
    The true statistic lies in [lower, upper]; upper - lower is the grid's resolution error.
    """
    lower = np.abs(cur_cdf - ref_cdf).max(axis=1)
    pad_ref = np.pad(ref_cdf, ((0, 0), (1, 1)), constant_values=(0.0, 1.0))
    pad_cur = np.pad(cur_cdf, ((0, 0), (1, 1)), constant_values=(0.0, 1.0))
    up = np.maximum(pad_cur[:, 1:] - pad_ref[:, :-1], pad_ref[:, 1:] - pad_cur[:, :-1])
    return lower, np.maximum(up.max(axis=1), lower)


def ks_pvalue(statistic: np.ndarray, n_reference: np.ndarray, n_current: np.ndarray) -> np.ndarray:
    """Two-sample KS p-value: the one-sample KS tail at the effective size n = n_ref n_cur / (n_ref + n_cur)
    (as scipy's ks_2samp(method='asymp')), read half a lattice step below the statistic.

    The two-sample statistic moves in steps of 1 / lcm(n_ref, n_cur); without the half-step
    (continuity) correction the asymptotic p-value of small samples is up to 10% below the exact
    one (500 vs 500 rows: 0.0125 against 0.0134), which would let the false-alarm rate creep above
    alpha exactly where windows are small. With it, the p-value is within 0.5-10% above scipy's
    exact one for samples of 100 rows and more (tests/test_drift_stats.py), and unchanged for
    sketched references, whose lcm is huge.
    """
    n_ref = np.maximum(np.round(np.asarray(n_reference, dtype=float)), 1)
    n_cur = np.maximum(np.round(np.asarray(n_current, dtype=float)), 1)
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    lattice = np.lcm(n_ref.astype(np.int64), n_cur.astype(np.int64)).astype(float)
    return ks_sf(n_eff, np.maximum(np.asarray(statistic, dtype=float) - 0.5 / lattice, 0.0))


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity per row of a 2 x K table (reference and current counts).

    Cells whose smaller expected count is under MIN_EXPECTED are pooled into one cell (rare and
    unseen categories then still count, as a group); a 2 x 2 table gets Yates' correction, as in
    scipy's chi2_contingency. Rows with one cell left (or an empty side) get statistic 0, p 1.
    """
    total = reference + current
    n_ref, n_cur = reference.sum(axis=1, keepdims=True), current.sum(axis=1, keepdims=True)
    n = np.maximum(n_ref + n_cur, 1)
    small = (total * np.minimum(n_ref, n_cur) / n < MIN_EXPECTED) & (total > 0)
    pooled_ref = np.where(small, reference, 0).sum(axis=1, keepdims=True)
    pooled_cur = np.where(small, current, 0).sum(axis=1, keepdims=True)
    ref = np.concatenate([np.where(small, 0, reference), pooled_ref], axis=1)
    cur = np.concatenate([np.where(small, 0, current), pooled_cur], axis=1)
    col = ref + cur
    dof = (col > 0).sum(axis=1) - 1
    expected_ref, expected_cur = col * n_ref / n, col * n_cur / n
    yates = np.where(dof == 1, 0.5, 0.0)[:, None]

    def term(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
        gap = np.maximum(np.abs(observed - expected) - yates, 0.0)
        return np.divide(gap**2, expected, out=np.zeros_like(expected), where=expected > 0)

    statistic = (term(ref, expected_ref) + term(cur, expected_cur)).sum(axis=1)
    valid = (dof > 0) & (n_ref[:, 0] > 0) & (n_cur[:, 0] > 0)
    statistic = np.where(valid, statistic, 0.0)
    return statistic, np.where(valid, chi2_sf(statistic, np.maximum(dof, 1)), 1.0)


def two_proportions(k_ref: np.ndarray, n_ref: np.ndarray, k_cur: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """p-value that two rates (e.g. missing rates) are equal: the 2 x 2 chi-square, Yates-corrected."""
    reference = np.column_stack([k_ref, n_ref - k_ref]).astype(float)
    current = np.column_stack([k_cur, n_cur - k_cur]).astype(float)
    return chi2_homogeneity(reference, current)[1]


def wasserstein_on_grid(edges: np.ndarray, ref_cdf: np.ndarray, cur_cdf: np.ndarray) -> np.ndarray:
    """Integral of |F_cur - F_ref| between the first and last edge, per row.

    Both CDFs are taken as linear within a cell: exact for the reference sketch, and for the
    current window off by at most the cell width times its current mass. Outside the edges both
    distributions count as winsorized (the caller picks edges inside the reference's range).
    """
    d = cur_cdf - ref_cdf
    a, b = d[:, :-1], d[:, 1:]
    denom = np.abs(a) + np.abs(b)
    crossing = np.divide(a**2 + b**2, 2 * denom, out=np.zeros_like(denom), where=denom > 0)
    mean_gap = np.where(a * b >= 0, denom / 2, crossing)
    return (np.diff(edges, axis=1) * mean_gap).sum(axis=1)

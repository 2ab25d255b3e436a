"""Drift statistics on sorted arrays and counts: PSI, exact KS and Wasserstein-1, Jensen–Shannon
distance (natural log, as Evidently), chi-square homogeneity; and the input handling they share.

Missing values (NaN/None, ±inf for numerics) are dropped before every statistic, as Evidently does.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def psi(ref_prop: np.ndarray, cur_prop: np.ndarray, eps: float) -> float:
    """Population stability index; proportions floored at ``eps`` without renormalising, so a bin
    empty on both sides contributes 0 and one empty on one side a large but finite term."""
    r = np.maximum(ref_prop, eps)
    c = np.maximum(cur_prop, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per right-closed bin ``(e[k-1], e[k]]`` of already-sorted values (no per-row work)."""
    cum = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate([[0], cum, [sorted_values.size]])).astype(np.int64)


def ks_and_wasserstein(ref: np.ndarray, cur: np.ndarray, ref_u: np.ndarray, cur_u: np.ndarray) -> tuple[float, float]:
    """Exact KS statistic and Wasserstein-1 distance from the two empirical CDFs.

    Both ECDFs are step functions jumping only at the observed distinct values, so evaluating them
    on the merged distinct support gives the KS supremum exactly, and the Wasserstein-1 distance is
    the integral of |F_ref - F_cur| over the gaps of that support (scipy's own formula, without
    materialising the n + m merged sample).
    """
    z = np.sort(np.concatenate([ref_u, cur_u]))  # duplicates give zero-width gaps: harmless
    f_ref = np.searchsorted(ref, z, side="right") / ref.size
    f_cur = np.searchsorted(cur, z, side="right") / cur.size
    diff = np.abs(f_ref - f_cur)
    return float(diff.max()), float(np.sum(diff[:-1] * np.diff(z)))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided asymptotic p-value, as ``scipy.stats.ks_2samp`` uses when a sample exceeds 10,000."""
    from scipy.stats import kstwo

    big, small = max(n1, n2), min(n1, n2)
    en = round(big * small / (big + small))
    return float(np.clip(kstwo.sf(d, en), 0.0, 1.0))


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance, natural log (= scipy.spatial.distance.jensenshannon, base None)."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2.0, 0.0)))


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-square on the 2×k table (reference vs current; no continuity correction).

    Unlike Evidently's goodness-of-fit (expected counts from the reference alone, so a category
    new in the batch gives p = 0), both samples estimate the expected counts.
    """
    from scipy.stats import chi2

    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    dof = table.shape[1] - 1
    if dof < 1:
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(chi2.sf(stat, dof)), int(dof)


def value_proportions(ref: np.ndarray, cur: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each support value in two sorted arrays (for low-cardinality numerics)."""

    def counts(a: np.ndarray) -> np.ndarray:
        return (np.searchsorted(a, support, side="right") - np.searchsorted(a, support, side="left")).astype(np.float64)

    return counts(ref), counts(cur)


# --------------------------------------------------------------------------- input handling


def require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def numeric_values(series: pd.Series, name: str) -> tuple[np.ndarray, int]:
    """Finite float64 values and the count of missing ones; raises naming rows that are not numbers."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.float64)
    if not pd.api.types.is_numeric_dtype(series):
        parsed = pd.to_numeric(series, errors="coerce")
        bad = parsed.isna() & series.notna()
        if bad.any():
            idx = series.index[bad.to_numpy()][:5].tolist()
            examples = [series.loc[i] for i in idx]
            raise ValueError(
                f"column {name!r}: {int(bad.sum())} non-numeric value(s), e.g. rows {idx}: "
                f"{examples}; drift needs validated, typed data"
            )
        series = parsed
    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0
    return arr[finite], int((~finite).sum())


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Category -> count (keys as str; hashing only, no per-row Python) and the missing count."""
    vc = series.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    for key, n in zip(vc.index, vc.to_numpy(), strict=False):
        if n:
            k = str(key)
            counts[k] = counts.get(k, 0) + int(n)
    return counts, int(len(series) - sum(counts.values()))


def sorted_unique(sorted_values: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0:
        return sorted_values
    keep = np.empty(sorted_values.size, dtype=bool)
    keep[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    unique: np.ndarray = sorted_values[keep]
    return unique


def sorted_unique_counts(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq = sorted_unique(sorted_values)
    right = np.searchsorted(sorted_values, uniq, side="right")
    return uniq, np.diff(np.concatenate([[0], right]))


def share(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0

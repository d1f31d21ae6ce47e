"""Statistics used by the reports, implemented with :mod:`math` only.

* :func:`two_proportion_z_test` compares two failure rates;
* :func:`mann_whitney_u` compares two latency samples without assuming a
  distribution (normal approximation with tie correction);
* :func:`fisher_exact_greater` and :func:`chi2_yates` test a 2x2 table for
  over-representation; :func:`over_representation_p` picks the right one;
* :func:`benjamini_hochberg` controls the false discovery rate across many
  such tests;
* :func:`wilson_interval` is a confidence interval for a rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MannWhitneyResult",
    "ZTestResult",
    "benjamini_hochberg",
    "chi2_yates",
    "fisher_exact_greater",
    "mann_whitney_u",
    "mann_whitney_from_ranks",
    "normal_cdf",
    "normal_sf",
    "over_representation_p",
    "two_proportion_z_test",
    "wilson_interval",
]


def normal_cdf(z: float) -> float:
    """P(Z <= z) for a standard normal Z."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z (accurate far in the tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class ZTestResult:
    """Two-proportion z-test: ``diff`` is ``p2 - p1``; ``p_value`` is two-sided."""

    p1: float
    p2: float
    diff: float
    z: float
    p_value: float


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> ZTestResult:
    """Compare ``x1/n1`` with ``x2/n2`` using the pooled-variance z-test."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    p1 = x1 / n1
    p2 = x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return ZTestResult(p1, p2, p2 - p1, 0.0, 1.0)
    z = (p2 - p1) / se
    return ZTestResult(p1, p2, p2 - p1, z, min(1.0, 2 * normal_sf(abs(z))))


@dataclass(frozen=True, slots=True)
class MannWhitneyResult:
    """Mann-Whitney U test of sample 1 against sample 2.

    ``u`` is U for sample 1; ``effect`` is the probability that a value from
    sample 2 exceeds one from sample 1 (ties count half), 0.5 meaning no
    difference. ``p_value`` is two-sided.
    """

    u: float
    z: float
    p_value: float
    effect: float


def mann_whitney_from_ranks(
    n1: int, n2: int, rank_sum_1: float, tie_term: float
) -> MannWhitneyResult:
    """The U test from the rank sum of sample 1 in the pooled ranking.

    ``tie_term`` is the sum of ``t**3 - t`` over groups of tied values (0
    without ties). Lets the ranking happen elsewhere (e.g. in SQL).
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    u1 = rank_sum_1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    effect = 1 - u1 / (n1 * n2)
    if variance <= 0:
        return MannWhitneyResult(u1, 0.0, 1.0, effect)
    # Continuity correction towards the mean.
    delta = u1 - mean
    correction = 0.5 if delta > 0 else (-0.5 if delta < 0 else 0.0)
    z = (delta - correction) / math.sqrt(variance)
    return MannWhitneyResult(u1, z, min(1.0, 2 * normal_sf(abs(z))), effect)


def mann_whitney_u(sample1: Sequence[float], sample2: Sequence[float]) -> MannWhitneyResult:
    """Two-sided Mann-Whitney U test (normal approximation, tie-corrected)."""
    n1, n2 = len(sample1), len(sample2)
    pooled = sorted([(v, 0) for v in sample1] + [(v, 1) for v in sample2])
    rank_sum_1 = 0.0
    tie_term = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        t = j - i + 1
        average_rank = (i + j) / 2 + 1
        rank_sum_1 += average_rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        if t > 1:
            tie_term += t**3 - t
        i = j + 1
    return mann_whitney_from_ranks(n1, n2, rank_sum_1, tie_term)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact test that ``a`` is larger than chance.

    The table is ``[[a, b], [c, d]]`` (rows: has attribute / does not;
    columns: failed / succeeded). Returns P(X >= a) under the hypergeometric
    distribution with the table's margins.
    """
    row1 = a + b
    col1 = a + c
    n = a + b + c + d
    lo = max(0, row1 + col1 - n)
    hi = min(row1, col1)
    if a <= lo:
        return 1.0
    log_denominator = _log_comb(n, col1)

    def log_p(x: int) -> float:
        return _log_comb(row1, x) + _log_comb(n - row1, col1 - x) - log_denominator

    logs = [log_p(x) for x in range(a, hi + 1)]
    top = max(logs)
    total = sum(math.exp(v - top) for v in logs)
    return min(1.0, math.exp(top) * total)


def chi2_yates(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Chi-square statistic of a 2x2 table with Yates' continuity correction.

    Returns ``(chi2, p_greater)`` where ``p_greater`` is the one-sided p-value
    for ``a`` being larger than expected.
    """
    n = a + b + c + d
    row1, row2, col1, col2 = a + b, c + d, a + c, b + d
    if 0 in (row1, row2, col1, col2):
        return 0.0, 1.0
    expected_a = row1 * col1 / n
    diff = abs(a * d - b * c)
    corrected = max(0.0, diff - n / 2)
    chi2 = n * corrected * corrected / (row1 * row2 * col1 * col2)
    z = math.sqrt(chi2)
    if a > expected_a:
        return chi2, normal_sf(z)
    return chi2, 1 - normal_sf(z)


def over_representation_p(a: int, b: int, c: int, d: int) -> float:
    """One-sided p-value that failures are over-represented in row 1 of ``[[a, b], [c, d]]``.

    Fisher's exact test when an expected cell count is below 5 (where the
    chi-square approximation is poor) or the table is small; otherwise the
    Yates-corrected chi-square test.
    """
    n = a + b + c + d
    if n == 0:
        return 1.0
    row1, row2, col1, col2 = a + b, c + d, a + c, b + d
    smallest_expected = min(row1, row2) * min(col1, col2) / n
    if smallest_expected < 5 or n <= 2000:
        return fisher_exact_greater(a, b, c, d)
    return chi2_yates(a, b, c, d)[1]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)

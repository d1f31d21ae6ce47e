"""Statistics of the analysis against known values and brute force."""

from __future__ import annotations

import math
import random
from itertools import product

import pytest

from aitel.analysis.stats import (
    benjamini_hochberg,
    chi2_yates,
    fisher_exact_greater,
    mann_whitney_u,
    normal_cdf,
    normal_sf,
    over_representation_p,
    two_proportion_z_test,
    wilson_interval,
)


def test_normal_distribution_known_values():
    assert normal_cdf(0) == pytest.approx(0.5)
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-12)
    assert normal_sf(3) == pytest.approx(0.0013498980316301, rel=1e-9)
    assert normal_sf(10) == pytest.approx(7.61985302416e-24, rel=1e-6)


def test_two_proportion_z_test_matches_hand_computation():
    result = two_proportion_z_test(30, 100, 50, 100)
    pooled = 0.4
    se = math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result.z == pytest.approx(0.2 / se)
    assert result.z == pytest.approx(2.886751, rel=1e-6)
    assert result.p_value == pytest.approx(0.0038924, rel=1e-4)
    assert result.diff == pytest.approx(0.2)


def test_two_proportion_z_test_degenerate():
    assert two_proportion_z_test(0, 10, 0, 10).p_value == 1.0
    with pytest.raises(ValueError):
        two_proportion_z_test(1, 0, 1, 10)


def test_mann_whitney_separated_samples():
    # U = 0; normal approximation with continuity correction: z = -12/sqrt(275/12).
    result = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result.u == 0
    assert result.z == pytest.approx(-12 / math.sqrt(275 / 12))
    assert result.p_value == pytest.approx(0.012185, rel=1e-3)
    assert result.effect == 1.0  # sample 2 is always larger


def _brute_u(a: list[float], b: list[float]) -> float:
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in product(a, b))


def test_mann_whitney_u_with_ties_matches_pair_counting():
    rng = random.Random(5)
    a = [rng.randint(0, 20) for _ in range(40)]
    b = [rng.randint(3, 25) for _ in range(55)]
    result = mann_whitney_u(a, b)
    assert result.u == pytest.approx(_brute_u(a, b))
    assert 0 < result.p_value < 1
    same = mann_whitney_u(a, a)
    assert same.p_value == pytest.approx(1.0)
    assert same.effect == pytest.approx(0.5)


def _fisher_brute(a: int, b: int, c: int, d: int) -> float:
    r1, c1, n = a + b, a + c, a + b + c + d
    total = math.comb(n, c1)
    return (
        sum(
            math.comb(r1, x) * math.comb(n - r1, c1 - x)
            for x in range(a, min(r1, c1) + 1)
            if c1 - x <= n - r1
        )
        / total
    )


def test_fisher_exact_lady_tasting_tea():
    assert fisher_exact_greater(3, 1, 1, 3) == pytest.approx(17 / 70)


@pytest.mark.parametrize(
    "table", [(8, 2, 1, 5), (0, 5, 5, 0), (5, 0, 0, 5), (12, 30, 4, 90), (1, 1, 1, 1)]
)
def test_fisher_exact_matches_exact_sum(table):
    assert fisher_exact_greater(*table) == pytest.approx(_fisher_brute(*table), rel=1e-9)


def test_chi2_yates_known_value():
    chi2, p = chi2_yates(10, 20, 30, 40)
    assert chi2 == pytest.approx(0.4464286, rel=1e-6)
    # a = 10 is below its expectation (12): the one-sided p for "greater" is large.
    assert p > 0.5
    chi2, p = chi2_yates(30, 40, 10, 20)  # a = 30 is above its expectation (28)
    assert p == pytest.approx(normal_sf(math.sqrt(chi2)))


def test_over_representation_p_uses_fisher_for_small_counts():
    assert over_representation_p(3, 1, 1, 3) == pytest.approx(17 / 70)
    big = over_representation_p(500, 500, 1000, 8000)
    assert big < 1e-50
    assert over_representation_p(0, 0, 0, 0) == 1.0


def test_benjamini_hochberg_known_values():
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2365931, rel=1e-6)
    assert hi == pytest.approx(0.7634069, rel=1e-6)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775328, rel=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)

"""The statistical tests behind confidence and significance figures."""

from __future__ import annotations

import math

from scipy import stats


def proportion_above_confidence(x1: float, n1: float, x2: float, n2: float) -> float:
    """Confidence that rate x1/n1 exceeds rate x2/n2: one minus the one-sided
    p-value of the pooled two-proportion z-test. It grows with the samples
    for a given gap and is 0.5 when the rates are equal."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if error == 0:
        return 0.5
    z = (x1 / n1 - x2 / n2) / error
    return float(stats.norm.cdf(z))


def mean_above_confidence(
    mean1: float, var1: float, n1: float, mean2: float, var2: float, n2: float
) -> float:
    """Confidence that mean1 exceeds mean2: the normal CDF of the
    large-sample (Welch) z statistic of the difference."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    error = math.sqrt(var1 / n1 + var2 / n2)
    if error == 0:
        return 1.0 if mean1 > mean2 else 0.5
    return float(stats.norm.cdf((mean1 - mean2) / error))


def sample_variance(total: float, squares: float, n: float) -> float:
    """The unbiased variance from a sum and a sum of squares."""
    if n < 2:
        return 0.0
    mean = total / n
    return max(squares - n * mean * mean, 0.0) / (n - 1)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test, computed as
    the equivalent chi-squared test of the 2x2 table without continuity
    correction. 1.0 when the test is undefined (an empty period, or every
    session of both periods with the same outcome)."""
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    if n1 == 0 or n2 == 0 or x1 + x2 == 0 or x1 + x2 == n1 + n2:
        return 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.pvalue)

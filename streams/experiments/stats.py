"""The statistics an experiment report needs: a rate, its Wilson score interval, and the
two-sided pooled two-proportion z-test. Pure functions over counts; the standard library's
``math.erfc`` is the only special function (no scipy).

Undefined cases return None instead of raising: a rate or interval over zero trials, and a
p-value when either group has no trials or the pooled rate is 0 or 1 (both groups all
successes or all failures: the z statistic is 0/0).

>>> [round(bound, 4) for bound in wilson_interval(81, 263)]
[0.2553, 0.3662]
>>> round(two_proportion_p_value(50, 100, 65, 100), 4)
0.0319
"""

from __future__ import annotations

import math
from typing import Final

Z_95: Final = 1.959963984540054
"""The standard normal quantile of 0.975: a 95 % two-sided interval."""


def rate(successes: int, trials: int) -> float | None:
    """``successes / trials``; None when there are no trials.

    >>> rate(1, 4), rate(0, 0)
    (0.25, None)
    """
    _check_counts(successes, trials)
    return successes / trials if trials else None


def wilson_interval(successes: int, trials: int, z: float = Z_95
                    ) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (``z`` = 1.96: 95 %), clamped to [0, 1];
    None when there are no trials.

    Unlike the normal approximation it never leaves [0, 1] and is not empty at 0 or n
    successes.

    >>> [round(bound, 4) for bound in wilson_interval(0, 20)]
    [0.0, 0.1611]
    >>> wilson_interval(3, 0)
    Traceback (most recent call last):
    ...
    ValueError: need 0 <= successes <= trials, got 3 of 0
    """
    _check_counts(successes, trials)
    if trials == 0:
        return None
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials))
    # At 0 (or n) successes the bound is exactly 0 (or 1); rounding would leave ~1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def two_proportion_p_value(successes_a: int, trials_a: int, successes_b: int, trials_b: int
                           ) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of "group b's rate equals group
    a's"; None when it is undefined (no trials in a group, or a pooled rate of 0 or 1).

    >>> two_proportion_p_value(0, 10, 0, 10) is None, two_proportion_p_value(1, 10, 0, 0)
    (True, None)
    """
    _check_counts(successes_a, trials_a)
    _check_counts(successes_b, trials_b)
    if trials_a == 0 or trials_b == 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1.0 - pooled) * (1.0 / trials_a + 1.0 / trials_b)
    if variance <= 0.0:
        return None
    z = (successes_b / trials_b - successes_a / trials_a) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def _check_counts(successes: int, trials: int) -> None:
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")

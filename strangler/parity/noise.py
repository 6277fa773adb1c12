"""Diffy's noise model: a field is a regression only when its primary-vs-candidate difference
count clearly exceeds its primary-vs-secondary (noise) count.

After opendiffy/diffy `JoinedDifferences.scala`, with one change: a route where only some
requests got a second call is not under-counted. The noise seen on the comparisons that had a
secondary counts as it is, and the comparisons without one are expected to differ at the
lower end of the 95% Wilson score interval of the rate seen (Wilson, "Probable inference, the
law of succession, and statistical inference", JASA 22, 1927): noise learned from a few
readings cannot cancel a regression, where one secondary that differed once, scaled as a plain
ratio, would explain a field differing on every request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NoiseThresholds:
    """Both must be exceeded. Defaults are Diffy's (20% relative, 0.03% absolute): relative
    keeps a field whose difference rate is within 20% of its noise rate quiet, absolute keeps
    one odd pair in a large sample quiet while staying far below any sensible gate (99.5%)."""

    relative: float = 0.20
    absolute: float = 0.0003


DEFAULT_THRESHOLDS = NoiseThresholds()


Z_95 = 1.959964  # two-sided 95% normal quantile


def noise_rate_lower_bound(noise: int, noise_samples: int, z: float = Z_95) -> float:
    """The lower end of the Wilson score interval of `noise` in `noise_samples`: a rate the
    secondary's readings show with 95% confidence (0.21 for 1 in 1, 0.97 for 120 in 120)."""
    if noise_samples <= 0 or noise <= 0:
        return 0.0
    n, p = noise_samples, min(noise, noise_samples) / noise_samples
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def expected_noise(noise: int, noise_samples: int, samples: int) -> float:
    """Noise differences expected over `samples`: those seen with a secondary, and for the
    comparisons without one, the rate those readings show with 95% confidence."""
    unsampled = max(0, samples - noise_samples)
    return noise + unsampled * noise_rate_lower_bound(noise, noise_samples)


def _excess(raw: int, noise: int, samples: int, noise_samples: int, relative: float) -> float:
    """The differences beyond the noise expected, when more than `relative` of them (else 0)."""
    if samples <= 0 or raw <= 0:
        return 0.0
    expected = expected_noise(noise, noise_samples, samples)
    excess = raw - expected
    return excess if excess > 0 and excess / (raw + expected) > relative else 0.0


def is_regression(
    raw: int,
    noise: int,
    samples: int,
    noise_samples: int,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
) -> bool:
    """True when `raw` differences are not explained by the noise learned for the same field,
    judged on its own (`regressions` judges an endpoint's fields together)."""
    excess = _excess(raw, noise, samples, noise_samples, thresholds.relative)
    return excess > 0 and excess / samples > thresholds.absolute


def regressions(
    fields: Mapping[str, tuple[int, int]],
    samples: int,
    noise_samples: int,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
) -> frozenset[str]:
    """The fields of one endpoint ({path: (raw, noise)}) whose differences noise does not
    explain. A field above the relative threshold and under the absolute one is quiet only
    while all such fields together stay under it: one odd pair in a large sample is quiet,
    an odd pair in each of many fields is a share of the comparisons the gate must see."""
    excess = {
        path: _excess(raw, noise, samples, noise_samples, thresholds.relative)
        for path, (raw, noise) in fields.items()
    }
    found = {path for path, e in excess.items() if e > 0 and e / samples > thresholds.absolute}
    quiet = sum(e for path, e in excess.items() if path not in found)
    if quiet and quiet / samples > thresholds.absolute:
        found.update(path for path, e in excess.items() if e > 0)
    return frozenset(found)

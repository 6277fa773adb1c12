"""Diffy's noise model: a field is a regression only when its primary-vs-candidate difference
count clearly exceeds its primary-vs-secondary (noise) count.

After opendiffy/diffy `JoinedDifferences.scala`, with one change: the noise count is scaled
to the number of comparisons that had a secondary, so a route where only some requests got
a second call is not under-counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoiseThresholds:
    """Both must be exceeded. Defaults are Diffy's (20% relative, 0.03% absolute): relative
    keeps a field whose difference rate is within 20% of its noise rate quiet, absolute keeps
    one odd pair in a large sample quiet while staying far below any sensible gate (99.5%)."""

    relative: float = 0.20
    absolute: float = 0.0003


DEFAULT_THRESHOLDS = NoiseThresholds()


def expected_noise(noise: int, noise_samples: int, samples: int) -> float:
    """Noise differences expected over `samples` at the rate seen with a secondary."""
    if noise_samples <= 0:
        return 0.0
    return noise * samples / noise_samples


def is_regression(
    raw: int,
    noise: int,
    samples: int,
    noise_samples: int,
    thresholds: NoiseThresholds = DEFAULT_THRESHOLDS,
) -> bool:
    """True when `raw` differences are not explained by the noise learned for the same field."""
    if samples <= 0 or raw <= 0:
        return False
    expected = expected_noise(noise, noise_samples, samples)
    if raw <= expected:
        return False
    excess = raw - expected
    return (
        excess / (raw + expected) > thresholds.relative and excess / samples > thresholds.absolute
    )

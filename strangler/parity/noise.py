"""Diffy's noise model: a field is a regression only when its primary-vs-candidate difference
count clearly exceeds its primary-vs-secondary (noise) count.

After opendiffy/diffy `JoinedDifferences.scala`, with one change: the noise count is scaled
to the number of comparisons that had a secondary, so a route where only some requests got
a second call is not under-counted.
"""

from __future__ import annotations

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


def expected_noise(noise: int, noise_samples: int, samples: int) -> float:
    """Noise differences expected over `samples` at the rate seen with a secondary."""
    if noise_samples <= 0:
        return 0.0
    return noise * samples / noise_samples


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

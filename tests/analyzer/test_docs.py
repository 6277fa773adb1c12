"""docs/analyzer.md documents every edge weight (with its default) and every error id."""

import re
from pathlib import Path

import strangler_analyzer.boundaries
import strangler_analyzer.pins
from strangler_analyzer.omnipresent import DEFAULT_MIN_APPS
from strangler_analyzer.weights import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "analyzer.md").read_text()


def test_every_edge_kind_is_documented_with_its_default_weight():
    for kind, weight in DEFAULT_WEIGHTS.items():
        assert re.search(rf"^\| `{kind}` \| {weight:g} \|", DOC, re.MULTILINE), kind


def test_every_boundaries_error_id_is_documented():
    source = (
        "".join(
            Path(m.__file__).read_text()
            for m in (strangler_analyzer.boundaries, strangler_analyzer.pins)
        )
        + (ROOT / "strangler" / "cli" / "analyze.py").read_text()
    )
    ids = set(re.findall(r"boundaries\.E\d{3}", source))
    assert ids and ids <= set(re.findall(r"boundaries\.E\d{3}", DOC))


def test_the_omnipresent_threshold_is_documented_with_its_default():
    assert f"omnipresent_min_apps = {DEFAULT_MIN_APPS}" in DOC
    assert f"(default **{DEFAULT_MIN_APPS}**" in DOC

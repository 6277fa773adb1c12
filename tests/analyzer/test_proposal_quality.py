"""Proposals an architect would sign: wiring, shared kernel, granularity, names, hubs, externals."""

from __future__ import annotations

import json
from pathlib import Path

from strangler_analyzer import findings
from strangler_analyzer.api import Options, analyze
from strangler_analyzer.cluster import cluster
from strangler_analyzer.render import render_markdown, render_text
from tests.analyzer.test_analyze import cli
from tests.analyzer.test_reading_real_projects import write

MONOLITH = Path(__file__).resolve().parents[2] / "monolith"


def report_of(root: Path, tmp_path: Path) -> dict:
    return analyze(Options(path=str(root), cache_dir=str(tmp_path / "cache"))).report


def context_of(report: dict) -> dict[str, str]:
    return {m: c["name"] for c in report["contexts"] for m in [*c["models"], *c["modules"]]}


def test_project_wiring_is_in_no_context_and_invents_no_dependency(shop, run_analysis):
    report = run_analysis(shop).report
    assert [w["file"] for w in report["project_wiring"]] == [
        "shop/__init__.py",
        "shop/settings.py",
        "shop/urls.py",
    ]
    assert "shop.urls" not in context_of(report)
    assert not [
        e for d in report["dependencies"] for e in d["evidence"] if e["file"] == "shop/urls.py"
    ]


def test_import_weight_does_not_depend_on_how_imports_are_written(shop, run_analysis):
    names = [f"n{i}" for i in range(11)]
    (shop / "catalog" / "helpers.py").write_text(
        "".join(f"{n} = {i}\n" for i, n in enumerate(names))
    )
    one = "from catalog.helpers import " + ", ".join(names) + "\n"
    spread = "".join(f"from catalog.helpers import {n}\n" for n in names)
    weights = []
    for text in (one, spread):
        (shop / "payments" / "uses_helpers.py").write_text(text)
        report = run_analysis(shop).report
        weights.append(
            sum(
                d["weight"]
                for d in report["dependencies"]
                if (d["source"], d["target"], d["kind"]) == ("payments", "catalog", "import")
            )
        )
    assert weights[0] == weights[1] > 0


def test_the_reference_monoliths_core_package_is_an_explicit_shared_kernel(tmp_path):
    report = report_of(MONOLITH, tmp_path)
    kernel = {k["file"] for k in report["shared_kernel"]}
    assert {"core/models.py", "core/money.py", "core/permissions.py"} <= kernel
    contexts = {c["name"]: c for c in report["contexts"]}
    assert contexts["shared-kernel"]["models"] == []
    assert "monolith.core.money" in contexts["shared-kernel"]["modules"]
    # No business context lost its models to the kernel.
    assert contexts["payments"]["models"] and contexts["orders"]["models"]
    order = [e["context"] for e in report["extraction_order"]]
    assert order[-1] == "shared-kernel" or contexts[order[-1]]["models"] == []
    for text in (render_text(report), render_markdown(report)):
        assert "Shared kernel (owns no model" in text and "core/money.py" in text


def test_hubs_are_shared_reference_and_contrib_models_are_listed(tmp_path):
    report = report_of(MONOLITH, tmp_path)
    hubs = {h["model"]: h for h in report["shared_reference"]}
    assert set(hubs["catalog.Product"]["referenced_by"]) >= {"cart", "inventory", "orders"}
    external = {x["model"]: x for x in report["external_models"]}
    assert "customers" in {u["context"] for u in external["auth.User"]["used_by"]}
    assert report["seams"]["clean"] is True and "density" in report["seams"]["message"]


def test_a_through_model_on_third_party_bases_is_a_model_and_tags_are_external(tmp_path):
    root = write(
        tmp_path / "p",
        {
            "blog/__init__.py": "",
            "blog/models.py": "from django.db import models\n"
            "from taggit.models import TaggedItemBase\n"
            "from taggit.managers import TaggableManager\n"
            "class TaggedPost(TaggedItemBase):\n"
            "    pass\n"
            "class Post(models.Model):\n"
            "    tag = models.ForeignKey('taggit.Tag', on_delete=models.CASCADE)\n",
        },
    )
    report = report_of(root, tmp_path)
    models = {m for c in report["contexts"] for m in c["models"]}
    assert {"blog.Post", "blog.TaggedPost"} <= models
    assert any("TaggedPost counted as model" in u["message"] for u in report["stats"]["unresolved"])
    assert [x["model"] for x in report["external_models"]] == ["taggit.Tag"]


def test_tiny_contexts_join_the_one_they_are_most_coupled_with_unless_isolated():
    # 12 pairs of models; pairs 0-9 are strong communities, "lone" is linked to pair 0 only
    # weakly, "island" is linked to nothing. 40+ models make one-model contexts tiny.
    nodes, weights = [], {}
    for p in range(10):
        group = [f"model:p{p}.m{i}" for i in range(4)]
        nodes += group
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                weights[(a, b)] = 10.0
    nodes += ["model:lone.x", "model:island.y"]
    weights[("model:lone.x", "model:p0.m0")] = 0.5
    assignment = cluster(nodes, weights, anchors=frozenset(nodes))
    assert assignment["model:lone.x"] == assignment["model:p0.m0"]
    assert assignment["model:island.y"] not in {
        assignment[n] for n in nodes if n != "model:island.y"
    }
    assert len(set(assignment.values())) == 11


def test_split_contexts_are_named_after_their_central_model(tmp_path):
    a = "".join(f"class A{i}(models.Model):\n    pass\n" for i in range(3))
    b = "".join(
        f"class B{i}(models.Model):\n    hub = models.ForeignKey('big.B0', 0)\n"
        for i in range(1, 3)
    )
    root = write(
        tmp_path / "p",
        {
            "big/__init__.py": "",
            "big/models.py": "from django.db import models\n"
            + a.replace("pass", "x = models.ForeignKey('big.A0', 0)", 2)
            + "class B0(models.Model):\n    pass\n"
            + b,
        },
    )
    names = sorted(c["name"] for c in report_of(root, tmp_path)["contexts"])
    assert names == ["big", "big-b0"]


def test_contexts_n_and_the_resolution_sweep(tmp_path):
    asked = json.loads(
        cli(str(MONOLITH), "--json", "--no-cache", "--contexts", "6", "--sweep").stdout
    )
    assert asked["metrics"]["contexts"] == 6
    assert all(c["models"] or c["modules"] for c in asked["contexts"])  # never an empty context
    rows = asked["resolutions"]  # what each resolution gives when no count is asked for
    assert [r["resolution"] for r in rows] == [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    assert rows[0]["contexts"] < rows[-1]["contexts"]
    default = report_of(MONOLITH, tmp_path)["metrics"]
    at_one = next(r for r in rows if r["resolution"] == 1.0)
    assert (at_one["contexts"], at_one["modularity"]) == (
        default["contexts"],
        default["modularity"],
    )


def test_a_proposal_without_clean_seams_says_so_with_the_figures():
    owners = ["a", "b", "c", "d"]
    everyone = [{"source": s, "target": t} for s in owners for t in owners if s != t]
    dense = findings.seams(everyone, owners, icp=0.45)
    assert dense["clean"] is False and dense["density"] == 1.0
    assert dense["message"].startswith("No clean seams: 12 of 12 ordered pairs")
    assert "ICP 0.450" in dense["message"]
    sparse = findings.seams(everyone[:2], owners, icp=0.1)
    assert sparse["clean"] is True and sparse["message"].startswith("Seams:")

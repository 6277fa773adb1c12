"""Demo step: analyze the bundled monolith's source and print the proposed contexts."""

from __future__ import annotations

from strangler.demo.context import DemoContext, DemoError

TITLE = "Analyze the monolith: proposed bounded contexts, seams with evidence, extraction order"


def run(ctx: DemoContext) -> None:
    from strangler_analyzer.api import AnalyzeError, Options, analyze
    from strangler_analyzer.html import render_html

    source = ctx.reference / "monolith"  # read as files: nothing is imported or run
    try:
        outcome = analyze(
            Options(path=str(source), jobs=1, cache_dir=str(ctx.work_dir / "analyze-cache"))
        )
    except AnalyzeError as error:
        raise DemoError(f"analyzing {source} failed: {error}") from error
    report = outcome.report
    stats, metrics = report["stats"], report["metrics"]
    ctx.log(
        f"{stats['files']} files, {stats['models']} models in {stats['apps']} apps, "
        f"read in {outcome.seconds:.2f} s (nothing imported or run)"
    )
    ctx.log(
        f"{metrics['contexts']} contexts proposed; modularity {metrics['modularity']:.3f} "
        f"vs {metrics['baseline']['modularity']:.3f} for one context per app"
    )
    for context in report["contexts"]:
        models = (
            ", ".join(
                m.split(".", 1)[1] if m.startswith(f"{context['name']}.") else m
                for m in context["models"]
            )
            or "(no models)"
        )
        ctx.log(f"  {context['name']:<14} {models}")
    ctx.log("heaviest seams (source -> target, kind, first evidence):")
    heaviest = sorted(
        report["dependencies"], key=lambda d: (-d["weight"], d["source"], d["target"], d["kind"])
    )[:5]
    for dep in heaviest:
        first = dep["evidence"][0]
        ctx.log(
            f"  {dep['source']} -> {dep['target']} {dep['kind']}: "
            f"{first['file']}:{first['line']}  {first['detail'][:60]}"
        )
    for unit in report["omnipresent"]:
        ctx.log(
            f"omnipresent, in no context: {unit['file']} uses the models of "
            f"{len(unit['contexts'])} contexts ({unit['count']} sites); "
            f"{unit['suggestion']}"
        )
    order = ", ".join(e["context"] for e in report["extraction_order"])
    ctx.log(f"extraction order, easiest first: {order}")
    page = ctx.work_dir / "contexts.html"
    page.write_text(render_html(report), encoding="utf-8")
    ctx.log(f"clickable context map: {page}")
    ctx.facts["analysis"] = {"contexts": [c["name"] for c in report["contexts"]], "html": str(page)}

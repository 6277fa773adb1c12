"""Render a report dict as text, JSON, Markdown, Graphviz dot or Mermaid (pure functions)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

FORMATS = ("text", "json", "md", "html", "dot", "mermaid")
METRIC_ROWS = (
    ("modularity", "Newman modularity Q", "higher"),
    ("icp", "ICP: share of dependency weight crossing contexts", "lower"),
    ("ifn", "IFN: mean elements used from outside per context", "lower"),
    ("ned", "NED: share of elements in tiny (<5) or huge (>20) contexts", "lower"),
    ("sm", "SM: structural modularity", "higher"),
)


def render(report: dict, fmt: str, *, seconds: float | None = None, cache_line: str = "") -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "dot":
        return render_dot(report)
    if fmt == "mermaid":
        return render_mermaid(report)
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    return render_text(report, seconds=seconds, cache_line=cache_line)


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def context_links(report: dict) -> list[tuple[str, str, float, list[str]]]:
    """Dependencies folded to one link per (source, target): total weight and kinds."""
    links: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, set()])
    for d in report["dependencies"]:
        link = links[(d["source"], d["target"])]
        link[0] += d["weight"]
        link[1].add(d["kind"])
    return [(s, t, round(w, 4), sorted(kinds)) for (s, t), (w, kinds) in sorted(links.items())]


def _omnipresent_heading(report: dict) -> str:
    return (
        f"Omnipresent code, in no context (uses the models of "
        f"{report['options'].get('omnipresent_min_apps', 0)} or more apps)"
    )


def _touched(unit: dict) -> str:
    return ", ".join(f"{c['context']} ({c['count']})" for c in unit["contexts"])


def _top_dependencies(report: dict, count: int) -> list[dict]:
    return sorted(
        report["dependencies"], key=lambda d: (-d["weight"], d["source"], d["target"], d["kind"])
    )[:count]


def render_text(report: dict, *, seconds: float | None = None, cache_line: str = "") -> str:
    s, m, b = report["stats"], report["metrics"], report["metrics"]["baseline"]
    took = f" in {seconds:.2f} s" if seconds is not None else ""
    lines = [
        f"{report['project']['name']}: {s['files']} files, {s['lines']:,} lines, "
        f"{s['models']} models in {s['apps']} apps{took}"
        + (f" ({cache_line})" if cache_line else ""),
        "",
        f"Proposal: {m['contexts']} contexts (per-app baseline: {b['contexts']})",
    ]
    for key, label, better in METRIC_ROWS:
        lines.append(f"  {label:<62} {m[key]:>8.3f}  baseline {b[key]:>8.3f}  ({better} is better)")
    if report.get("resolutions"):
        lines += ["", "Across resolutions (pick one with [clustering] resolution or --contexts N):"]
        lines.append("  resolution  contexts  modularity    ICP    NED")
        lines += [
            f"  {r['resolution']:>10g}  {r['contexts']:>8}  {r['modularity']:>10.3f}"
            f"  {r['icp']:.3f}  {r['ned']:.3f}"
            for r in report["resolutions"]
        ]
    if "seams" in report:
        lines += ["", report["seams"]["message"]]
    lines += ["", "Contexts:"]
    for c in report["contexts"]:
        lines.append(
            f"  {c['name']:<24} {len(c['models']):>3} models {len(c['modules']):>4} "
            f"modules {len(c['endpoints']):>3} endpoints {len(c['tasks']):>3} tasks  "
            f"apps: {', '.join(c['apps'])}"
        )
    omnipresent = report.get("omnipresent", [])
    if omnipresent:
        lines += ["", _omnipresent_heading(report) + ":"]
        for unit in omnipresent:
            first = unit["contexts"][0]["evidence"][0]
            lines += [
                f"  {unit['file']}  {len(unit['apps'])} apps, {len(unit['contexts'])} "
                f"contexts, {unit['count']} sites: {_touched(unit)}",
                f"    e.g. {first['file']}:{first['line']}  {first['detail']}",
            ]
        lines.append(f"  suggestion: {omnipresent[0]['suggestion']}")
    lines += _findings_text(report)
    lines += ["", "Heaviest dependencies between contexts:"]
    for d in _top_dependencies(report, 12):
        first = d["evidence"][0] if d["evidence"] else None
        where = f"  e.g. {first['file']}:{first['line']}  {first['detail']}" if first else ""
        lines.append(
            f"  {d['source']} -> {d['target']}  {d['kind']}  weight {d['weight']:g} "
            f"({d['count']} sites){where}"
        )
    lines += ["", "Extraction order (easiest first):"]
    for e in report["extraction_order"]:
        lines.append(f"  {e['rank']}. {e['context']}: {e['reason']}")
    if s["parse_errors"]:
        lines += ["", f"Files that did not parse ({len(s['parse_errors'])}), skipped:"]
        lines += [f"  {p['file']}:{p['line']}: {p['message']}" for p in s["parse_errors"][:10]]
    if s["unresolved"]:
        lines += ["", f"Unresolved constructs: {len(s['unresolved'])} (see --format json)"]
    if s.get("skipped"):
        lines += ["", f"Left out, not analyzed (see --format json): {left_out(s['skipped'])}"]
    return "\n".join(lines) + "\n"


def left_out(skipped: list[dict]) -> str:
    """What the walk left out, counted by reason: 'excluded: 1; tests (use --include-tests): 40'."""
    reasons = Counter(s["reason"] for s in skipped)
    return "; ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))


def _findings_text(report: dict) -> list[str]:
    """Shared kernel, shared reference models, external models and project wiring."""
    lines = []
    kernel = report.get("shared_kernel", [])
    if kernel:
        lines += ["", "Shared kernel (owns no model, imported by the code of many apps):"]
        lines += [
            f"  {k['file']}  imported by {len(k['imported_by_apps'])} apps: "
            f"{', '.join(k['imported_by_apps'])}"
            for k in kernel
        ]
        lines.append(
            "  publish it as a library the services share; to split it, move each part to "
            "the one context that uses it (see the dependencies out of shared-kernel)"
        )
    hubs = report.get("shared_reference", [])
    if hubs:
        lines += ["", "Shared reference models (related to from 3+ other contexts):"]
        lines += [
            f"  {h['model']} ({h['context']}): referenced by {', '.join(h['referenced_by'])}"
            for h in hubs
        ]
        lines.append(f"  suggestion: {hubs[0]['suggestion']}")
    external = report.get("external_models", [])
    if external:
        lines += ["", "External models (Django contrib, packages) and who uses them:"]
        lines += [
            f"  {x['model']}: "
            + ", ".join(f"{u['context'] or '-'} ({u['count']})" for u in x["used_by"])
            for x in external
        ]
    wiring = report.get("project_wiring", [])
    if wiring:
        lines += ["", "Project wiring, in no context: " + ", ".join(w["file"] for w in wiring)]
    return lines


def render_markdown(report: dict) -> str:
    s, m, b = report["stats"], report["metrics"], report["metrics"]["baseline"]
    out = [
        f"# Proposed bounded contexts for {report['project']['name']}",
        "",
        f"{s['files']} files, {s['lines']:,} lines, {s['models']} models in {s['apps']} apps. "
        f"Proposal: **{m['contexts']} contexts** (one per app would be {b['contexts']}).",
        "",
        "| metric | proposal | per-app baseline | better |",
        "|---|---:|---:|---|",
    ]
    out += [
        f"| {label} | {m[key]:.3f} | {b[key]:.3f} | {better} |"
        for key, label, better in METRIC_ROWS
    ]
    if "seams" in report:
        out += [
            "",
            f"**{report['seams']['message']}**"
            if not report["seams"]["clean"]
            else report["seams"]["message"],
        ]
    out += ["", "## Contexts", ""]
    for c in report["contexts"]:
        out += [
            f"### {c['name']}",
            "",
            f"- apps: {', '.join(c['apps']) or '-'}",
            f"- models: {', '.join(f'`{x}`' for x in c['models']) or '-'}",
            f"- tables: {', '.join(f'`{x}`' for x in c['tables']) or '-'}",
            f"- tasks: {', '.join(f'`{x}`' for x in c['tasks']) or '-'}",
            f"- endpoints ({len(c['endpoints'])}): "
            + (", ".join(f"`{x}`" for x in c["endpoints"][:10]) or "-")
            + (" …" if len(c["endpoints"]) > 10 else ""),
            f"- modules: {len(c['modules'])}",
            f"- cohesion {c['metrics']['cohesion']:.3f}, coupling "
            f"{c['metrics']['coupling']:.3f}, interface {c['metrics']['interface']}",
            "",
        ]
    omnipresent = report.get("omnipresent", [])
    if omnipresent:
        out += [
            f"## {_omnipresent_heading(report)}",
            "",
            "Each uses the data of many contexts and belongs to none, so its uses are not "
            "counted as dependencies between contexts, nor in the metrics. For each: "
            f"{omnipresent[0]['suggestion']}.",
            "",
        ]
    for unit in omnipresent:
        out += [
            f"### `{unit['file']}` ({unit['module']})",
            "",
            f"Uses the models of {len(unit['apps'])} apps in {len(unit['contexts'])} "
            f"contexts, {unit['count']} sites.",
            "",
        ]
        for c in unit["contexts"]:
            out.append(
                f"- **{c['context']}** ({', '.join(c['kinds'])}; "
                f"{', '.join(f'`{m}`' for m in c['models'])})"
            )
            out += [f"  - `{e['file']}:{e['line']}` `{e['detail']}`" for e in c["evidence"]]
        out.append("")
    for line in _findings_text(report):  # the same findings as the text output, as lists
        if line.startswith("  "):
            out.append(f"- {line.strip()}")
        elif line:
            out += [f"## {line.rstrip(':')}", ""]
        else:
            out.append("")
    out += ["", "## Dependencies between contexts", ""]
    for d in report["dependencies"]:
        out += [
            f"### {d['source']} → {d['target']} ({d['kind']}, weight {d['weight']:g}, "
            f"{d['count']} sites)",
            "",
            f"How to cut it: {d['suggestion']}.",
            "",
        ]
        out += [f"- `{e['file']}:{e['line']}` `{e['detail']}`" for e in d["evidence"]]
        if d["count"] > len(d["evidence"]):
            out.append(f"- … and {d['count'] - len(d['evidence'])} more")
        out.append("")
    out += ["## Extraction order", ""]
    out += [f"{e['rank']}. **{e['context']}**: {e['reason']}" for e in report["extraction_order"]]
    return "\n".join(out) + "\n"


def _dot_id(name: str) -> str:
    return json.dumps(name)


def render_dot(report: dict) -> str:
    out = ["digraph contexts {", "  rankdir=LR;", '  node [shape=box, style="rounded"];']
    for c in report["contexts"]:
        label = f"{c['name']}\\n{len(c['models'])} models, {len(c['modules'])} modules"
        out.append(f'  {_dot_id(c["name"])} [label="{label}"];')
    for s, t, w, kinds in context_links(report):
        out.append(
            f'  {_dot_id(s)} -> {_dot_id(t)} [label="{", ".join(kinds)} ({w:g})", '
            f"penwidth={min(1 + w / 10, 6):.1f}];"
        )
    for unit in report.get("omnipresent", []):
        node = _dot_id(f"omnipresent:{unit['file']}")
        out.append(
            f'  {node} [label="{unit["file"]}\\nomnipresent: in no context", '
            "shape=note, style=dashed];"
        )
        out += [
            f"  {node} -> {_dot_id(c['context'])} [style=dotted, color=gray];"
            for c in unit["contexts"]
        ]
    out.append("}")
    return "\n".join(out) + "\n"


def render_mermaid(report: dict) -> str:
    ids = {c["name"]: f"c{i}" for i, c in enumerate(report["contexts"])}
    out = ["graph LR"]
    for c in report["contexts"]:
        out.append(f'  {ids[c["name"]]}["{c["name"]}<br/>{len(c["models"])} models"]')
    for s, t, w, kinds in context_links(report):
        out.append(f'  {ids[s]} -->|"{", ".join(kinds)} ({w:g})"| {ids[t]}')
    for i, unit in enumerate(report.get("omnipresent", [])):
        out.append(f'  o{i}>"{unit["file"]}<br/>omnipresent: in no context"]')
        out += [f"  o{i} -.-> {ids[c['context']]}" for c in unit["contexts"]]
    return "\n".join(out) + "\n"

"""The parity report as text, JSON or one offline HTML page (no external assets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from strangler.parity.summary import (
    EndpointSummary,
    FieldSummary,
    ParitySummary,
    shown_percent,
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _verdict(f: FieldSummary) -> str:
    verdict = "REGRESSION" if f.regression else "noise" if f.noise else "below thresholds"
    return f"{verdict} ({f.detail})" if f.detail else verdict


def _skipped(skipped: tuple[tuple[str, int], ...]) -> str:
    """`; 3 not compared (3 body_too_large)`, or "" when every exchange was compared."""
    if not skipped:
        return ""
    reasons = ", ".join(f"{n} {reason}" for reason, n in skipped)
    return f"; {sum(n for _, n in skipped)} not compared ({reasons})"


def render_json(summaries: Sequence[ParitySummary]) -> str:
    return json.dumps({"routes": [s.as_dict() for s in summaries]}, indent=2)


def render_text(summaries: Sequence[ParitySummary]) -> str:
    lines: list[str] = []
    for s in summaries:
        lines.append(
            f"route {s.route} since {_when(s.since)}: {s.samples} comparisons, "
            f"parity {shown_percent(s.parity)} (raw {shown_percent(s.raw_parity)})"
            + (f"; {s.skipped} not compared" if s.skipped else "")
        )
        if s.samples and not s.primary_answered:
            lines.append("  warning: the primary answered no request below 400")
        for e in s.endpoints:
            lines.append(
                f"  {e.endpoint}: {e.samples} samples, parity {shown_percent(e.parity)} "
                f"(raw {shown_percent(e.raw_parity)}), latency p50/p99 ms primary "
                f"{_ms(e.primary_latency.p50_ms)}/{_ms(e.primary_latency.p99_ms)} candidate "
                f"{_ms(e.candidate_latency.p50_ms)}/{_ms(e.candidate_latency.p99_ms)}"
                + _skipped(e.skipped)
            )
            statuses = ", ".join(f"{p}->{c}: {n}" for p, c, n in e.statuses)
            lines.append(f"    status primary->candidate: {statuses}")
            for f in e.fields:
                lines.append(
                    f"    {f.path:<40} {f.kind:<12} {f.raw:>7} differ, noise {f.noise:>7.1f}"
                    f"  {_verdict(f)}"
                )
        if s.data is not None:
            lines.append(
                f"  data parity at {_when(s.data.at)}: {s.data.rows_compared} rows compared in "
                f"{', '.join(s.data.tables) or 'no tables'}, {s.data.drifted} drifted"
            )
        else:
            lines.append("  data parity: no reconcile result recorded")
    return "\n".join(lines) if lines else "no comparisons recorded"


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem}
th{background:#f3f3f3;text-align:left}.regression{color:#b00020;font-weight:600}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}
pre{background:#f7f7f7;padding:.5rem;overflow:auto;max-height:24rem;margin:0}
.bad{color:#b00020}.good{color:#08660b}
"""


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=True)
    except ValueError:
        return body


def _example(f: FieldSummary) -> str:
    if not f.example:
        return ""
    pair: dict[str, Any] = f.example
    sides = "".join(
        f"<div><h5>{side} {escape(str(pair[side]['status']))}</h5>"
        f'<pre data-side="{side}">{escape(_pretty(pair[side]["body"]))}</pre></div>'
        for side in ("primary", "candidate")
    )
    title = f"{escape(pair['method'])} {escape(pair['path'])}"
    return (
        f'<details class="example" data-field="{escape(f.path)}"><summary>example pair: '
        f'{title}</summary><div class="pair">{sides}</div></details>'
    )


def _endpoint_html(e: EndpointSummary) -> str:
    rows = "".join(
        f'<tr class="{"regression" if f.regression else ""}" data-field="{escape(f.path)}">'
        f"<td>{escape(f.path)}</td><td>{f.kind}</td><td>{f.raw}</td><td>{f.noise:.1f}</td>"
        f"<td>{escape(_verdict(f))}</td></tr>"
        for f in e.fields
    )
    matrix = "".join(f"<tr><td>{p}</td><td>{c}</td><td>{n}</td></tr>" for p, c, n in e.statuses)
    examples = "".join(_example(f) for f in e.fields if f.regression)
    return (
        f'<section class="endpoint" data-endpoint="{escape(e.endpoint)}">'
        f"<h3>{escape(e.endpoint)}</h3>"
        f'<p>{e.samples} samples, parity <b class="parity">{shown_percent(e.parity)}</b> '
        f"(raw {shown_percent(e.raw_parity)}); latency p50/p99 ms primary "
        f"{_ms(e.primary_latency.p50_ms)}/{_ms(e.primary_latency.p99_ms)}, candidate "
        f"{_ms(e.candidate_latency.p50_ms)}/{_ms(e.candidate_latency.p99_ms)}"
        f'<span class="skipped">{escape(_skipped(e.skipped))}</span></p>'
        f"<table><tr><th>primary status</th><th>candidate status</th><th>count</th></tr>"
        f"{matrix}</table>"
        f"<table><tr><th>field</th><th>kind</th><th>differ</th><th>noise</th><th>verdict</th>"
        f"</tr>{rows}</table>{examples}</section>"
    )


def render_html(summaries: Sequence[ParitySummary], gate_line: str = "") -> str:
    """One self-contained page: no scripts, styles or fonts fetched from anywhere."""
    parts = []
    for s in summaries:
        data = (
            f"<p class='data'>data parity at {_when(s.data.at)}: {s.data.rows_compared} rows "
            f"compared, <b>{s.data.drifted}</b> drifted</p>"
            if s.data
            else "<p class='data'>data parity: no reconcile result recorded</p>"
        )
        parts.append(
            f'<section class="route" data-route="{escape(s.route)}"><h2>route '
            f"{escape(s.route)}</h2><p>since {_when(s.since)}: {s.samples} comparisons, "
            f'parity <b class="parity">{shown_percent(s.parity)}</b> '
            f"(raw {shown_percent(s.raw_parity)})</p>"
            f"{data}{''.join(_endpoint_html(e) for e in s.endpoints)}</section>"
        )
    gate = f'<p id="gate">{escape(gate_line)}</p>' if gate_line else ""
    body = "".join(parts) or "<p>no comparisons recorded</p>"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>strangler parity report</title>"
        f"<style>{STYLE}</style></head><body><h1>Parity report</h1>{gate}{body}</body></html>"
    )

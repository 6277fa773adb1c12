"""The HTML report: one self-contained offline file that reads as a context map.

No CDN and no external requests: the report JSON, the CSS and the script are inlined. The map
is laid out by a deterministic force simulation (clusters apart, labels clear of each other),
links are as wide as their weight and can be filtered by kind and weight; clicking a context
(or opening ``report.html#context=NAME``) lists its models, modules, URL prefixes and every
dependency with its file:line evidence.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

METRIC_HELP = {
    "modularity": "Newman's Q: how much denser links are inside contexts than chance (higher)",
    "icp": "share of dependency weight that crosses contexts (lower)",
    "ifn": "mean number of elements per context used from other contexts (lower)",
    "ned": "share of elements in contexts under 5 or over 20 elements (lower)",
    "sm": "structural modularity: cohesion inside minus coupling between contexts (higher)",
}


def _asset(name: str) -> str:
    return (files(__package__) / name).read_text(encoding="utf-8")


def render_html(report: dict) -> str:
    """One offline HTML page holding the report and a script that draws it."""
    data = json.dumps(report, sort_keys=True, ensure_ascii=False).replace("</", "<\\/")
    help_data = json.dumps(METRIC_HELP).replace("</", "<\\/")
    title = html.escape(f"Bounded contexts: {report['project']['name']}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_asset("report.css")}</style></head>
<body><div id="map"><h1>{title}</h1>
<p id="summary"></p><p id="seams"></p>
<div id="filters"></div>
<div id="canvas"></div>
<div id="legend"></div>
<div class="panels">
<section><h2>Find a model or module</h2>
<input id="search" type="search" placeholder="e.g. Order, payments.models" autocomplete="off">
<ul id="found"></ul></section>
<section><h2>Stats</h2><table id="stats"></table></section>
<section><h2>Metrics</h2><table id="metrics">
<tr><th>metric</th><th>proposal</th><th>per-app</th><th>what it says</th></tr></table></section>
<section><h2>Heaviest dependencies</h2><table id="heaviest"></table></section>
<section><h2>Extraction order</h2><div id="contexts"></div></section>
<section id="omnipresent"></section>
</div></div><div id="side"></div>
<script type="application/json" id="report">{data}</script>
<script type="application/json" id="metric-help">{help_data}</script>
<script>{_asset("report.js")}</script></body></html>
"""

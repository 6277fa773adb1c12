"""The HTML report: one self-contained offline file with a clickable context map.

No CDN and no external requests: the report JSON, the CSS and the script are inlined. Clicking
a context (or opening ``report.html#context=NAME``) lists its models, modules and every
dependency with its file:line evidence.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files


def _asset(name: str) -> str:
    return (files("strangler_analyzer") / name).read_text(encoding="utf-8")


def render_html(report: dict) -> str:
    """One offline HTML page holding the report and a script that draws it."""
    data = json.dumps(report, sort_keys=True, ensure_ascii=False).replace("</", "<\\/")
    title = html.escape(f"Bounded contexts: {report['project']['name']}")
    m = report["metrics"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_asset("report.css")}</style></head>
<body><div id="map"><h1>{title}</h1>
<p style="margin:0 12px">{m["contexts"]} contexts proposed
(one per app: {m["baseline"]["contexts"]}).
Click a context or an arrow to see the evidence.</p>
<div id="contexts" style="margin:8px 12px"></div>
<table id="metrics" style="margin:0 12px">
<tr><th>metric</th><th>proposal</th><th>per-app baseline</th></tr></table>
<div id="omnipresent" style="margin:8px 12px"></div>
</div><div id="side"></div>
<script type="application/json" id="report">{data}</script>
<script>{_asset("report.js")}</script></body></html>
"""

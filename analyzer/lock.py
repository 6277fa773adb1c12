"""--lock: write boundaries.toml pinning today's proposal, so --check holds the line in CI.

Every model and clustered module is pinned to its context and every dependency that exists
today is allowed, so ``--check`` on the unchanged tree passes and any new crossing fails.
"""

from __future__ import annotations

import json
from collections import defaultdict

from .boundaries import Boundaries
from .weights import DEFAULT_WEIGHTS


def _array(key: str, values: list[str]) -> list[str]:
    if not values:
        return [f"{key} = []"]
    return [f"{key} = [", *(f"  {json.dumps(v)}," for v in values), "]"]


def locked_contexts(report: dict) -> dict[str, dict[str, list[str]]]:
    """Context -> apps (all of whose models it holds), models, modules and depends_on."""
    contexts = {
        c["name"]: {"models": list(c["models"]), "modules": list(c["modules"])}
        for c in report["contexts"]
    }
    depends: dict[str, set[str]] = defaultdict(set)
    for d in report["dependencies"]:
        depends[d["source"]].add(d["target"])
    for unit in report["omnipresent"]:
        if unit["context"] in contexts:
            contexts[unit["context"]]["modules"].append(unit["module"])
            for d in unit["dependencies"]:
                depends[d["source"]].add(d["target"])
    holder: dict[str, set[str]] = defaultdict(set)
    for name, c in contexts.items():
        for key in c["models"]:
            holder[key.partition(".")[0]].add(name)
    result = {}
    for name, c in sorted(contexts.items()):
        apps = sorted(app for app, names in holder.items() if names == {name})
        result[name] = {
            "apps": apps,
            "models": sorted(c["models"]),
            "modules": sorted(c["modules"]),
            "depends_on": sorted(depends[name] - {name}),
        }
    return result


def render_lock(report: dict, boundaries: Boundaries) -> str:
    """The TOML text of the locked file (the clustering options and weights carried over)."""
    lines = [
        f"# Locked by `strangler analyze --lock` for {report['project']['name']}: every model",
        "# and module pinned where it stands, every dependency of today allowed. Run",
        "# `strangler analyze PATH --check THIS_FILE` in CI; a new crossing fails it. To allow",
        "# one on purpose, add the context to depends_on; re-lock after a planned move.",
        "",
        "[clustering]",
        f"seed = {boundaries.seed}",
        f"resolution = {boundaries.resolution!r}",
        f"omnipresent_min_apps = {boundaries.omnipresent_min_apps}",
    ]
    changed = {k: v for k, v in sorted(boundaries.weights.items()) if DEFAULT_WEIGHTS[k] != v}
    if changed:
        lines += ["", "[weights]", *(f"{k} = {v!r}" for k, v in changed.items())]
    for name, c in locked_contexts(report).items():
        lines += ["", "[[context]]", f"name = {json.dumps(name)}"]
        for key in ("apps", "models", "modules", "depends_on"):
            lines += _array(key, c[key])
    homeless = [u["module"] for u in report["omnipresent"] if not u["context"]]
    if homeless:
        lines += ["", "# In no app and no context, so no rule applies (pin them under modules):"]
        lines += [f"#   {m}" for m in homeless]
    return "\n".join(lines) + "\n"

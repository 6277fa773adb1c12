"""Code that is no business capability: project wiring, and the shared kernel everyone imports.

Project wiring (settings, the root URLconf, WSGI/ASGI entry points) routes to every app; placed
in a context it would invent a dependency from that context to all the others, so it belongs to
none. A shared kernel is the supplier side of Bunch's omnipresent modules (Mancoridis et al.,
ICSM 1999): a module that owns no model, that the code of many apps imports, and that itself
uses the models of at most one app (base classes, template helpers, constants). Scattered over
contexts it creates fake dependencies; gathered in one explicit context it is what it is, a
library every service needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

KERNEL = "shared-kernel"
KERNEL_MIN_APPS = 4  # importers from this many other apps make a module a kernel candidate
KERNEL_MAX_MODEL_APPS = 1  # ... if it uses the models of at most this many apps itself
SUPPLY = frozenset({"import", "abstract_base"})
WIRING_NAMES = ("urls", "wsgi", "asgi", "celery")


def project_wiring(
    settings_modules: Iterable[str], module_app: Mapping[str, str], model_apps: Iterable[str]
) -> frozenset[str]:
    """Module nodes of the settings and, next to them, the root URLconf, WSGI/ASGI and Celery
    app modules and the project package itself.

    Not next to a settings module inside an app that owns models (`model_apps`, by label): a
    business app's own defaults or standalone test settings, whose package and URLconf are the
    app's code, with its dependencies to check.
    """
    known = set(module_app)
    business = set(model_apps)
    found = set()
    for settings in settings_modules:
        found.add(settings)
        package = settings.rpartition(".")[0]
        if settings.rpartition(".")[2] != "settings" and package.endswith(".settings"):
            found.update(m for m in known if m.startswith(f"{package}."))  # settings/*.py
        if module_app.get(settings, "") in business:
            continue
        homes = {package, package.rpartition(".")[0]} - {""}
        found.update(f"{home}.{name}" for home in homes for name in WIRING_NAMES)
        found.add(package)  # the project package's __init__ (it loads the Celery app)
    return frozenset(f"module:{m}" for m in found if m in known)


def find_kernel(
    edges: Iterable[tuple[str, str, str]],
    node_app: Mapping[str, str],
    definers: frozenset[str],
    set_aside: frozenset[str],
) -> dict[str, tuple[str, ...]]:
    """Kernel module node -> the apps whose code imports it (``edges``: source, target, kind).

    ``node_app`` maps model and module nodes to their app ("" outside apps). Modules of an
    app that owns models move with that app (a signals module is its publishing interface);
    ``set_aside`` ones (omnipresent, wiring) are never kernel.
    """
    owners = {app for node, app in node_app.items() if node.startswith("model:")}
    importers: dict[str, set[str]] = defaultdict(set)
    model_apps: dict[str, set[str]] = defaultdict(set)
    for source, target, kind in edges:
        if source in set_aside:
            continue
        if kind in SUPPLY and target.startswith("module:"):
            app = node_app.get(source, "")
            if app and app != node_app.get(target, ""):
                importers[target].add(app)
        elif source.startswith("module:") and target.startswith("model:") and kind != "same_app":
            model_apps[source].add(node_app.get(target, ""))
    return {
        node: tuple(sorted(apps))
        for node, apps in sorted(importers.items())
        if len(apps) >= KERNEL_MIN_APPS
        and node not in definers
        and node not in set_aside
        and node_app.get(node, "") not in owners
        and len(model_apps[node]) <= KERNEL_MAX_MODEL_APPS
    }

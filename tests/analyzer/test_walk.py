"""Which files are read, what module each is, and what is left out (with the reason)."""

from pathlib import Path

from strangler_analyzer.walk import walk_project


def write(root: Path, *paths: str) -> None:
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x = 1\n")


def test_modules_follow_packages_and_everything_left_out_says_why(tmp_path):
    write(
        tmp_path,
        "src/shop/__init__.py",
        "src/shop/orders/__init__.py",
        "src/shop/orders/models.py",
        "src/shop/orders/migrations/__init__.py",
        "src/shop/orders/migrations/0001_initial.py",
        "src/shop/orders/tests/test_x.py",
        "src/shop/orders/test_views.py",
        "src/shop/orders/management/commands/test_emails.py",
        "scripts/setup.py",
        "tools/setup.py",
        "{{ project_name }}/settings.py",
        "venv/pyvenv.cfg",
        "venv/lib/site.py",
        ".git/hook.py",
        "node_modules/x.py",
        "legacy/old.py",
    )
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "src" / "shop" / "linked").symlink_to(tmp_path / "legacy")
    walk = walk_project(str(tmp_path), exclude=("legacy/*",))
    modules = {f.path: (f.module, f.is_migration) for f in walk.files}
    assert modules == {
        "src/shop/__init__.py": ("shop", False),
        "src/shop/orders/__init__.py": ("shop.orders", False),
        "src/shop/orders/models.py": ("shop.orders.models", False),
        # taiga-back: a command named test_emails sends test e-mails; it is no test
        "src/shop/orders/management/commands/test_emails.py": (
            "shop.orders.management.commands.test_emails",
            False,
        ),
        "src/shop/orders/migrations/__init__.py": ("shop.orders.migrations", False),
        "src/shop/orders/migrations/0001_initial.py": ("shop.orders.migrations.0001_initial", True),
        # two scripts claim the module name "setup": named by their paths instead
        "scripts/setup.py": ("scripts.setup", False),
        "tools/setup.py": ("tools.setup", False),
        # a project template grimp would skip is still read
        "{{ project_name }}/settings.py": ("settings", False),
    }
    assert dict(walk.skipped) == {
        ".git": "hidden directory",
        "legacy/old.py": "excluded",
        "node_modules": "installed packages",
        "src/shop/linked": "symbolic link to a directory (not followed)",
        "src/shop/orders/test_views.py": "tests (use --include-tests)",
        "src/shop/orders/tests": "tests (use --include-tests)",
        "venv": "virtual environment",
    }
    with_tests = walk_project(str(tmp_path), include_tests=True)
    assert "src/shop/orders/tests/test_x.py" in {f.path for f in with_tests.files}


def test_folders_without_init_inside_a_package_are_namespace_packages(tmp_path):
    # taiga-back: taiga/importers/jira/ and .../attachments/management/ have no __init__.py,
    # yet Python 3 imports them as taiga.importers.jira.normal and Django finds the command.
    write(
        tmp_path,
        "shop/__init__.py",
        "shop/importers/__init__.py",
        "shop/importers/jira/normal.py",
        "shop/importers/jira/common.py",
        "shop/orders/__init__.py",
        "shop/orders/management/commands/__init__.py",
        "shop/orders/management/commands/resync.py",
        "shop/{{ tpl }}/conf.py",
        "scripts/common.py",
    )
    modules = {f.path: f.module for f in walk_project(str(tmp_path)).files}
    assert modules["shop/importers/jira/normal.py"] == "shop.importers.jira.normal"
    assert modules["shop/importers/jira/common.py"] == "shop.importers.jira.common"
    assert (
        modules["shop/orders/management/commands/resync.py"]
        == "shop.orders.management.commands.resync"
    )
    assert modules["scripts/common.py"] == "common"  # a top-level folder is not a package
    assert not modules["shop/{{ tpl }}/conf.py"].startswith("shop.")  # not importable

"""`strangler analyze` on the fixture shop: the proposal, its evidence, outputs and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strangler_analyzer.boundaries import parse_boundaries


def cli(*args: str, seed: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strangler", "analyze", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )


def dependency(report: dict, source: str, target: str, kind: str) -> dict:
    found = [
        d
        for d in report["dependencies"]
        if (d["source"], d["target"], d["kind"]) == (source, target, kind)
    ]
    assert found, f"no {kind} dependency {source} -> {target}"
    return found[0]


def evidence(dep: dict) -> set[tuple[str, int]]:
    return {(e["file"], e["line"]) for e in dep["evidence"]}


def test_each_app_becomes_a_context_and_couplings_carry_file_and_line(shop, run_analysis):
    report = run_analysis(shop).report
    contexts = {c["name"]: c for c in report["contexts"]}
    assert set(contexts) == {"catalog", "customers", "inventory", "orders", "payments"}
    assert contexts["orders"]["models"] == ["orders.Order", "orders.OrderLine"]
    assert contexts["catalog"]["tables"] == ["catalog_category", "catalog_products"]
    assert contexts["payments"]["tasks"] == ["payments.tasks.charge"]
    # URL -> view -> the models the view touches (model = Order on a DetailView)
    assert contexts["orders"]["endpoints"] == [
        "orders/<int:pk>/ -> orders.views.OrderDetail (orders.Order)"
    ]
    assert contexts["payments"]["endpoints"] == [
        "api/payments -> payments.views.PaymentViewSet (payments.Payment)"  # include() prefix
    ]
    # A string FK, AUTH_USER_MODEL, a custom signal, post_save.connect, .delay and raw SQL.
    assert ("orders/models.py", 12) in evidence(dependency(report, "orders", "catalog", "relation"))
    assert ("orders/models.py", 6) in evidence(
        dependency(report, "orders", "customers", "relation")
    )
    signal = dependency(report, "inventory", "orders", "signal")
    assert {("inventory/receivers.py", 9), ("inventory/receivers.py", 19)} <= evidence(signal)
    assert "event" in signal["suggestion"]
    assert ("orders/services.py", 10) in evidence(dependency(report, "orders", "payments", "task"))
    assert ("inventory/reports.py", 9) in evidence(
        dependency(report, "inventory", "catalog", "raw_sql")
    )
    # product__orderline__order__status: a lookup across a reverse and a forward relation
    assert ("inventory/reports.py", 14) in evidence(
        dependency(report, "inventory", "orders", "read")
    )
    assert ("orders/migrations/0001_initial.py", 6) in evidence(
        dependency(report, "orders", "catalog", "migration")
    )
    stats = report["stats"]
    assert stats["parse_errors"] == [
        {"file": "payments/broken.py", "line": 5, "message": "syntax error: invalid syntax"}
    ]
    assert {
        "file": "inventory/reports.py",
        "line": 10,
        "message": "get_model() with a computed app or model name",
    } in stats["unresolved"]
    assert set(report["metrics"]) >= {"modularity", "icp", "ifn", "ned", "sm", "baseline"}
    order = [e["context"] for e in report["extraction_order"]]
    assert sorted(order) == sorted(contexts)
    assert order[-1] in ("orders", "catalog")  # the most depended-upon go last


def test_constraints_from_boundaries_toml_shape_the_proposal(shop, run_analysis):
    boundaries, problems = parse_boundaries(
        '[[context]]\nname = "fulfilment"\napps = ["orders", "inventory"]\n'
        '[[together]]\nitems = ["payments", "customers.User"]\n'
    )
    assert problems == []
    contexts = {c["name"]: c for c in run_analysis(shop, boundaries).report["contexts"]}
    assert {"orders.Order", "inventory.Stock"} <= set(contexts["fulfilment"]["models"])
    holder = next(c for c in contexts.values() if "payments.Payment" in c["models"])
    assert "customers.User" in holder["models"]


def test_json_is_byte_identical_and_warm_runs_reuse_the_cache(shop, tmp_path):
    cache = str(tmp_path / "c")
    cold = cli(str(shop), "--json", "--cache-dir", cache, "-j", "2")
    warm = cli(str(shop), "--json", "--cache-dir", cache)
    nocache = cli(str(shop), "--json", "--no-cache", "-j", "1", seed="12345")
    assert cold.returncode == warm.returncode == nocache.returncode == 0, cold.stderr
    assert cold.stdout == warm.stdout == nocache.stdout
    assert json.loads(cold.stdout)["stats"]["seconds"] is None
    assert str(tmp_path) not in cold.stdout  # no absolute paths
    text = cli(str(shop), "--cache-dir", cache)
    assert "0 parsed" in text.stdout and "report reused" in text.stdout
    services = shop / "orders" / "services.py"
    services.write_text(services.read_text() + "\n# a comment changes no dependency\n")
    edited = cli(str(shop), "--cache-dir", cache)
    assert "1 parsed" in edited.stdout and "proposal kept" in edited.stdout, edited.stdout
    models = shop / "orders" / "models.py"
    models.write_text(
        models.read_text() + "\n\nclass Refund(models.Model):\n"
        "    order = models.ForeignKey(Order, on_delete=models.CASCADE)\n"
    )
    changed = cli(str(shop), "--cache-dir", cache)
    assert "1 parsed" in changed.stdout and "proposal kept" not in changed.stdout
    timed = json.loads(cli(str(shop), "--json", "--timings", "--cache-dir", cache).stdout)
    # --timings puts the run's duration where the byte-identical output has null
    assert isinstance(timed["stats"]["seconds"], float) and timed["stats"]["seconds"] > 0
    assert "orders.Refund" in {m for c in timed["contexts"] for m in c["models"]}


def test_every_format_renders_the_context_map(shop, tmp_path):
    md = cli(str(shop), "--format", "md", "--no-cache").stdout
    assert md.startswith("# Proposed bounded contexts")
    assert "`orders/models.py:12`" in md
    dot = cli(str(shop), "--format", "dot", "--no-cache").stdout
    assert dot.startswith("digraph contexts {") and '"inventory" -> "orders"' in dot
    mermaid = cli(str(shop), "--format", "mermaid", "--no-cache").stdout
    assert mermaid.startswith("graph LR") and "signal" in mermaid
    out = tmp_path / "report.html"
    assert cli(str(shop), "--format", "html", "-o", str(out), "--no-cache").returncode == 0
    page = out.read_text()
    assert "<script" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_check_exits_1_listing_dependencies_across_declared_boundaries(shop, tmp_path):
    rules = tmp_path / "boundaries.toml"
    others = "".join(
        f'[[context]]\nname = "{app}"\napps = ["{app}"]\n'
        for app in ("catalog", "orders", "payments", "customers")
    )
    rules.write_text(
        '[[context]]\nname = "inventory"\napps = ["inventory"]\ndepends_on = ["catalog"]\n' + others
    )
    result = cli(str(shop), "--check", str(rules), "--no-cache")
    assert result.returncode == 1
    assert "inventory -> orders (signal" in result.stdout
    assert "inventory/receivers.py:9" in result.stdout
    rules.write_text(rules.read_text().replace('["catalog"]\n', '["catalog", "orders"]\n', 1))
    unreadable = cli(str(shop), "--check", str(rules), "--no-cache")
    assert unreadable.returncode == 1 and "payments/broken.py:5" in unreadable.stdout
    allowed = cli(str(shop), "--check", str(rules), "--no-cache", "--exclude", "*/broken.py")
    assert allowed.returncode == 0, allowed.stdout
    assert "No dependency crosses a declared boundary" in allowed.stdout


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "a_file",
        "not_django",
        "settings_do_not_parse",
        "bad_toml",
        "unknown_app",
        "unreadable",
        "jobs_zero",
        "git_outside",
        "git_negative",
        "toml_not_utf8",
    ],
)
def test_bad_input_is_exit_2_with_a_message_and_no_traceback(case, shop, tmp_path):
    args = [str(shop), "--no-cache"]
    if case == "missing":
        args[0] = str(tmp_path / "nowhere")
    elif case == "not_django":
        plain = tmp_path / "plain"
        plain.mkdir()
        (plain / "script.py").write_text("print('hello')\n")
        args[0] = str(plain)
    elif case == "settings_do_not_parse":
        broken = tmp_path / "site" / "site"
        broken.mkdir(parents=True)
        (broken / "__init__.py").write_text("")
        (broken / "settings.py").write_text('INSTALLED_APPS = [\n    "orders",\n')
        args[0] = str(broken.parent)
    elif case == "bad_toml":
        (tmp_path / "b.toml").write_text("[[context]\nname = 1\n")
        args += ["--boundaries", str(tmp_path / "b.toml")]
    elif case == "toml_not_utf8":
        (tmp_path / "b.toml").write_bytes(b"[clustering]\n# caf\xe9\n")
        args += ["--check", str(tmp_path / "b.toml")]
    elif case == "a_file":
        args[0] = str(shop / "orders" / "models.py")
    elif case == "jobs_zero":
        args += ["--jobs", "0"]
    elif case in ("git_outside", "git_negative"):
        args += ["--git", "-5" if case == "git_negative" else "10"]
    elif case == "unknown_app":
        (tmp_path / "b.toml").write_text('[[apart]]\nitems = ["orders", "billing"]\n')
        args += ["--boundaries", str(tmp_path / "b.toml")]
    else:  # a dangling link: unreadable even for root, unlike chmod 0
        (shop / "orders" / "secret.py").symlink_to(tmp_path / "gone.py")
    result = cli(*args)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("strangler analyze: error:") and len(message.splitlines()) == 1
    expected = {
        "missing": "not a directory",
        "a_file": "not a directory",
        "not_django": "does not look like a Django",
        "settings_do_not_parse": "does not parse: site/settings.py:1 (syntax error",
        "bad_toml": "boundaries.E001",
        "unknown_app": "boundaries.E005",
        "unreadable": "secret.py",
        "jobs_zero": "--jobs must be at least 1",
        "git_outside": "not a git repository",
        "git_negative": "--git N must be",
        "toml_not_utf8": "b.toml is not UTF-8",
    }[case]
    assert expected in message
    assert "Command '[" not in message  # say what git said, not how it was called


def test_help_teaches_with_examples():
    result = cli("--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "boundaries.toml" in result.stdout


def test_progress_bar_goes_to_stderr_only(shop):
    result = cli(str(shop), "--no-cache", "--progress", "--format", "json")
    assert "analyzing [" in result.stderr
    json.loads(result.stdout)


def test_fixture_tree_is_not_modified_by_analysis(shop, run_analysis):
    before = sorted(p.name for p in Path(shop).rglob("*"))
    run_analysis(shop)
    assert sorted(p.name for p in Path(shop).rglob("*")) == before


def test_git_co_change_links_modules_changed_together(shop, run_analysis):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(shop), *args],
            check=True,
            capture_output=True,
            env={
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com",
                "PATH": "/usr/bin:/bin",
            },
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    for n in range(3):  # the team keeps changing customers' admin and payments' views together
        for path in ("customers/admin.py", "payments/views.py"):
            (shop / path).write_text((shop / path).read_text() + f"\n# change {n}\n")
        git("commit", "-qam", f"change {n}")
    report = run_analysis(shop, git_commits=50).report
    found = [d for d in report["dependencies"] if d["kind"] == "cochange"]
    assert found, "no co-change dependency"
    (dep,) = found
    assert {dep["source"], dep["target"]} == {"customers", "payments"}
    # three edits plus the first commit, which added both files (it touched under 30 modules)
    assert "4 commits also changed" in dep["evidence"][0]["detail"]
    assert report["options"]["git_commits"] == 50

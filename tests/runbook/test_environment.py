"""The programs a run starts run where the run says, not wherever its runner happens to be."""

from __future__ import annotations

import sys

import pytest

from strangler.runbook.sources import Environment, cdc_check_problems, run_program
from tests.proxy.helpers import ROOT

DECOY = 'raise ImportError("the user\'s own monolith package was imported")\n'


def test_a_runs_programs_run_in_its_cwd_so_a_users_own_package_does_not_shadow(
    tmp_path, monkeypatch, pg_url
):
    user, work = tmp_path / "user-project", tmp_path / "work"
    (user / "monolith").mkdir(parents=True)
    (user / "monolith" / "__init__.py").write_text(DECOY)
    work.mkdir()
    monkeypatch.chdir(user)  # the runner runs from a folder holding the user's own monolith
    env = Environment(
        routes="routes.toml",
        source_settings="monolith.settings",
        target_settings="monolith.settings",  # the cwd is under test: one project, both sides
        process_env={"PYTHONPATH": str(ROOT), "DATABASE_URL": pg_url},
        cwd=str(work),
    )
    found = run_program([sys.executable, "-c", "import os; print(os.getcwd())"], env, 30)
    assert found.stdout.strip() == str(work)
    problems = cdc_check_problems(env)  # `python -m django check` in work/, not user/
    assert problems == []  # the reference monolith was checked: it imported and passed


def test_without_a_cwd_programs_run_in_the_runners_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = Environment(routes="routes.toml")
    found = run_program([sys.executable, "-c", "import os; print(os.getcwd())"], env, 30)
    assert found.stdout.strip() == str(tmp_path)


@pytest.mark.parametrize("stored", [{"routes": "r.toml"}, {"routes": "r.toml", "cwd": "/srv"}])
def test_runs_stored_before_the_cwd_field_still_resume(stored):
    assert Environment.from_json(stored).cwd == stored.get("cwd", "")

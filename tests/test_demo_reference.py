"""The demo's processes import the bundled shop, never a `monolith` of the user's."""

from __future__ import annotations

import os
from pathlib import Path

from strangler.demo.reference import reference_root, with_reference_path

ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_folder_goes_before_the_users_own_pythonpath(tmp_path):
    env = with_reference_path({"PYTHONPATH": f"/home/me/code{os.pathsep}", "HOME": "/h"}, tmp_path)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/home/me/code"]
    assert env["HOME"] == "/h"


def test_without_a_pythonpath_only_the_reference_folder_is_on_it(tmp_path):
    assert with_reference_path({}, tmp_path)["PYTHONPATH"] == str(tmp_path)


def test_in_a_checkout_the_reference_is_the_repository_root():
    assert reference_root() == ROOT

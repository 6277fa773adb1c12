"""Runbook definitions are data: validated as a whole, every problem with its id and line."""

from __future__ import annotations

import pytest

from strangler.runbook import builtin
from strangler.runbook.definition import parse
from strangler.runbook.messages import RunbookInvalid

BROKEN = """\
name = "bad runbook"
colour = "blue"

[params.route]
type = "string"

[[steps]]
id = "canary"
action = "set_weight"
route = "{route}"
weight = 150
gates = [
  { gate = "error_rate", route = "{route}", max_delta = 0.01, min_requests = 0 },
  { gate = "p99_vibes" },
]
bake = 30
deadline = 10
on_fail = "rollback"

[[steps]]
id = "canary"
action = "teleport"

[[steps]]
id = "check"
action = "check"
gates = [{ gate = "cdc_lag", max_seconds = "{lag}" }]
on_fail = "rollback"
"""


def problems(text: str, params: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(RunbookInvalid) as caught:
        parse(text, "bad.toml", params)
    return [(p.id, p.where) for p in caught.value.problems]


def test_an_invalid_runbook_is_rejected_with_every_problem_and_its_line():
    found = problems(BROKEN)
    assert ("runbook.E003", "bad.toml:2") in found  # unknown key colour
    assert ("runbook.E006", "bad.toml:1") in found  # name with a space
    assert ("runbook.E010", "bad.toml:11") in found  # weight 150
    assert ("runbook.E010", "bad.toml:13") in found  # min_requests 0
    assert ("runbook.E005", "bad.toml:14") in found  # unknown gate
    assert ("runbook.E011", "bad.toml:17") in found  # deadline shorter than the bake
    assert ("runbook.E004", "bad.toml:22") in found  # unknown action
    assert ("runbook.E006", "bad.toml:20") in found  # duplicate id
    assert ("runbook.E008", "bad.toml:27") in found  # undeclared {lag}
    assert ("runbook.E007", "bad.toml:28") in found  # rollback on a non-traffic step
    assert len(found) == 10


def test_toml_syntax_error_names_the_file_and_line():
    # FILE:LINE like every other problem, so editors and CI annotations can jump to it
    assert problems('name = "x"\n[[steps]\n') == [("runbook.E000", "bad.toml:2")]
    assert problems('name = "x"\ntitle = ') == [("runbook.E000", "bad.toml:2")]  # at the end
    with pytest.raises(RunbookInvalid) as caught:
        parse('name = "x"\n[[steps]\n', "bad.toml")
    assert str(caught.value) == (
        "runbook.E000 bad.toml:2: TOML syntax error: Expected ']]' at the end of an array "
        "declaration (column 8)"
    )


def test_parameters_are_bound_at_run_with_their_types_checked():
    found = problems(
        builtin.text("extract-context"), {"tables": "a", "bake_s": "soon", "colour": "red"}
    )
    ids = sorted(id_ for id_, _ in found)
    assert ids == ["runbook.E009"] * 4  # route, boundaries missing; bake_s not a number; colour


def test_a_bound_value_out_of_range_is_caught_after_binding():
    found = problems(
        builtin.text("extract-context"),
        {"route": "products", "tables": "a", "boundaries": "b.toml", "max_error_delta": "7"},
    )
    assert found and all(id_ == "runbook.E010" for id_, _ in found)


def test_builtin_runbooks_validate_and_bind():
    assert builtin.names() == ["extract-context", "rollback-route"]
    runbook = builtin.resolve(
        "extract-context", {"route": "products", "tables": "t1,t2", "boundaries": "b.toml"}
    )
    snapshot = runbook.step("snapshot")
    assert snapshot.settings["tables"] == ["t1", "t2"]
    weights = [s.settings["weight"] for s in runbook.steps if s.action == "set_weight"]
    assert weights == [5, 25, 50, 100]
    assert all(s.on_fail == "rollback" for s in runbook.steps if s.action == "set_weight")


def test_a_param_value_holding_a_placeholder_is_not_taken_for_one():
    found = problems(builtin.text("rollback-route"), {"route": "{route}"})
    assert found and {id_ for id_, _ in found} == {"runbook.E008"}


def test_gates_are_not_evaluated_more_than_ten_times_a_second():
    text = 'name = "fast"\n[[steps]]\nid = "a"\naction = "wait"\ninterval = 0.01\n'
    assert problems(text) == [("runbook.E010", "bad.toml:5")]

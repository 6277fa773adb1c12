"""Pins what analyzer/codegen.py relies on in libcst's private code generation.

If a libcst upgrade changes either part, these fail before any fact goes wrong silently.
"""

from __future__ import annotations

import libcst as cst
from libcst._nodes.expression import _BaseParenthesizedNode
from libcst._nodes.internal import CodegenState
from libcst.metadata import MetadataWrapper, PositionProvider

from strangler_analyzer.codegen import LineCounter, plain_parentheses, walk

SOURCE = '''import os
value = (
    (1 + 2)
    * f(a, (b), c=[x for x in (y)])
)
text = """one
two"""
class A(B, metaclass=M):
    @decorator(("x"))
    def method(self, *args: int) -> "A":
        return {k: (v) for k, v in ((1, 2),)}[
            0
        ]
lambda q: (q)
'''


class Lines(LineCounter):
    """Records the line LineCounter gives each Call and Name node."""

    def __init__(self, tree: cst.Module) -> None:
        super().__init__(tree)
        self.seen: list[tuple[str, int]] = []

    def before_codegen(self, node: cst.CSTNode) -> None:
        if isinstance(node, (cst.Call, cst.Name)):
            self.seen.append((type(node).__name__, self.line))


def test_counted_lines_are_libcsts_own_positions():
    tree = cst.parse_module(SOURCE)
    counter = Lines(tree)
    walk(tree, counter)
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    expected: list[tuple[str, int]] = []

    class Visitor(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.Call, cst.Name)):
                expected.append((type(node).__name__, positions[node].start.line))
            return True

    wrapper.module.visit(Visitor())
    assert counter.seen == expected and len(expected) > 20


def test_plain_parentheses_emit_the_same_code_and_restore_libcst():
    original = _BaseParenthesizedNode.__dict__["_parenthesize"]
    tree = cst.parse_module(SOURCE)
    state = CodegenState(default_indent="    ", default_newline="\n")
    with plain_parentheses():
        assert _BaseParenthesizedNode.__dict__["_parenthesize"] is not original
        tree._codegen(state)
    assert "".join(state.tokens) == SOURCE
    assert _BaseParenthesizedNode.__dict__["_parenthesize"] is original
    assert tree.code == SOURCE

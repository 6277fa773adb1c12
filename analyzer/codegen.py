"""The one place that leans on libcst internals: code generation as a line-counting walk.

libcst's metadata providers (positions, scopes) cost several times the parse. Generating code
instead walks every node once in source order; a ``CodegenState`` that keeps no tokens and only
counts newlines gives each node its line for a fraction of that cost. Two private parts of
libcst are used, both pinned by tests/analyzer/test_codegen.py (and libcst is pinned to the 1.9
series in pyproject): ``CodegenState`` and ``_BaseParenthesizedNode._parenthesize``, replaced
while generating by a plain context manager (libcst's is a generator-made one, entered for
every expression node).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import libcst as cst
from libcst._nodes.expression import _BaseParenthesizedNode
from libcst._nodes.internal import CodegenState

NO_POSITIONS = contextlib.nullcontext()


class LineCounter(CodegenState):
    """A code generator that keeps no code: ``line`` is the line of the node being generated."""

    def __init__(self, module_node: cst.Module) -> None:
        super().__init__(
            default_indent=module_node.default_indent, default_newline=module_node.default_newline
        )
        self.line = 1

    def add_token(self, value: str) -> None:
        if "\n" in value:
            self.line += value.count("\n")

    def add_indent_tokens(self) -> None:
        pass

    def pop_trailing_newline(self) -> None:
        pass

    # libcst types this as a generator-made context manager; a shared no-op one is cheaper.
    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        return NO_POSITIONS  # positions come from counting newlines, not from libcst


class _Parentheses:
    """libcst's ``_parenthesize`` for a state that records no positions, as a plain context
    manager."""

    __slots__ = ("node", "state")

    def __init__(self, node: _BaseParenthesizedNode, state: CodegenState) -> None:
        self.node, self.state = node, state

    def __enter__(self) -> None:
        for lpar in self.node.lpar:
            lpar._codegen(self.state)

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            for rpar in self.node.rpar:
                rpar._codegen(self.state)


def _parentheses(
    node: _BaseParenthesizedNode, state: CodegenState
) -> contextlib.AbstractContextManager[None]:
    return _Parentheses(node, state) if node.lpar else NO_POSITIONS


@contextlib.contextmanager
def plain_parentheses() -> Iterator[None]:
    """Generate code with ``_Parentheses`` in place of libcst's own, restoring it after."""
    original = _BaseParenthesizedNode.__dict__["_parenthesize"]
    _BaseParenthesizedNode._parenthesize = _parentheses  # type: ignore[assignment]
    try:
        yield
    finally:
        _BaseParenthesizedNode._parenthesize = original  # type: ignore[method-assign]


def walk(tree: cst.Module, state: CodegenState) -> None:
    """Generate ``tree`` into ``state`` (its hooks see every node, in source order)."""
    with plain_parentheses():
        tree._codegen(state)

"""A condition as the rest of fairproc holds it: its text, tree and type, parsed, checked and
compiled once (:class:`Condition`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from fairproc.conditions.check import check
from fairproc.conditions.names import Vocabulary
from fairproc.conditions.nodes import NONE, Kind, Node, Type, reads, render
from fairproc.conditions.parse import parse
from fairproc.conditions.to_python import Compiled, compile_python
from fairproc.values import Value


@attrs.frozen(repr=False)
class Condition(Value):
    """Condition text with its AST and its compiled closure, ready to evaluate."""

    text: str
    node: Node
    type: Type
    evaluate: Compiled = attrs.field(eq=False, repr=False)
    facts: tuple[tuple[str, Compiled], ...] = attrs.field(eq=False, repr=False, default=())

    @classmethod
    def pending(cls, text: str) -> Condition:
        """Parsed but not yet checked against a vocabulary (the loader's first pass)."""

        def not_compiled(ctx: Any) -> Any:
            raise RuntimeError(f"condition {text!r} was never compiled against a policy")

        return cls(text=text, node=parse(text), type=NONE, evaluate=not_compiled)

    @property
    def compiled(self) -> bool:
        return self.type.kind is not Kind.NONE

    @classmethod
    def build(
        cls, text: str, vocab: Vocabulary, tz: dt.tzinfo, expect: Kind = Kind.BOOL
    ) -> Condition:
        node = parse(text)
        t = check(node, vocab, text, expect)
        facts = tuple((render(n), compile_python(n, vocab, tz)) for n in reads(node))
        return cls(
            text=text, node=node, type=t, evaluate=compile_python(node, vocab, tz), facts=facts
        )

    def read_facts(self, ctx: Any) -> dict[str, Any]:
        """The value of every name and call the condition reads, for an explanation."""
        return {name: fn(ctx) for name, fn in self.facts}

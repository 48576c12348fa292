"""Type checking: a tree checked against a vocabulary (names, their types, the ids an enum may
hold), giving the condition's type or a located :class:`ConditionError`.
"""

from __future__ import annotations

from fairproc.conditions.names import Vocabulary
from fairproc.conditions.nodes import (
    BOOL,
    INSTANT,
    ORDERED,
    And,
    Call,
    Compare,
    Const,
    In,
    Kind,
    ListOf,
    Node,
    Not,
    Or,
    Present,
    Ref,
    Shift,
    Type,
    render,
)
from fairproc.conditions.parse import ConditionError
from fairproc.errors import did_you_mean


class _Checker:
    def __init__(self, text: str, vocab: Vocabulary):
        self.text = text
        self.vocab = vocab

    def fail(self, message: str) -> ConditionError:
        return ConditionError(message, self.text)

    def check_enum(self, t: Type, const: Const) -> None:
        if t.vocab is None or const.type.kind is not Kind.STRING:
            return
        known = self.vocab.enums.get(t.vocab)
        if known is not None and const.value not in known:
            raise self.fail(
                f"unknown {t.vocab} {const.value!r}{did_you_mean(const.value, known)} "
                f"(known: {', '.join(sorted(known))})"
            )

    def type_of(self, node: Node) -> Type:
        if isinstance(node, Const):
            return node.type
        if isinstance(node, Ref):
            name = self.vocab.names.get(node.name)
            if name is None:
                known = sorted(self.vocab.names)
                raise self.fail(
                    f"unknown name {node.name!r}{did_you_mean(node.name, known)} "
                    f"(this rule can read: {', '.join(known)})"
                )
            return name.type
        if isinstance(node, And | Or):
            for item in node.items:
                self.expect(item, Kind.BOOL, "and/or takes true/false operands")
            return BOOL
        if isinstance(node, Not):
            self.expect(node.item, Kind.BOOL, "'not' takes a true/false operand")
            return BOOL
        if isinstance(node, Present):
            if isinstance(node.item, Const):
                raise self.fail("'is None' tests a name or call, not a literal")
            self.type_of(node.item)
            return BOOL
        if isinstance(node, Shift):
            self.expect(node.instant, Kind.INSTANT, f"'{node.op}' needs an instant on its left")
            self.expect(
                node.period,
                Kind.PERIOD,
                f"'{node.op}' needs a period (such as P4Y or PT48H) on its right",
            )
            return INSTANT
        if isinstance(node, Compare):
            left, right = self.type_of(node.left), self.type_of(node.right)
            if Kind.NONE in (left.kind, right.kind):
                raise self.fail("compare with None using 'is None' or 'is not None'")
            if left.kind is not right.kind:
                raise self.fail(f"cannot compare {left} with {right} using {node.op}")
            if node.op not in ("==", "!=") and left.kind not in ORDERED:
                raise self.fail(f"{left} values have no order; use == or !=")
            if isinstance(node.right, Const):
                self.check_enum(left, node.right)
            if isinstance(node.left, Const):
                self.check_enum(right, node.left)
            return BOOL
        if isinstance(node, In):
            item_type = self.type_of(node.item)
            if isinstance(node.container, ListOf):
                if not node.container.items:
                    raise self.fail("'in' needs a non-empty list")
                for const in node.container.items:
                    if const.type.kind is not item_type.kind:
                        raise self.fail(f"list value {const.value!r} is not a {item_type}")
                    self.check_enum(item_type, const)
                return BOOL
            container = self.type_of(node.container)
            if container.kind is not Kind.SET:
                raise self.fail(f"'in' needs a list or a set on its right, got {container}")
            if item_type.kind is not Kind.STRING:
                raise self.fail(f"a set holds strings, not {item_type}")
            if isinstance(node.item, Const):
                self.check_enum(container, node.item)
            return BOOL
        if isinstance(node, ListOf):
            raise self.fail("a list may only stand on the right of 'in'")
        if isinstance(node, Call):
            fn = self.vocab.functions.get(node.func)
            if fn is None:
                known = sorted(self.vocab.functions)
                raise self.fail(
                    f"unknown function {node.func!r}{did_you_mean(node.func, known)} "
                    f"(known: date, time, {', '.join(known)})"
                )
            if len(node.args) != len(fn.params):
                raise self.fail(
                    f"{fn.name}() takes {len(fn.params)} argument(s), got {len(node.args)}"
                )
            for arg, param in zip(node.args, fn.params, strict=True):
                t = self.type_of(arg)
                if t.kind is not param.kind:
                    raise self.fail(f"{fn.name}() expects a {param} argument, got {t}")
                if isinstance(arg, Const):
                    self.check_enum(param, arg)
            return fn.returns
        raise self.fail(f"unexpected node {node!r}")  # pragma: no cover

    def expect(self, node: Node, kind: Kind, message: str) -> None:
        got = self.type_of(node)
        if got.kind is not kind:
            raise self.fail(f"{message}, got {got} ({render(node)})")


def check(node: Node, vocab: Vocabulary, text: str = "", expect: Kind = Kind.BOOL) -> Type:
    """Type-check ``node``; raise :class:`ConditionError` unless it yields ``expect``."""
    checker = _Checker(text or render(node), vocab)
    got = checker.type_of(node)
    if got.kind is not expect:
        raise checker.fail(f"must give a {expect.value}, but gives a {got}")
    return got

"""The condition language's values and tree: the kinds and types a value may have, the AST
nodes every backend compiles from, rendering a tree back to text, and what a tree reads.

Imports nothing of the language's other modules.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, TypeAlias

import attrs

from fairproc.clock import Period
from fairproc.values import Value


class Kind(enum.Enum):
    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"
    INSTANT = "instant"
    PERIOD = "period"
    TIME = "time"
    DATE = "date"
    SET = "set"  # a set of strings (a record's categories)
    NONE = "none"


@attrs.frozen(repr=False)
class Type(Value):
    kind: Kind
    vocab: str | None = None  # for STRING and SET: the id space its values come from

    def __str__(self) -> str:
        return f"{self.kind.value}<{self.vocab}>" if self.vocab else self.kind.value


BOOL = Type(Kind.BOOL)
NUMBER = Type(Kind.NUMBER)
STRING = Type(Kind.STRING)
INSTANT = Type(Kind.INSTANT)
PERIOD = Type(Kind.PERIOD)
TIME = Type(Kind.TIME)
DATE = Type(Kind.DATE)
NONE = Type(Kind.NONE)

ORDERED = {Kind.NUMBER, Kind.INSTANT, Kind.DATE, Kind.TIME, Kind.STRING}


@attrs.frozen(repr=False)
class Const(Value):
    value: Any
    type: Type


@attrs.frozen(repr=False)
class Ref(Value):
    name: str  # dotted: "at", "record.source", "subject.last_interaction"


@attrs.frozen(repr=False)
class Compare(Value):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@attrs.frozen(repr=False)
class ListOf(Value):
    items: tuple[Const, ...]


@attrs.frozen(repr=False)
class In(Value):
    item: Node
    container: Node  # a ListOf, or a SET-typed expression
    negated: bool = False


@attrs.frozen(repr=False)
class And(Value):
    items: tuple[Node, ...]


@attrs.frozen(repr=False)
class Or(Value):
    items: tuple[Node, ...]


@attrs.frozen(repr=False)
class Not(Value):
    item: Node


@attrs.frozen(repr=False)
class Shift(Value):
    op: str  # + or -
    instant: Node
    period: Node


@attrs.frozen(repr=False)
class Present(Value):
    item: Node


@attrs.frozen(repr=False)
class Call(Value):
    func: str
    args: tuple[Node, ...]


Node: TypeAlias = Const | Ref | Compare | ListOf | In | And | Or | Not | Shift | Present | Call


def _render_const(c: Const) -> str:
    if isinstance(c.value, Period):
        return str(c.value)
    if isinstance(c.value, dt.datetime):  # pragma: no cover - no instant literals yet
        return repr(c.value.isoformat())
    if isinstance(c.value, dt.date):
        return f"date({c.value.isoformat()!r})"
    if isinstance(c.value, dt.time):
        return f"time({c.value.isoformat()!r})"
    return repr(c.value)


def render(node: Node) -> str:
    """Condition text for ``node``; ``parse(render(n)) == n`` for any parsed node."""
    if isinstance(node, Const):
        return _render_const(node)
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Compare):
        return f"{_wrap(node.left)} {node.op} {_wrap(node.right)}"
    if isinstance(node, In):
        return f"{_wrap(node.item)} {'not in' if node.negated else 'in'} {_wrap(node.container)}"
    if isinstance(node, ListOf):
        return "[" + ", ".join(_render_const(i) for i in node.items) + "]"
    if isinstance(node, And | Or):
        sep = " and " if isinstance(node, And) else " or "
        return sep.join(_wrap(i) for i in node.items)
    if isinstance(node, Not):
        if isinstance(node.item, Present):
            return f"{_wrap(node.item.item)} is None"
        return f"not {_wrap(node.item)}"
    if isinstance(node, Present):
        return f"{_wrap(node.item)} is not None"
    if isinstance(node, Shift):
        return f"{_wrap(node.instant)} {node.op} {_wrap(node.period)}"
    if isinstance(node, Call):
        return f"{node.func}(" + ", ".join(render(a) for a in node.args) + ")"
    raise TypeError(f"not a condition node: {node!r}")  # pragma: no cover


def _wrap(node: Node) -> str:
    text = render(node)
    simple = isinstance(node, Const | Ref | Call | ListOf)
    if isinstance(node, Const) and isinstance(node.value, int | float) and node.value < 0:
        simple = False
    return text if simple else f"({text})"


def reads(node: Node) -> tuple[Node, ...]:
    """The names and calls a condition reads, in order, each once: the facts an explanation
    shows."""
    seen: dict[Node, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Ref):
            seen.setdefault(n, None)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
            seen.setdefault(n, None)
        elif isinstance(n, Compare):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, In):
            walk(n.item)
            walk(n.container)
        elif isinstance(n, And | Or):
            for i in n.items:
                walk(i)
        elif isinstance(n, Not | Present):
            walk(n.item)
        elif isinstance(n, Shift):
            walk(n.instant)
            walk(n.period)
            seen.setdefault(n, None)

    walk(node)
    return tuple(seen)

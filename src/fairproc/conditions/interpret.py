"""The reference interpreter: a tree evaluated directly, node by node. Slow and plain, it is
what every compiled backend (Python closures, SQL, durable-rules) is held to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fairproc.conditions.names import Vocabulary
from fairproc.conditions.nodes import (
    And,
    Call,
    Compare,
    Const,
    In,
    ListOf,
    Node,
    Not,
    Or,
    Present,
    Ref,
    Shift,
)


def interpret(node: Node, ctx: Any, vocab: Vocabulary, tz: dt.tzinfo) -> Any:
    """Evaluate ``node`` by walking the tree: the meaning every compiled backend must match."""

    def ev(n: Node) -> Any:
        if isinstance(n, Const):
            return n.value
        if isinstance(n, Ref):
            return vocab.names[n.name].get(ctx)
        if isinstance(n, Compare):
            a, b = ev(n.left), ev(n.right)
            if a is None or b is None:
                return False
            return COMPARISONS[n.op](a, b)
        if isinstance(n, In):
            item = ev(n.item)
            if item is None:
                return False
            if isinstance(n.container, ListOf):
                found = any(item == c.value for c in n.container.items)
            else:
                container = ev(n.container)
                if container is None:
                    return False
                found = item in container
            return found != n.negated
        if isinstance(n, And):
            return all([bool(ev(i)) for i in n.items])
        if isinstance(n, Or):
            return any([bool(ev(i)) for i in n.items])
        if isinstance(n, Not):
            return not ev(n.item)
        if isinstance(n, Present):
            return ev(n.item) is not None
        if isinstance(n, Shift):
            instant, period = ev(n.instant), ev(n.period)
            if instant is None or period is None:
                return None
            return period.add_to(instant, tz, 1 if n.op == "+" else -1)
        if isinstance(n, Call):
            fn = vocab.functions[n.func]
            args = [ev(a) for a in n.args]
            if any(a is None for a in args):
                return fn.missing
            return fn.impl(ctx, *args)
        raise TypeError(f"cannot evaluate {n!r}")  # pragma: no cover

    return ev(node)


def _v(value: Any) -> Any:
    """What a comparison compares. Instants compare as instants: two datetimes written in one
    zone would compare by wall clock, which in the hour the clocks go back is the wrong order."""
    return value.timestamp() if isinstance(value, dt.datetime) else value


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(_v(a) == _v(b)),
    "!=": lambda a, b: bool(_v(a) != _v(b)),
    "<": lambda a, b: bool(_v(a) < _v(b)),
    "<=": lambda a, b: bool(_v(a) <= _v(b)),
    ">": lambda a, b: bool(_v(a) > _v(b)),
    ">=": lambda a, b: bool(_v(a) >= _v(b)),
}

"""The Python backend: a tree compiled once into closures, with values of a subject at an
instant remembered per history.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import Any

from fairproc.clock import Period
from fairproc.conditions.interpret import COMPARISONS
from fairproc.conditions.names import Vocabulary
from fairproc.conditions.nodes import (
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
    reads,
)

Compiled = Callable[[Any], Any]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _timestamp_of(node: Node, vocab: Vocabulary, tz: dt.tzinfo) -> Compiled | None:
    """For an instant-valued node, a closure giving its POSIX timestamp (None when missing);
    None for any other node. ``at`` is read as the context's timestamp, taken once per
    question, so the commonest comparison (``at < x + P4Y``) converts one side, not two."""
    if isinstance(node, Ref):
        name = vocab.names.get(node.name)
        if name is None or name.type.kind is not Kind.INSTANT:
            return None
        if node.name == "at":
            return _context_ts
        get = name.get

        def ref_ts(ctx: Any) -> Any:
            value = get(ctx)
            return None if value is None else value.timestamp()

        return ref_ts
    if isinstance(node, Shift):
        shifted = compile_python(node, vocab, tz)
        if not _of_subject_and_instant(node, vocab):

            def shift_ts(ctx: Any) -> Any:
                value = shifted(ctx)
                return None if value is None else value.timestamp()

            return shift_ts
        # Calendar arithmetic is the dearest step of a decision, and the rules of one question
        # (and the questions after it) shift the same fact: ``last_interaction + P4Y`` is the
        # same for every record and purpose of the subject at one instant. The history is
        # immutable, so its memo may keep the answer.

        token = object()  # hashes at once, where the node would hash its whole tree

        def remembered_shift_ts(ctx: Any) -> Any:
            memo = ctx.history.memo
            key = (token, ctx.ts)
            found = memo.get(key, _MISSING)
            if found is _MISSING:
                value = shifted(ctx)
                found = None if value is None else value.timestamp()
                remember(memo, key, found)
            return found

        return remembered_shift_ts
    return None


MEMO_SIZE = 256
"""Values a subject's history remembers (facts, shifted instants, retention verdicts, each per
instant), at the most: enough for every rule of many questions at a few instants."""


def remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` in a history's memo; a full memo starts afresh, so a host asking at a new
    instant every time (``now``) still has its latest instants remembered."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


_MISSING = object()


def _of_subject_and_instant(node: Node, vocab: Vocabulary) -> bool:
    """Whether ``node`` reads nothing but the subject's facts and ``at``: its value is then
    one per history and instant."""
    return all(
        isinstance(n, Ref | Shift)
        and (
            not isinstance(n, Ref)
            or n.name == "at"
            or (n.name.startswith("subject.") and not vocab.names[n.name].per_record)
        )
        for n in reads(node)
    )


def _context_ts(ctx: Any) -> Any:
    return ctx.ts


def compile_python(node: Node, vocab: Vocabulary, tz: dt.tzinfo) -> Compiled:
    """Compile ``node`` to a closure ``f(ctx)``; it gives what :func:`interpret` gives."""

    if isinstance(node, Const):
        value = node.value
        return lambda ctx: value
    if isinstance(node, Ref):
        return vocab.names[node.name].get
    if isinstance(node, Compare):
        left_ts = _timestamp_of(node.left, vocab, tz)
        right_ts = _timestamp_of(node.right, vocab, tz)
        if left_ts is not None and right_ts is not None:
            # Two instants: compared as timestamps, with no per-call type test.
            order = _ORDER[node.op]

            def compare_instants(ctx: Any) -> bool:
                a = left_ts(ctx)
                if a is None:
                    return False
                b = right_ts(ctx)
                return b is not None and order(a, b)

            return compare_instants
        cmp = COMPARISONS[node.op]
        left = compile_python(node.left, vocab, tz)
        if isinstance(node.right, Const):
            rv = node.right.value

            def compare_const(ctx: Any) -> bool:
                a = left(ctx)
                return a is not None and cmp(a, rv)

            return compare_const
        right = compile_python(node.right, vocab, tz)

        def compare(ctx: Any) -> bool:
            a = left(ctx)
            if a is None:
                return False
            b = right(ctx)
            return b is not None and cmp(a, b)

        return compare
    if isinstance(node, In):
        item = compile_python(node.item, vocab, tz)
        negated = node.negated
        if isinstance(node.container, ListOf):
            values = frozenset(c.value for c in node.container.items)

            def in_list(ctx: Any) -> bool:
                v = item(ctx)
                return v is not None and ((v in values) != negated)

            return in_list
        container = compile_python(node.container, vocab, tz)

        def in_set(ctx: Any) -> bool:
            v = item(ctx)
            if v is None:
                return False
            c = container(ctx)
            return c is not None and ((v in c) != negated)

        return in_set
    if isinstance(node, And):
        parts = tuple(compile_python(i, vocab, tz) for i in node.items)
        return lambda ctx: all(p(ctx) for p in parts)
    if isinstance(node, Or):
        parts = tuple(compile_python(i, vocab, tz) for i in node.items)
        return lambda ctx: any(p(ctx) for p in parts)
    if isinstance(node, Not):
        inner = compile_python(node.item, vocab, tz)
        return lambda ctx: not inner(ctx)
    if isinstance(node, Present):
        inner = compile_python(node.item, vocab, tz)
        return lambda ctx: inner(ctx) is not None
    if isinstance(node, Shift):
        instant = compile_python(node.instant, vocab, tz)
        sign = 1 if node.op == "+" else -1
        if isinstance(node.period, Const):
            period: Period = node.period.value

            def shift_const(ctx: Any) -> Any:
                i = instant(ctx)
                return None if i is None else period.add_to(i, tz, sign)

            return shift_const
        period_fn = compile_python(node.period, vocab, tz)

        def shift(ctx: Any) -> Any:
            i, p = instant(ctx), period_fn(ctx)
            return None if i is None or p is None else p.add_to(i, tz, sign)

        return shift
    if isinstance(node, Call):
        fn = vocab.functions[node.func]
        impl, missing = fn.impl, fn.missing
        args = tuple(compile_python(a, vocab, tz) for a in node.args)
        if len(args) == 1:
            only = args[0]

            def call1(ctx: Any) -> Any:
                a = only(ctx)
                return missing if a is None else impl(ctx, a)

            return call1

        def call(ctx: Any) -> Any:
            values = [a(ctx) for a in args]
            return missing if any(v is None for v in values) else impl(ctx, *values)

        return call
    raise TypeError(f"cannot compile {node!r}")  # pragma: no cover

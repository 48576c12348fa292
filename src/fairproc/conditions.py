"""The condition language: one small AST that every backend compiles from.

A condition is a Python-like expression written in a rule file::

    at < subject.last_interaction + P4Y
    record.source in ['quick_quote', 'multiquote'] and not subject.suppressed
    in_office_hours(record.collected_at)

It is parsed once with :mod:`ast` under a whitelist (never ``eval``), checked against the
policy's vocabulary (names, their types, the ids an enum may hold) and compiled to Python
closures. The SQL and durable-rules backends compile the same AST.

Semantics every backend keeps:

* A value may be missing (``subject.office_let`` for a subject who never let an office).
  Any comparison or ``in`` test with a missing operand is false, ``!=`` included;
  ``x is None`` / ``x is not None`` test for it; shifting a missing instant gives a missing one.
* ``and``, ``or`` and ``not`` are two-valued: their operands are always true or false.
* Instants compare as instants, whatever offset they were written with. Periods added to an
  instant use calendar arithmetic on the policy's local clock (see :class:`fairproc.clock.Period`).
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import enum
import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from fairproc.clock import Period, is_period_text
from fairproc.errors import PolicyError, Problem

MAX_CONDITION_LENGTH = 4000
MAX_DEPTH = 40


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


@attrs.frozen
class Type:
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


# --- the AST ---------------------------------------------------------------------------------


@attrs.frozen
class Const:
    value: Any
    type: Type


@attrs.frozen
class Ref:
    name: str  # dotted: "at", "record.source", "subject.last_interaction"


@attrs.frozen
class Compare:
    op: str  # == != < <= > >=
    left: Node
    right: Node


@attrs.frozen
class ListOf:
    items: tuple[Const, ...]


@attrs.frozen
class In:
    item: Node
    container: Node  # a ListOf, or a SET-typed expression
    negated: bool = False


@attrs.frozen
class And:
    items: tuple[Node, ...]


@attrs.frozen
class Or:
    items: tuple[Node, ...]


@attrs.frozen
class Not:
    item: Node


@attrs.frozen
class Shift:
    op: str  # + or -
    instant: Node
    period: Node


@attrs.frozen
class Present:
    item: Node


@attrs.frozen
class Call:
    func: str
    args: tuple[Node, ...]


Node: TypeAlias = Const | Ref | Compare | ListOf | In | And | Or | Not | Shift | Present | Call


# --- the vocabulary a condition is checked against -----------------------------------------

Getter = Callable[[Any], Any]


@attrs.frozen
class Name:
    name: str
    type: Type
    doc: str
    get: Getter = attrs.field(eq=False, repr=False)
    # True where the value may differ between records of one subject at one instant (a fact
    # that counts the asked record's own collection): never remembered per subject.
    per_record: bool = False


@attrs.frozen
class Function:
    name: str
    params: tuple[Type, ...]
    returns: Type
    doc: str
    impl: Callable[..., Any] = attrs.field(eq=False, repr=False)  # impl(ctx, *args)
    missing: Any = None  # the result when an argument is missing


@attrs.frozen
class Vocabulary:
    """What a condition in one kind of rule may read, and the ids each enum may hold."""

    names: Mapping[str, Name]
    functions: Mapping[str, Function]
    enums: Mapping[str, frozenset[str]]


# --- parsing ---------------------------------------------------------------------------------


class ConditionError(PolicyError):
    """A condition that does not parse or does not type-check. ``column`` is 1-based."""

    def __init__(self, message: str, text: str, column: int | None = None):
        self.message = message
        self.text = text
        self.column = column
        where = f" (column {column})" if column else ""
        super().__init__([Problem(f"condition {text!r}: {message}{where}")])


_CMP_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ALLOWED = (
    "and, or, not, == != < <= > >=, in, not in, is None, is not None, + and - of an instant "
    "and a period (P4Y, PT48H), names, string/number/bool literals, [lists], and calls"
)


class _Parser:
    def __init__(self, text: str):
        self.text = text

    def fail(self, message: str, node: ast.AST | None = None) -> ConditionError:
        col = getattr(node, "col_offset", None)
        return ConditionError(message, self.text, None if col is None else col + 1)

    def parse(self) -> Node:
        text = self.text
        if not isinstance(text, str):
            raise ConditionError(f"expected a string, got {type(text).__name__}", repr(text))
        if not text.strip():
            raise ConditionError("is empty; expected an expression", text)
        if len(text) > MAX_CONDITION_LENGTH:
            raise ConditionError(f"is longer than {MAX_CONDITION_LENGTH} characters", text[:60])
        # TOML multi-line strings may break a long condition over lines.
        text = text.replace("\r", " ").replace("\n", " ").strip()
        try:
            with warnings.catch_warnings():
                # A warning (an invalid escape such as '\d') is an error whatever the caller's
                # filters, so that the same text always means the same thing.
                warnings.simplefilter("error")
                tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            col = exc.offset if exc.offset and exc.lineno == 1 else None
            raise ConditionError(f"is not a valid expression: {exc.msg}", self.text, col) from None
        except (ValueError, RecursionError, MemoryError, OverflowError, Warning) as exc:
            raise ConditionError(f"cannot be parsed: {exc}", self.text) from None
        try:
            return self.node(tree.body, 0)
        except RecursionError:
            raise ConditionError("is nested too deeply", self.text) from None

    def node(self, n: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"is nested more than {MAX_DEPTH} levels deep", n)
        d = depth + 1
        if isinstance(n, ast.BoolOp):
            items = tuple(self.node(v, d) for v in n.values)
            return And(items) if isinstance(n.op, ast.And) else Or(items)
        if isinstance(n, ast.UnaryOp):
            if isinstance(n.op, ast.Not):
                return Not(self.node(n.operand, d))
            if isinstance(n.op, ast.USub | ast.UAdd) and isinstance(n.operand, ast.Constant):
                value = n.operand.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    number = self.constant(n.operand).value  # refuses what is not finite
                    return Const(-number if isinstance(n.op, ast.USub) else number, NUMBER)
            raise self.fail("only 'not' and a sign before a number are allowed", n)
        if isinstance(n, ast.Compare):
            parts: list[Node] = []
            left = n.left
            for op, right in zip(n.ops, n.comparators, strict=True):
                parts.append(self.compare(op, left, right, d))
                left = right
            return parts[0] if len(parts) == 1 else And(tuple(parts))
        if isinstance(n, ast.BinOp):
            if isinstance(n.op, ast.Add | ast.Sub):
                sign = "+" if isinstance(n.op, ast.Add) else "-"
                return Shift(sign, self.node(n.left, d), self.node(n.right, d))
            raise self.fail("only + and - (an instant and a period) are allowed", n)
        if isinstance(n, ast.Constant):
            return self.constant(n)
        if isinstance(n, ast.Name):
            if is_period_text(n.id):
                return Const(Period.parse(n.id), PERIOD)
            if n.id in ("true", "false"):
                return Const(n.id == "true", BOOL)
            return Ref(n.id)
        if isinstance(n, ast.Attribute):
            parts_: list[str] = [n.attr]
            base: ast.AST = n.value
            while isinstance(base, ast.Attribute):
                parts_.append(base.attr)
                base = base.value
            if not isinstance(base, ast.Name):
                raise self.fail("a dotted name must start with a plain name", n)
            parts_.append(base.id)
            return Ref(".".join(reversed(parts_)))
        if isinstance(n, ast.Call):
            if not isinstance(n.func, ast.Name):
                raise self.fail("only named functions can be called", n)
            if n.keywords:
                raise self.fail("function arguments are positional only", n)
            if n.func.id in ("date", "time"):
                return self.literal_call(n)
            return Call(n.func.id, tuple(self.node(a, d) for a in n.args))
        if isinstance(n, ast.List | ast.Tuple | ast.Set):
            consts: list[Const] = []
            for elt in n.elts:
                element = self.node(elt, d)
                if not isinstance(element, Const):
                    raise self.fail("a list may hold only literal values", elt)
                consts.append(element)
            return ListOf(tuple(consts))
        raise self.fail(f"{type(n).__name__} is not allowed; a condition may use {_ALLOWED}", n)

    def compare(self, op: ast.cmpop, left: ast.AST, right: ast.AST, d: int) -> Node:
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise self.fail("'is' and 'is not' compare only with None", right)
            present = Present(self.node(left, d))
            return Not(present) if isinstance(op, ast.Is) else present
        if isinstance(op, ast.In | ast.NotIn):
            return In(self.node(left, d), self.node(right, d), isinstance(op, ast.NotIn))
        sym = _CMP_OPS.get(type(op))
        if sym is None:  # pragma: no cover - every cmpop is handled above
            raise self.fail("unsupported comparison", left)
        for side in (left, right):
            if isinstance(side, ast.Constant) and side.value is None:
                raise self.fail("compare with None using 'is None' or 'is not None'", side)
        return Compare(sym, self.node(left, d), self.node(right, d))

    def constant(self, n: ast.Constant) -> Const:
        value = n.value
        if isinstance(value, bool):
            return Const(value, BOOL)
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(f"a number must be finite; {value!r} is too large", n)
            return Const(value, NUMBER)
        if isinstance(value, str):
            return Const(value, STRING)
        if value is None:
            return Const(None, NONE)
        raise self.fail(f"{type(value).__name__} literals are not allowed", n)

    def literal_call(self, n: ast.Call) -> Const:
        name = n.func.id  # type: ignore[attr-defined]
        arg = n.args[0] if len(n.args) == 1 else None
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise self.fail(
                f"{name}() takes one string literal, such as "
                f"{name}('2020-07-16' if name == 'date' else '09:00')",
                n,
            )
        try:
            if name == "date":
                return Const(dt.date.fromisoformat(arg.value), DATE)
            return Const(dt.time.fromisoformat(arg.value), TIME)
        except ValueError:
            example = "'2020-07-16'" if name == "date" else "'17:30'"
            raise self.fail(
                f"{name}() expected ISO text such as {example}, got {arg.value!r}", n
            ) from None


def parse(text: str) -> Node:
    """Parse condition text into the AST (syntax only; see :func:`check` for types)."""
    return _Parser(text).parse()


# --- type checking ---------------------------------------------------------------------------


def _suggest(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
                f"unknown {t.vocab} {const.value!r}{_suggest(const.value, sorted(known))} "
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
                    f"unknown name {node.name!r}{_suggest(node.name, known)} "
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
                    f"unknown function {node.func!r}{_suggest(node.func, known)} "
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


# --- rendering back to text ------------------------------------------------------------------


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


# --- what a condition reads ------------------------------------------------------------------


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


# --- the reference interpreter ---------------------------------------------------------------


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
            return _COMPARE[n.op](a, b)
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


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(_v(a) == _v(b)),
    "!=": lambda a, b: bool(_v(a) != _v(b)),
    "<": lambda a, b: bool(_v(a) < _v(b)),
    "<=": lambda a, b: bool(_v(a) <= _v(b)),
    ">": lambda a, b: bool(_v(a) > _v(b)),
    ">=": lambda a, b: bool(_v(a) >= _v(b)),
}


# --- the Python backend: closures, built once ------------------------------------------------

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
        cmp = _COMPARE[node.op]
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


# --- a parsed, checked, compiled condition ---------------------------------------------------


@attrs.frozen
class Condition:
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

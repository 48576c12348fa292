"""Parsing: condition text to a tree, with :mod:`ast` under a whitelist (never ``eval``), within
length and depth limits. Errors are :class:`ConditionError`, located in the text.

Imports only :mod:`fairproc.conditions.nodes`.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import warnings

from fairproc.clock import Period, is_period_text
from fairproc.conditions.nodes import (
    BOOL,
    DATE,
    NONE,
    NUMBER,
    PERIOD,
    STRING,
    TIME,
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
from fairproc.errors import PolicyError, Problem

MAX_CONDITION_LENGTH = 4000
MAX_DEPTH = 40


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

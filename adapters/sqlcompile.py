"""The condition AST compiled to SQLAlchemy Core, so that queries and sweeps run in the database.

A condition over records (``at``, ``record.*``, ``subject.*``, the policy's functions) becomes
two SQL predicates over the records table:

* ``where``: true for every row the condition holds for (a superset), and
* ``sure``: true only for rows it certainly holds for (a subset).

Where the two are the same expression, the SQL is exact and rows come back without a second
look. Where they differ, only the rows in between are checked again in Python, with the
compiled Python condition, so every answer equals :func:`fairproc.conditions.interpret`.

What is exact in SQL:

* names of the record (columns) and of the subject: every ``subject.<fact>``, ``suppressed``,
  ``restricted``, ``record.resolved_at`` and ``objected(...)`` are correlated subqueries over
  the events (and suppression, and category) tables, written to give what
  :class:`fairproc.world.SubjectHistory` gives (equal instants: the event added later wins);
* everything built only from literals and ``at`` is computed once in Python (``at + P4Y``);
* missing values: a comparison with a NULL operand is NULL, which a WHERE, a CASE and
  ``and``/``or`` treat as false; ``not`` is pushed down to the leaves, and only a negated
  leaf that may be NULL is wrapped (``coalesce``) so that it counts as true. Positive
  comparisons stay bare, so the database may use its indexes for them;
* a latest instant (``subject.<fact>``, ``record.resolved_at``: the greatest of some rows)
  compared with values computed in Python becomes a set of values, merged over the ``and``
  and ``or`` that ask about the same instant, and is asked with EXISTS probes that stop at
  their first row: ``x is None or at >= x + P10Y`` is one ``NOT EXISTS (... at >= bound)``,
  and ``at >= x + P10Y`` (there is one, before the bound) one seek for the greatest row. A
  record's own events (its resolution) are sought through the index on the record;
* instants are integers (microseconds since the epoch), so ``x + PT48H`` (elapsed time) is
  integer addition;
* a calendar period added to a column or subquery and compared with a value computed in
  Python (``at >= record.collected_at + P12M``, ``at < subject.last_interaction + P4Y``).
  Calendar arithmetic on the policy's local clock is not monotonic (month-end clamping,
  29 February, the repeated hour when clocks go back), so ``x + P < at`` is *not*
  ``x < at - P``. Instead the compiler computes, in Python, the exact set of ``x`` for which
  the comparison holds: outside a band a few days wide around the boundary the answer is
  fixed by the period's shortest and longest length; inside the band ``x + P - x`` is
  piecewise constant, its pieces found by sampling every 15 minutes and bisecting to the
  microsecond, and each piece contributes an interval. This relies on the zone's UTC offsets
  being whole quarter hours near the band (true of every zone since the 1970s); where they
  are not, the comparison falls back to the Python check below.

What is checked again in Python (``where`` a superset, ``sure`` a subset): a calendar period
compared with another non-constant instant (bounded by the period's shortest and longest
length), ``in_office_hours``, ``local_time``, ``local_date`` and ``weekday`` of a column
(local wall-clock time needs the time zone database, which SQLite lacks).

Over a host's own tables (:mod:`fairproc.adapters.mapped_views`) the four tables are views
(CTEs) with the same columns, and :class:`Tables` says what differs there: the names the
views cannot give exactly (checked again in Python), how events at one instant are ordered,
no planner hints (they are written for fairproc's own indexes), the retention fixpoint's
facts finished in Python, and a record's instant compared through the host's stored column
so that its index narrows and the zone's arithmetic runs only near a bound.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import attrs
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from fairproc.clock import DAY_US, Period, integer_shift, utc_day_offset_us
from fairproc.conditions import (
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
    interpret,
)
from fairproc.conditions.vocabulary import vocabulary
from fairproc.model import Policy
from fairproc.retention import collection_passes, due_node
from fairproc.storage import RECORDS_CONTEXT, instant_to_us, us_to_instant
from fairproc.values import Value

SqlBool: TypeAlias = "ColumnElement[Any] | bool"

QUARTER_US = 900 * 10**6
STEP_US = 15 * 60 * 10**6
OFFSET_SLACK_US = 32 * 3600 * 10**6  # no zone's UTC offsets ever differed by more
MAX_SAMPLES = 20_000
SENTINEL = -(2**62)
PURE_FUNCTIONS = frozenset({"in_office_hours", "local_time", "local_date", "weekday"})
TRUTHS = ("subject.suppressed", "record.suppressed", "subject.restricted")
# names that are the latest event naming the record with an effect
RECORD_EFFECTS = {"record.resolved_at": "resolve", "record.erased_at": "erase"}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
COLUMNS = {  # names that are columns of the records table (never NULL)
    "record.id": ("id", Kind.STRING),
    "record.subject": ("subject", Kind.STRING),
    "record.source": ("source", Kind.STRING),
    "record.collected_at": ("collected_at", Kind.INSTANT),
    "subject.id": ("subject", Kind.STRING),
}


@attrs.frozen(repr=False)
class Tables(Value):
    """The four tables a condition reads: fairproc's own, or views of a host's tables with
    the same columns (:mod:`fairproc.adapters.mapped_views`)."""

    records: Any  # a Table, or a named subquery with its columns
    categories: Any
    events: Any
    suppression: Any
    # names these tables cannot give exactly, left to the Python check: "record.categories",
    # "record.suppressed", and "kind:<kind>" ("kind:*": any) for event kinds whose order at
    # one instant they do not hold
    inexact: frozenset[str] = frozenset()
    # the events' columns that order events at one instant, the last added last
    event_order: tuple[str, ...] = ("seq",)
    # fairproc's own tables, with its own indexes (the planner hints below are written for
    # them); False for views of a host's tables
    own: bool = True
    # whether facts counting the subject's collections (the retention fixpoint, a nested
    # pass per level) are compiled: over views of several host tables each pass multiplies
    # the branches probed, and such facts are better finished in Python
    collections: bool = True
    # over views: ``r.collected_at`` in some intervals, said through the record's own stored
    # column where it can be (the host's index narrows, and the instant is computed only for
    # rows near a bound); exact, or None where the tables have no such column
    stored_range: Callable[[Any, Sequence[Interval]], SqlBool | None] | None = None
    # ``table AS name``, each made once: an alias builds its columns when first used, and
    # every statement names its tables r, e1, e2, ... the same way. Held by the store's
    # tables, so they go with the store.
    _aliases: dict[tuple[str, str], Any] = attrs.field(factory=dict, eq=False, repr=False)

    def alias(self, table: Any, name: str) -> Any:
        key = (table.name, name)
        found = self._aliases.get(key)
        if found is None:
            found = self._aliases[key] = table.alias(name)
        return found


@attrs.frozen(repr=False)
class Compiled(Value):
    where: SqlBool  # every row the condition holds for, and perhaps more
    sure: SqlBool  # only rows it holds for

    @property
    def exact(self) -> bool:
        return self.where is self.sure

    def sure_flag(self) -> Any:
        """1 for a row ``sure`` holds for, else 0: which rows ``where`` selects need no
        second look in Python."""
        if isinstance(self.sure, bool):
            return sa.literal(int(self.sure), sa.Integer())
        return sa.case((self.sure, 1), else_=0)


# --- values and truths -----------------------------------------------------------------------


@attrs.frozen(repr=False)
class _Const(Value):
    value: Any


@attrs.frozen(repr=False)
class _Sql(Value):
    expr: ColumnElement[Any]
    kind: Kind
    nullable: bool = True  # False: never NULL (a NOT NULL column, a truth as 0 or 1)


@attrs.frozen(repr=False)
class _Shifted(Value):
    """``base`` moved by calendar ``shifts`` in turn: exact only in Python."""

    base: ColumnElement[Any]
    shifts: tuple[tuple[Period, int], ...]
    nullable: bool = True


@attrs.frozen(repr=False)
class _Unknown(Value):
    pass


_Val: TypeAlias = _Const | _Sql | _Shifted | _Unknown
UNKNOWN = _Unknown()


@attrs.frozen(repr=False)
class _B(Value):
    sure: SqlBool
    maybe: SqlBool


def _exact(expr: SqlBool) -> _B:
    return _B(expr, expr)


RESIDUAL = _B(False, True)


def _and(items: Sequence[SqlBool]) -> SqlBool:
    if any(i is False for i in items):
        return False
    rest = [i for i in items if i is not True]
    if not rest:
        return True
    return rest[0] if len(rest) == 1 else sa.and_(*rest)  # type: ignore[arg-type]


def _or(items: Sequence[SqlBool]) -> SqlBool:
    if any(i is True for i in items):
        return True
    rest = [i for i in items if i is not False]
    if not rest:
        return False
    return rest[0] if len(rest) == 1 else sa.or_(*rest)  # type: ignore[arg-type]


def _not(item: SqlBool) -> SqlBool:
    if isinstance(item, bool):
        return not item
    return sa.not_(item)


def _safe(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """Never NULL: a comparison with a missing operand is false."""
    return sa.func.coalesce(expr, sa.false())


def _negate(item: SqlBool, nullable: bool = True) -> SqlBool:
    """``not item``, two-valued: where ``item`` is NULL (a missing operand: false), true."""
    if isinstance(item, bool) or not nullable:
        return _not(item)
    return sa.not_(_safe(item))


def _polar(item: SqlBool, negated: bool, nullable: bool = True) -> SqlBool:
    """``item``, or its two-valued negation. Unnegated it may stay NULL: wherever a truth is
    used (WHERE, CASE WHEN, under AND and OR) NULL already counts as false."""
    return _negate(item, nullable) if negated else item


def _same(a: SqlBool, b: SqlBool) -> bool:
    return a is b or (isinstance(a, bool) and a == b)


def _combine(parts: Sequence[_B], join: Any) -> _B:
    sure = join([p.sure for p in parts])
    if all(_same(p.sure, p.maybe) for p in parts):
        return _B(sure, sure)
    return _B(sure, join([p.maybe for p in parts]))


_CMP = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


# --- calendar periods: their shortest and longest length, and exact solutions -----------------


@functools.cache
def _days_range(months: int, days: int) -> tuple[int, int] | None:
    """The fewest and most days that ``relativedelta(months=months, days=days)`` moves a
    date, over a whole 400-year Gregorian cycle (the calendar repeats after it)."""
    start, end = 2000 * 12, 2400 * 12  # months since year 0, January
    low, high = start + min(0, months), end + max(0, months)
    try:
        # The ordinal of each month's first day, from which each month's length follows.
        firsts = [dt.date(k // 12, k % 12 + 1, 1).toordinal() for k in range(low, high + 2)]
    except (ValueError, OverflowError):
        return None
    # Each month is one of a few shapes: its length, the length of the month it lands in,
    # and the days between their first days.
    shapes = {
        (
            firsts[k - low + 1] - firsts[k - low],
            firsts[k + months - low + 1] - firsts[k + months - low],
            firsts[k + months - low] - firsts[k - low],
        )
        for k in range(start, end)
    }
    moves = [
        gap + min(day, length2) - day + days
        for length, length2, gap in shapes
        for day in (1, 29, 30, 31)
        if day <= length
    ]
    return min(moves), max(moves)


def shift_range(period: Period, sign: int) -> tuple[int, int] | None:
    """Bounds in microseconds of ``(x + period) - x`` for any instant ``x`` and zone."""
    months = (period.years * 12 + period.months) * sign
    days = (period.weeks * 7 + period.days) * sign
    elapsed = sign * (period.hours * 3600 + period.minutes * 60 + period.seconds) * 10**6
    if not months and not days:
        return elapsed, elapsed
    found = _days_range(months, days)
    if found is None:
        return None
    lo, hi = found
    return lo * DAY_US - OFFSET_SLACK_US + elapsed, hi * DAY_US + OFFSET_SLACK_US + elapsed


def chain_range(shifts: Sequence[tuple[Period, int]]) -> tuple[int, int] | None:
    lo = hi = 0
    for period, sign in shifts:
        found = shift_range(period, sign)
        if found is None:
            return None
        lo, hi = lo + found[0], hi + found[1]
    return lo, hi


class _Irregular(Exception):
    """A UTC offset that is not a whole quarter hour: sampling could miss a piece."""


def _quarter(moment: dt.datetime) -> None:
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() % 900:
        raise _Irregular


Interval = tuple[int | None, int | None]  # [start, end) in microseconds; None: unbounded


def solve(
    shifts: Sequence[tuple[Period, int]], tz: dt.tzinfo, op: str, bound: int
) -> list[Interval] | None:
    """Every ``x`` (microseconds) with ``f(x) op bound``, where ``f`` applies ``shifts`` as
    :meth:`Period.add_to` does, as sorted disjoint intervals; None when it cannot be done
    exactly (see the module's docstring)."""
    span = chain_range(shifts)
    if span is None:
        return None
    low, high = bound - span[1], bound - span[0]  # below low f < bound; above high f > bound
    if (high - low) // STEP_US > MAX_SAMPLES:
        return None

    # Every instant is shifted on integers (Period.add_to's exact answer, a day's gap looked
    # up once) and checked to be on a quarter-hour offset. With one shift, a whole local day
    # is known to move by one gap (IntegerShift.stretch), so it is stepped over in one go;
    # elsewhere the gap is sampled every STEP_US and each change found by bisection.
    chain = [integer_shift(period, tz, sign) for period, sign in shifts]

    def quarter(y: int) -> None:
        offset = utc_day_offset_us(tz, y // DAY_US)
        if offset is None:  # the clocks change that day: the offset at y itself
            _quarter(us_to_instant(y).astimezone(tz))
        elif offset % QUARTER_US:
            raise _Irregular

    def stretch(x: int) -> tuple[int, int]:
        """The gap at ``x``, and where the run of that gap known from ``x`` ends."""
        quarter(x)
        if len(chain) == 1:
            y, end = chain[0].stretch(x)
        else:
            y, end = x, x + 1
            for shift in chain:
                y = shift(y)
                quarter(y)
        quarter(y)
        return y - x, end

    def gap(x: int) -> int:
        return stretch(x)[0]

    try:
        pieces: list[tuple[int, int, int]] = []  # [start, end) shifted by a gap
        start, (current, reach) = low, stretch(low)
        pos = low  # the gap is ``current`` from ``start`` through ``pos``, and up to ``reach``
        while pos < high:
            if reach > pos + 1:  # known up to reach: look at reach itself
                x = min(reach, high)
                here, ahead = stretch(x)
                if here != current and x == reach:
                    pieces.append((start, x, current))
                    start, current = x, here
                elif here != current:  # a day's gap changed within the day: not solvable
                    raise _Irregular
            else:
                x = min(pos + STEP_US, high)
                here, ahead = stretch(x)
                if here != current:
                    lo, hi = pos, x  # the gap is current at lo, not at hi: find where it moves
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if gap(mid) == current:
                            lo = mid
                        else:
                            hi = mid
                    pieces.append((start, hi, current))
                    x = hi
                    start, (current, ahead) = hi, stretch(hi)
            pos, reach = x, max(ahead, x + 1)
        pieces.append((start, high + 1, current))
    except (_Irregular, OverflowError, ValueError):
        return None

    out: list[Interval] = []
    if op in ("<", "<=", "!="):
        out.append((None, low))
    for s, e, c in pieces:
        t = bound - c  # within the piece, f(x) op bound  <=>  x op t
        candidates = {
            "<": [(s, min(e, t))],
            "<=": [(s, min(e, t + 1))],
            ">": [(max(s, t + 1), e)],
            ">=": [(max(s, t), e)],
            "==": [(max(s, t), min(e, t + 1))],
            "!=": [(s, min(e, t)), (max(s, t + 1), e)],
        }[op]
        out.extend((a, b) for a, b in candidates if a < b)
    if op in (">", ">=", "!="):
        out.append((high + 1, None))
    return _merge(out)


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in intervals:  # already in order
        if merged:
            pa, pb = merged[-1]
            if pb is None or (a is not None and a <= pb):
                if pb is not None and (b is None or b > pb):
                    merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def _in_intervals(x: ColumnElement[Any], intervals: list[Interval]) -> SqlBool:
    parts: list[SqlBool] = []
    for a, b in intervals:
        conds: list[SqlBool] = []
        if a is not None:
            conds.append(x >= a)
        if b is not None:
            conds.append(x < b)
        parts.append(_and(conds) if conds else x.is_not(None))
    return _or(parts)


# --- sets of values of one latest instant ----------------------------------------------------


def _normal(spans: Sequence[Interval]) -> tuple[Interval, ...]:
    """``spans`` sorted, without empty ones, overlapping and touching ones merged."""
    kept = [(a, b) for a, b in spans if a is None or b is None or a < b]
    kept.sort(key=lambda s: (s[0] is not None, s[0] or 0))
    out: list[Interval] = []
    for a, b in kept:
        if out and (out[-1][1] is None or a is None or a <= out[-1][1]):
            start, end = out[-1]
            out[-1] = (start, None if end is None or b is None else max(end, b))
        else:
            out.append((a, b))
    return tuple(out)


def _complement(spans: tuple[Interval, ...]) -> tuple[Interval, ...]:
    """The gaps between normal ``spans``."""
    out: list[Interval] = []
    start: int | None = None  # where the current gap starts (None: unbounded)
    for a, b in spans:
        if a is not None:
            out.append((start, a))
        if b is None:
            return tuple(out)
        start = b
    out.append((start, None))
    return tuple(out)


def _spans(op: str, bound: int) -> tuple[Interval, ...]:
    """Every integer ``x`` with ``x op bound``."""
    return {
        "<": ((None, bound),),
        "<=": ((None, bound + 1),),
        ">": ((bound + 1, None),),
        ">=": ((bound, None),),
        "==": ((bound, bound + 1),),
        "!=": ((None, bound), (bound + 1, None)),
    }[op]


@attrs.frozen(repr=False)
class _Range(Value):
    """Values of one instant: ``spans`` (normal), and, when ``missing``, its being missing."""

    spans: tuple[Interval, ...]
    missing: bool = False

    def complement(self) -> _Range:
        return _Range(_complement(self.spans), not self.missing)

    def union(self, other: _Range) -> _Range:
        return _Range(_normal(self.spans + other.spans), self.missing or other.missing)

    def intersect(self, other: _Range) -> _Range:
        return self.complement().union(other.complement()).complement()

    def flip(self, negated: bool) -> _Range:
        return self.complement() if negated else self


PRESENT = _Range(((None, None),))


@attrs.frozen(repr=False)
class _Rows(Value):
    """Rows whose greatest ``column`` is a latest instant: those of ``table`` (under a fresh
    alias) that ``where`` keeps, which are never later than ``at``. ``own``: where the
    record asked about is one of them (its own collection), its instant, which answers a
    probe without a lookup whenever it is not later than ``at``."""

    table: Any  # a Table or a view of one (Tables)
    name: str
    column: str
    where: Callable[[Any], list[ColumnElement[bool]]]
    own: ColumnElement[Any] | None = None
    # the alias every probe of these rows uses (sibling subqueries may share one), made once
    # so that what filters them is compiled once; None: a fresh alias per probe
    alias: Any = None


# --- the compiler ----------------------------------------------------------------------------


class _AtOnly:
    """What a constant sub-expression may read when it is computed in Python: ``at``."""

    def __init__(self, at: dt.datetime):
        self.at = at


class Compiler:
    """Compile one condition for one ``at`` against the records alias ``r``."""

    def __init__(
        self,
        policy: Policy,
        at: dt.datetime,
        tables: Tables,
        r: Any,
        dialect: str,
        level: int | None = None,
        parent: Compiler | None = None,
    ):
        """``level``: how many passes of the interactions fixpoint the collections a fact
        counts are filtered through (see :meth:`counted`); by default as many as the policy
        needs. ``parent``: the compiler this one compiles a nested condition for (aliases are
        numbered across both)."""
        self.policy = policy
        self.tz = policy.tz
        self.at = at
        self.at_us = instant_to_us(at)
        self.t = tables
        self.r = r
        self.dialect = dialect
        self.vocab = vocabulary(policy, RECORDS_CONTEXT)
        self._aliases = 0
        self._root: Compiler = self if parent is None else parent._root
        self.level = collection_passes(policy) - 1 if level is None else level
        # the subject's records as counted collections: (alias, filter, exact), made once
        self._counted: tuple[Any, list[ColumnElement[bool]], bool] | None = None
        self._ranges: dict[int, tuple[str, _Range] | None] = {}  # by id() of a node

    def _exists(self, query: sa.Select[Any]) -> sa.Exists:
        """``EXISTS (query)``, kept a probe per row on PostgreSQL. Its planner turns an EXISTS
        into a semi- or anti-join, planned from its row estimate, which a condition of many
        subqueries puts far too low (17,559 rows where 339,312 came, the marketing list at a
        million records): without parallel workers (a streamed read is a cursor, which never
        has them) it then scanned every suppressing event for each row, minutes where the
        probes by the subject's index take half a minute. ``OFFSET 0`` keeps the subquery as
        written (PostgreSQL pulls up no subquery with one)."""
        if self.dialect == "postgresql":
            query = query.offset(0)
        return query.exists()

    def compile(self, node: Node) -> Compiled:
        b = self.cond(node)
        if _same(b.sure, b.maybe):
            return Compiled(b.sure, b.sure)
        return Compiled(b.maybe, b.sure)

    def value(self, node: Node) -> ColumnElement[Any] | None:
        """The SQL for a value a row holds (``find_rows``), as :func:`fairproc.storage.row_value`
        gives it (instants as integer microseconds, truths as 0 or 1); None when it is not
        exact in SQL."""
        v = self.val(node)
        if isinstance(v, _Sql):
            return v.expr
        if isinstance(v, _Const):
            if v.value is None:
                return sa.null()
            if isinstance(v.value, bool | dt.datetime):
                literal: ColumnElement[Any] = self.literal(v.value, Kind.NONE)
                return literal
            if isinstance(v.value, str | int):
                return sa.literal(v.value)
        return None  # a calendar shift, a local date or time: computed only in Python

    # -- helpers --

    def _alias(self, table: Any, name: str) -> Any:
        root = self._root
        root._aliases += 1
        return self.t.alias(table, f"{name}{root._aliases}")

    def unindexed(self, column: Any) -> Any:
        """``column``, kept from choosing the index SQLite's planner uses (``+column``). With
        no statistics (fairproc never runs ANALYZE) it takes any index matching equalities to
        be as good as another: a probe for one record's events would go through the
        subject's, reading each to test its record. Other databases weigh indexes by their
        statistics and get the column as it is."""
        if self.dialect != "sqlite" or not self.t.own:
            return column
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)

    def kinds(self, effect: str) -> list[str]:
        return list(self.policy.events_with(effect))

    def is_const(self, n: Node) -> bool:
        if isinstance(n, Const | ListOf):
            return True
        if isinstance(n, Ref):
            return n.name == "at"
        if isinstance(n, Call):
            return n.func in PURE_FUNCTIONS and all(self.is_const(a) for a in n.args)
        if isinstance(n, Compare):
            return self.is_const(n.left) and self.is_const(n.right)
        if isinstance(n, In):
            return self.is_const(n.item) and self.is_const(n.container)
        if isinstance(n, And | Or):
            return all(self.is_const(i) for i in n.items)
        if isinstance(n, Not | Present):
            return self.is_const(n.item)
        if isinstance(n, Shift):
            return self.is_const(n.instant) and self.is_const(n.period)
        return False  # pragma: no cover

    def fold(self, n: Node) -> Any:
        return interpret(n, _AtOnly(self.at), self.vocab, self.tz)

    def literal(self, value: Any, kind: Kind) -> Any:
        if isinstance(value, dt.datetime):
            return sa.literal(instant_to_us(value), sa.BigInteger())
        if isinstance(value, bool):
            return sa.literal(int(value), sa.Integer())
        return value

    # -- truths --

    def cond(self, n: Node, negated: bool = False) -> _B:
        """``n`` (``not n`` when ``negated``) as SQL predicates. A NULL counts as false, as it
        does wherever the predicates are used (WHERE, CASE WHEN, under AND and OR), so ``not``
        is carried down to the leaves, and only a negated leaf that may be NULL needs wrapping
        (``_polar``): every other comparison stays bare, and indexes can serve it."""
        if self.is_const(n):
            return _exact(bool(self.fold(n)) != negated)
        found = self.ranged(n)
        if found is not None:
            return _exact(self.in_range(found[0], found[1].flip(negated)))
        if isinstance(n, Ref):
            if n.name == "subject.suppressed":
                return _exact(_polar(self.suppressed(), negated, nullable=False))
            if n.name == "record.suppressed":
                if n.name in self.t.inexact:
                    return RESIDUAL
                return _exact(_polar(self.record_suppressed(), negated, nullable=False))
            if n.name == "subject.restricted":
                restricted = self.restricted()
                if restricted is None:
                    return RESIDUAL
                return _exact(_polar(restricted, negated))
            return RESIDUAL  # pragma: no cover - no other boolean names over records
        if isinstance(n, Compare):
            return self.compare(n, negated)
        if isinstance(n, In):
            return self.member(n, negated)
        if isinstance(n, And | Or):
            # not (a and b) is (not a) or (not b), and not (a or b) is (not a) and (not b).
            return self.junction(n.items, isinstance(n, And) != negated, negated)
        if isinstance(n, Not):
            return self.cond(n.item, not negated)
        if isinstance(n, Present):
            return self.present(n.item, negated)
        if isinstance(n, Call):
            if n.func == "objected":
                return self.objected(n.args[0], negated)
            return RESIDUAL
        return RESIDUAL  # pragma: no cover

    def junction(self, items: Sequence[Node], conjunction: bool, negated: bool) -> _B:
        """The ``and`` (``conjunction``) or ``or`` of ``items``, each negated when ``negated``.
        Items about one latest instant are merged into one set of its values, asked once."""
        slots: list[_B | str] = []
        ranges: dict[str, _Range] = {}
        for item in items:
            found = None if self.is_const(item) else self.ranged(item)
            if found is None:
                slots.append(self.cond(item, negated))
                continue
            name, values = found[0], found[1].flip(negated)
            if name not in ranges:
                slots.append(name)
            elif conjunction:
                values = ranges[name].intersect(values)
            else:
                values = ranges[name].union(values)
            ranges[name] = values
        parts = [_exact(self.in_range(s, ranges[s])) if isinstance(s, str) else s for s in slots]
        return _combine(parts, _and if conjunction else _or)

    def compare(self, n: Compare, negated: bool) -> _B:
        op, left, right = n.op, self.val(n.left), self.val(n.right)
        for side in (left, right):
            if isinstance(side, _Const) and side.value is None:
                return _exact(negated)
        if isinstance(left, _Unknown) or isinstance(right, _Unknown):
            return RESIDUAL
        if isinstance(left, _Const):
            left, right, op = right, left, FLIP[op]
        if (
            self.t.stored_range is not None
            and isinstance(left, _Sql)
            and left.expr is self.r.c.collected_at
            and isinstance(right, _Const)
            and isinstance(right.value, dt.datetime)
        ):
            spans = _spans(op, instant_to_us(right.value))
            return _exact(_polar(self.in_intervals(left.expr, spans), negated, nullable=False))
        if isinstance(left, _Sql) and isinstance(right, _Const | _Sql):
            a = left.expr
            b = right.expr if isinstance(right, _Sql) else self.literal(right.value, left.kind)
            if left.kind is Kind.STRING and op not in ("==", "!=") and self.dialect == "postgresql":
                a = sa.collate(a, "C")
            nullable = left.nullable or (isinstance(right, _Sql) and right.nullable)
            return _exact(_polar(_CMP[op](a, b), negated, nullable))
        if isinstance(left, _Shifted) and isinstance(right, _Const):
            intervals = solve(left.shifts, self.tz, op, instant_to_us(right.value))
            if intervals is not None:
                return _exact(self.shifted_in(left, tuple(intervals), negated))
        lo_hi_a = self.bounds(left)
        lo_hi_b = self.bounds(right)
        if lo_hi_a is None or lo_hi_b is None:
            return RESIDUAL
        b = self.interval_compare(op, lo_hi_a, lo_hi_b)
        if negated:
            return _B(_negate(b.maybe), _negate(b.sure))
        return b

    def shifted_in(self, v: _Shifted, intervals: tuple[Interval, ...], negated: bool) -> SqlBool:
        """``v``'s base in ``intervals``; negated: in the gaps between them, or missing."""
        if not negated:
            return self.in_intervals(v.base, intervals)
        gaps = self.in_intervals(v.base, _complement(_normal(intervals)))
        return _or([gaps, v.base.is_(None)]) if v.nullable else gaps

    def in_intervals(self, x: Any, intervals: Sequence[Interval]) -> SqlBool:
        """``x`` in ``intervals``: through the tables' stored instant column where ``x`` is
        the record's own instant and they offer one (:attr:`Tables.stored_range`)."""
        if self.t.stored_range is not None and x is self.r.c.collected_at:
            found = self.t.stored_range(self.r, intervals)
            if found is not None:
                return found
        return _in_intervals(x, list(intervals))

    def bounds(self, v: _Val) -> tuple[Any, Any] | None:
        if isinstance(v, _Const) and isinstance(v.value, dt.datetime):
            us = sa.literal(instant_to_us(v.value), sa.BigInteger())
            return us, us
        if isinstance(v, _Sql) and v.kind is Kind.INSTANT:
            return v.expr, v.expr
        if isinstance(v, _Shifted):
            span = chain_range(v.shifts)
            if span is None:
                return None
            return v.base + span[0], v.base + span[1]
        return None

    def interval_compare(self, op: str, a: tuple[Any, Any], b: tuple[Any, Any]) -> _B:
        (alo, ahi), (blo, bhi) = a, b
        present = sa.and_(alo.is_not(None), blo.is_not(None))
        if op == "<":
            return _B(ahi < blo, alo < bhi)
        if op == "<=":
            return _B(ahi <= blo, alo <= bhi)
        if op == ">":
            return _B(alo > bhi, ahi > blo)
        if op == ">=":
            return _B(alo >= bhi, ahi >= blo)
        if op == "==":
            return _B(False, sa.and_(alo <= bhi, blo <= ahi))
        return _B(sa.or_(ahi < blo, bhi < alo), present)

    def member(self, n: In, negated: bool) -> _B:
        item = self.val(n.item)
        if isinstance(item, _Const) and item.value is None:
            return _exact(negated)
        if isinstance(n.container, ListOf):
            if not isinstance(item, _Sql):
                return RESIDUAL
            values = [self.literal(c.value, item.kind) for c in n.container.items]
            test: ColumnElement[Any]
            if n.negated:
                test = item.expr.not_in(values)
            else:
                test = self.likely(n.item, item.expr.in_(values), len(values))
            return _exact(_polar(test, negated, item.nullable))
        if isinstance(n.container, Ref) and n.container.name == "record.categories":
            if n.container.name in self.t.inexact:
                return RESIDUAL
            if isinstance(item, _Const):
                category: Any = item.value
                guard: SqlBool = True
            elif isinstance(item, _Sql):
                category, guard = item.expr, item.expr.is_not(None)
            else:
                return RESIDUAL
            c = self._alias(self.t.categories, "c")
            found = self._exists(
                sa.select(sa.literal(1))
                .select_from(c)
                .where(c.c.record_id == self.r.c.id, c.c.category == category)
            )
            holds = _and([guard, sa.not_(found) if n.negated else found])
            return _exact(_polar(holds, negated, nullable=False))
        return RESIDUAL

    def likely(self, item: Node, test: ColumnElement[Any], count: int) -> ColumnElement[Any]:
        """``record.source in [...]``, told to SQLite's planner as unselective when it lists
        most of the policy's sources. With no statistics (fairproc never runs ANALYZE) the
        planner takes the index on ``source`` to be selective for any list, and would read
        most of the table out of order, then sort it. Shorter lists keep the index: a rare
        source must not cost a scan of the table."""
        sources = len(self.policy.sources)
        if self.dialect != "sqlite" or not isinstance(item, Ref) or item.name != "record.source":
            return test
        if count * 2 <= sources:
            return test
        share = min(1.0, count / sources)  # as if records were spread evenly over sources
        # likelihood() needs a constant, not a bound parameter.
        return sa.func.likelihood(test, sa.literal_column(f"{share:.4f}"))

    def present(self, item: Node, negated: bool = False) -> _B:
        if isinstance(item, Ref) and item.name == "record.categories":
            return _exact(not negated)
        if isinstance(item, Call):
            fn = self.vocab.functions.get(item.func)
            if fn is not None and fn.missing is not None:
                return _exact(not negated)  # never missing: it answers ``missing`` instead
            parts = [self.present(a, negated) for a in item.args]
            return _combine(parts, _or if negated else _and)
        v = self.val(item)
        if isinstance(v, _Const):
            return _exact((v.value is not None) != negated)
        if isinstance(v, _Sql | _Shifted):
            expr = v.expr if isinstance(v, _Sql) else v.base
            return _exact(expr.is_(None) if negated else expr.is_not(None))
        return RESIDUAL

    # -- a latest instant, asked about as a set of its values --

    def ranged(self, n: Node) -> tuple[str, _Range] | None:
        """The latest instant ``n`` asks about (its name) and the values for which ``n``
        holds, when ``n`` only compares it with values computed in Python; else None."""
        key = id(n)
        if key not in self._ranges:
            self._ranges[key] = self._find_range(n)
        return self._ranges[key]

    def _find_range(self, n: Node) -> tuple[str, _Range] | None:
        if isinstance(n, Not):
            found = self.ranged(n.item)
            return None if found is None else (found[0], found[1].complement())
        if isinstance(n, And | Or):
            parts = [p for p in map(self.ranged, n.items) if p is not None]
            if len(parts) != len(n.items) or len({name for name, _ in parts}) != 1:
                return None
            join = _Range.intersect if isinstance(n, And) else _Range.union
            return parts[0][0], functools.reduce(join, (values for _, values in parts))
        if isinstance(n, Present):
            name = self.latest_name(n.item, [])
            return None if name is None else (name, PRESENT)
        if not isinstance(n, Compare):
            return None
        op, item, other = n.op, n.left, n.right
        if self.is_const(item):
            op, item, other = FLIP[op], other, item
        if not self.is_const(other):
            return None
        bound = self.fold(other)
        shifts: list[tuple[Period, int]] = []
        name = self.latest_name(item, shifts)
        if name is None or not isinstance(bound, dt.datetime):
            return None
        bound_us = instant_to_us(bound)
        spans = solve(shifts, self.tz, op, bound_us) if shifts else _spans(op, bound_us)
        return None if spans is None else (name, _Range(_normal(spans)))

    def latest_name(self, n: Node, shifts: list[tuple[Period, int]]) -> str | None:
        """The name of the latest instant ``n`` is (after ``shifts``, which it fills in the
        order they apply), or None."""
        while isinstance(n, Shift):
            if not isinstance(n.period, Const) or not isinstance(n.period.value, Period):
                return None
            shifts.insert(0, (n.period.value, 1 if n.op == "+" else -1))
            n = n.instant
        if isinstance(n, Ref) and self.rows_of(n.name) is not None:
            return n.name
        return None

    def in_range(self, name: str, values: _Range) -> SqlBool:
        """The latest instant ``name`` is one of ``values``: the greatest of its rows lies in
        [a, b) when some row is at or after ``a`` and none at or after ``b``."""
        rows = self.rows_of(name)
        assert rows is not None
        spans = list(values.spans)
        parts: list[SqlBool] = []
        if values.missing:
            below: int | None = None
            if spans and spans[0][0] is None:
                below = spans.pop(0)[1]
                if below is None:
                    return True  # any value, or none
            # Missing, or earlier than ``below``: no row at or after it.
            parts.append(_not(self.reaches(rows, below)))
        parts.extend(self.between(rows, a, b) for a, b in spans)
        return _or(parts)

    def between(self, rows: Sequence[_Rows], start: int | None, end: int | None) -> SqlBool:
        if end is None:
            return self.reaches(rows, start)
        if start is None and len(rows) == 1 and rows[0].own is None:
            # There is a latest instant and it is before ``end``: one probe for the greatest
            # row (an index seek), where two EXISTS would each look. Missing counts as false.
            if end > self.at_us:
                return self.reaches(rows, None)
            return sa.func.coalesce(self.greatest(rows), end) < end
        # The probe that rules most rows out first: few subjects reach a recent bound.
        return _and([_not(self.reaches(rows, end)), self.reaches(rows, start)])

    def reaches(self, rows: Sequence[_Rows], start: int | None) -> SqlBool:
        """Some row at or after ``start`` (any row when None)."""
        return _or([self.probe(r, start) for r in rows])

    def probe(self, rows: _Rows, start: int | None) -> SqlBool:
        if start is not None and start > self.at_us:
            return False  # no row is later than ``at``
        t = rows.alias if rows.alias is not None else self._alias(rows.table, rows.name)
        where = rows.where(t)
        if start is not None:
            where.append(t.c[rows.column] >= start)
        found = self._exists(sa.select(sa.literal(1)).select_from(t).where(*where))
        if rows.own is None:
            return found
        own = _and([rows.own <= self.at_us, True if start is None else rows.own >= start])
        return _or([own, found])

    # -- values --

    def val(self, n: Node) -> _Val:
        if self.is_const(n):
            return _Const(self.fold(n))
        r = self.r
        if isinstance(n, Ref):
            name = n.name
            if name in COLUMNS:
                column, kind = COLUMNS[name]
                return _Sql(r.c[column], kind, nullable=False)
            if name in TRUTHS:
                if name in self.t.inexact:
                    return UNKNOWN
                truth = {
                    "subject.suppressed": self.suppressed,
                    "record.suppressed": self.record_suppressed,
                    "subject.restricted": self.restricted,
                }[name]()
                if truth is None:
                    return UNKNOWN
                return _Sql(self.as_int(truth), Kind.BOOL, nullable=False)
            rows = self.rows_of(name)
            if rows is not None:
                return _Sql(self.greatest(rows), Kind.INSTANT)
            if name.startswith("subject."):
                fact = self.policy.facts.get(name[len("subject.") :])
                if fact is not None and fact.latest is None:
                    last = self.latest_of(fact.latest_of or ())
                    return UNKNOWN if last is None else _Sql(last, Kind.STRING)
            return UNKNOWN
        if isinstance(n, Shift):
            if not isinstance(n.period, Const) or not isinstance(n.period.value, Period):
                return UNKNOWN
            period: Period = n.period.value
            sign = 1 if n.op == "+" else -1
            base = self.val(n.instant)
            calendar_part = period.years or period.months or period.weeks or period.days
            if isinstance(base, _Sql) and base.kind is Kind.INSTANT:
                if not calendar_part:
                    span = shift_range(period, sign)
                    assert span is not None
                    return _Sql(base.expr + span[0], Kind.INSTANT, base.nullable)
                return _Shifted(base.expr, ((period, sign),), base.nullable)
            if isinstance(base, _Shifted):
                return _Shifted(base.base, (*base.shifts, (period, sign)), base.nullable)
            return UNKNOWN
        if isinstance(n, Compare | In | And | Or | Not | Present | Call):
            if isinstance(n, Call) and n.func != "objected":
                return UNKNOWN
            b = self.cond(n)
            if _same(b.sure, b.maybe):
                return _Sql(self.as_int(b.sure), Kind.BOOL, nullable=False)
        return UNKNOWN

    def as_int(self, truth: SqlBool) -> ColumnElement[Any]:
        if isinstance(truth, bool):
            return sa.literal(int(truth), sa.Integer())
        return sa.case((truth, 1), else_=0)

    # -- the subject's facts, as correlated subqueries --

    def rows_of(self, name: str) -> tuple[_Rows, ...] | None:
        """The rows whose greatest instant ``name`` is (none: always missing), or None when
        ``name`` is not a latest instant."""
        r, at_us = self.r, self.at_us
        effect = RECORD_EFFECTS.get(name)
        if effect is not None:
            kinds = self.kinds(effect)
            if not kinds:
                return ()

            def resolved(e: Any, kinds: list[str] = kinds) -> list[ColumnElement[bool]]:
                return [
                    # Through the index on the record: it finds the record's own events.
                    self.unindexed(e.c.subject) == r.c.subject,
                    e.c.record == r.c.id,
                    e.c.kind.in_(kinds),
                    e.c.at <= at_us,
                ]

            return (_Rows(self.t.events, "e", "at", resolved),)
        if name in COLUMNS or name in TRUTHS:
            return None
        if name.startswith("record."):
            found_fact = self.policy.facts.get(name[len("record.") :])
            if found_fact is None or not found_fact.of_record or not found_fact.latest:
                return None
            named = list(found_fact.latest)

            def of_record(e: Any) -> list[ColumnElement[bool]]:
                return [
                    self.unindexed(e.c.subject) == r.c.subject,
                    e.c.record == r.c.id,
                    e.c.kind.in_(named),
                    e.c.at <= at_us,
                ]

            return (_Rows(self.t.events, "e", "at", of_record),)
        if not name.startswith("subject."):
            return None
        fact = self.policy.facts.get(name[len("subject.") :])
        if fact is None or fact.latest is None or fact.of_record:
            return None
        found: list[_Rows] = []
        if fact.collections:
            if not self.t.collections or not self.collections_exact():
                return None  # checked in Python
            # First: the record's own collection often answers without a lookup.
            counted_alias, counted, _ = self.counted()

            def collections(rr: Any) -> list[ColumnElement[bool]]:
                return [rr.c.subject == r.c.subject, rr.c.collected_at <= at_us, *counted]

            found.append(
                _Rows(
                    self.t.records,
                    "rr",
                    "collected_at",
                    collections,
                    own=r.c.collected_at,
                    alias=counted_alias,
                )
            )
        if fact.latest:
            latest = list(fact.latest)

            def events(e: Any) -> list[ColumnElement[bool]]:
                return [e.c.subject == r.c.subject, e.c.kind.in_(latest), e.c.at <= at_us]

            found.append(_Rows(self.t.events, "e", "at", events))
        return tuple(found)

    def counted(self) -> tuple[Any, list[ColumnElement[bool]], bool]:
        """The subject's records as the collections that count as interactions: an alias of
        the records table, what keeps one of its rows (that it is the record asked about, or
        not overdue: the fixpoint of :mod:`fairproc.retention`), and whether that is exact.
        The pass at ``level`` counts the records the retention due condition, compiled one
        level down, does not select; the lowest level counts every record. The policy's
        number of passes reaches the fixpoint (:func:`fairproc.retention.collection_passes`),
        so the answer is exact when every level's due condition is. Compiled once per
        compiler: every probe of the collections shares the alias."""
        if self._counted is None:
            rr = self._alias(self.t.records, "rr")
            if self.level < 0:
                self._counted = (rr, [], True)
            else:
                sub = Compiler(self.policy, self.at, self.t, rr, self.dialect, self.level - 1, self)
                due = sub.cond(due_node(self.policy))
                exact = _same(due.sure, due.maybe)
                keep: list[ColumnElement[bool]]
                if isinstance(due.sure, bool):
                    keep = [rr.c.id == self.r.c.id] if due.sure else []
                else:
                    # The record asked about counts for itself; a NULL (a missing operand)
                    # is not due.
                    keep = [sa.or_(rr.c.id == self.r.c.id, sa.not_(_safe(due.sure)))]
                self._counted = (rr, keep, exact)
        return self._counted

    def collections_exact(self) -> bool:
        """Whether the collections that count are selected exactly in SQL at this level."""
        return self.counted()[2]

    def greatest(self, rows: Sequence[_Rows]) -> ColumnElement[Any]:
        """The greatest instant of ``rows`` (NULL when there is none)."""
        parts: list[ColumnElement[Any]] = []
        for each in rows:
            t = each.alias if each.alias is not None else self._alias(each.table, each.name)
            column = t.c[each.column]
            if self.dialect == "sqlite" and not self.t.own:
                # SQLite carries a correlated condition into the branches of a view (a
                # UNION ALL), to reach each host table's index, only when no aggregate reads
                # it: the greatest as the first row, highest first (NULLs sort last).
                found = sa.select(column).where(*each.where(t)).order_by(column.desc()).limit(1)
            else:
                found = sa.select(sa.func.max(column)).where(*each.where(t))
            parts.append(found.scalar_subquery())
        if not parts:
            return sa.null()
        if len(parts) == 1:
            return parts[0]
        padded = [sa.func.coalesce(p, SENTINEL) for p in parts]
        greatest = sa.func.max(*padded) if self.dialect == "sqlite" else sa.func.greatest(*padded)
        return sa.func.nullif(greatest, SENTINEL)

    def _last_kind(self, kinds: Sequence[str]) -> ColumnElement[Any] | None:
        """Which of ``kinds`` the subject's last event by ``at`` is; None when the tables do
        not hold the order of such events at one instant."""
        inexact = self.t.inexact
        if "kind:*" in inexact or any(f"kind:{k}" in inexact for k in kinds):
            return None
        e = self._alias(self.t.events, "e")
        return (
            sa.select(e.c.kind)
            .where(e.c.subject == self.r.c.subject, e.c.kind.in_(list(kinds)), e.c.at <= self.at_us)
            .order_by(e.c.at.desc(), *(e.c[c].desc() for c in self.t.event_order))
            .limit(1)
            .scalar_subquery()
        )

    def latest_of(self, kinds: Sequence[str]) -> ColumnElement[Any] | None:
        if not kinds:
            return sa.null()
        return self._last_kind(kinds)

    def restricted(self) -> SqlBool | None:
        """NULL when the subject has no such event (counts as false); None when not said
        exactly in SQL."""
        on, off = self.kinds("restrict"), self.kinds("lift_restriction")
        only_on = [k for k in on if k not in off]
        if not only_on:
            return False
        last = self._last_kind(list(dict.fromkeys(on + off)))
        return None if last is None else last.in_(only_on)

    def _suppressing(self, e: Any) -> list[ColumnElement[bool]]:
        """The events (``e``) that put their subject's addresses on the suppression list, as
        :func:`fairproc.world.suppressing_reason` reads them."""
        marketing = sorted(self.policy.suppressing_purposes())
        reasons: list[ColumnElement[bool]] = []
        if self.kinds("suppress"):
            reasons.append(e.c.kind.in_(self.kinds("suppress")))
        if self.kinds("erase"):
            reasons.append(sa.and_(e.c.kind.in_(self.kinds("erase")), e.c.record.is_(None)))
        if self.kinds("object"):
            purpose = e.c.purpose.is_(None)
            if marketing:
                purpose = sa.or_(purpose, e.c.purpose.in_(marketing))
            reasons.append(sa.and_(e.c.kind.in_(self.kinds("object")), purpose))
        return reasons

    def suppressed(self) -> SqlBool:
        """The subject unsubscribed, objected to marketing or was erased, by ``at``."""
        e = self._alias(self.t.events, "e")
        reasons = self._suppressing(e)
        if not reasons:
            return False
        return self._exists(
            sa.select(sa.literal(1))
            .select_from(e)
            .where(e.c.subject == self.r.c.subject, e.c.at <= self.at_us, sa.or_(*reasons))
        )

    def record_suppressed(self) -> SqlBool:
        """The record's address is on the suppression list by ``at``: a stored entry, or any
        subject who gave the address and then unsubscribed, objected to marketing or was
        erased (suppression by address, reference-policy.md)."""
        category = self.policy.info.email_category
        if not category:
            return False
        r = self.r
        c = self._alias(self.t.categories, "c")
        s = self._alias(self.t.suppression, "s")
        # One level of correlation only (a nested IN (SELECT ...) would not correlate).
        stored = self._exists(
            sa.select(sa.literal(1))
            .select_from(c.join(s, s.c.email_norm == c.c.norm))
            .where(c.c.record_id == r.c.id, c.c.category == category, s.c.at <= self.at_us)
        )
        mine = self._alias(self.t.categories, "c")
        theirs = self._alias(self.t.categories, "c")
        given = self._alias(self.t.records, "rr")
        e = self._alias(self.t.events, "e")
        reasons = self._suppressing(e)
        if not reasons:
            return stored
        derived = self._exists(
            sa.select(sa.literal(1))
            .select_from(
                mine.join(theirs, theirs.c.norm == mine.c.norm)
                .join(given, given.c.id == theirs.c.record_id)
                .join(e, e.c.subject == theirs.c.subject)
            )
            .where(
                mine.c.record_id == r.c.id,
                mine.c.category == category,
                theirs.c.category == category,
                e.c.at <= self.at_us,
                given.c.collected_at <= e.c.at,
                sa.or_(*reasons),
            )
        )
        return _or([stored, derived])

    def objected(self, arg: Node, negated: bool = False) -> _B:
        purpose = self.val(arg)
        if isinstance(purpose, _Const):
            if purpose.value is None:
                return _exact(negated)
            value: Any = purpose.value
            guard: SqlBool = True
        elif isinstance(purpose, _Sql):
            value, guard = purpose.expr, purpose.expr.is_not(None)
        else:
            return RESIDUAL
        kinds = self.kinds("object")
        if not kinds:
            return _exact(negated)
        e = self._alias(self.t.events, "e")
        found = self._exists(
            sa.select(sa.literal(1))
            .select_from(e)
            .where(
                e.c.subject == self.r.c.subject,
                e.c.kind.in_(kinds),
                e.c.at <= self.at_us,
                sa.or_(e.c.purpose.is_(None), e.c.purpose == value),
            )
        )
        return _exact(_polar(_and([guard, found]), negated, nullable=False))

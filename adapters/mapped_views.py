"""The host's tables seen in the shape the SQL compiler reads, so that conditions over a mapped
store compile to SQL over the host's own columns (:mod:`fairproc.adapters.sqlcompile`).

The compiler reads four tables: records (``id``, ``subject``, ``source``, ``collected_at``),
categories (``record_id``, ``category``, ``subject``, ``norm``), events (``seq``, ``id``,
``subject``, ``kind``, ``at``, ``record``, ``purpose``) and the suppression list. Over a
mapping they are views written at the head of each statement (``WITH ... AS NOT
MATERIALIZED``, so the database carries a subject's lookup into every branch and reaches
the host's indexes; nothing is created in the host's database):

* records: a ``UNION ALL`` of one branch per mapped record table, each giving the record id
  as :class:`fairproc.adapters.mapped_sql.MappedSqlStore` spells it (several columns joined
  by ``/``), the subject (through the subjects table where the mapping says so), the source
  (a fixed name, a column as it is, or a ``CASE`` over its value map) and the instant;
* categories: one branch per mapped category, a row wherever one of its columns holds a
  value, with the normalised address for the policy's email category;
* events: fairproc's own events table and one branch per mapped event table. Ties at one
  instant are broken as the store's histories break them: fairproc's own events first, in
  the order they were added, then each host table's in mapping order (``src``, ``seq``);
* suppression: fairproc's own table, as it is.

Instants are integer microseconds since the epoch, as the compiler's constants are: a zoned
column (PostgreSQL ``timestamptz``) by its epoch; a naive column by its wall-clock reading,
moved to UTC by the declared zone's offsets as Python's ``fold=0`` reads an ambiguous or a
skipped time (:func:`zone_steps`): a binary search of the zone's changes written into the
statement on PostgreSQL and MariaDB (:func:`local_to_utc`), a function registered on the
connection on SQLite.
SQLite keeps timestamps as text: the two layouts SQLAlchemy writes are read by
``strftime``; any other text goes through a function that reads it exactly as the store's
Python does. A record's instant compared with a bound is also said through the stored
column (:func:`stored_range`; on SQLite, for text in SQLAlchemy's layouts), for the host's
index, the zone's arithmetic left to rows near the bound.

Over views the compiler leaves to Python what would multiply there: the retention fixpoint
(``subject.last_interaction`` and other facts counting collections: each pass probes every
record table again for every candidate).

What the views cannot say exactly, they name (:attr:`Views.inexact`): the compiler leaves
those names to the Python check. A table whose ids, subjects, sources or instants cannot be
written as SQL makes no views at all (``None``), and the store evaluates in Python.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from fairproc.conditions import Const, Kind, Node, Ref
from fairproc.conditions.nodes import And, Compare, In, ListOf, Not, Or, Type
from fairproc.mapping import ID_SEPARATOR, EventTable, RecordTable
from fairproc.model import Policy
from fairproc.storage import MAX_EMAIL_LENGTH, instant_to_us
from fairproc.values import Value

UTC = dt.UTC
SECOND_US = 10**6
# Offsets are read from the zone database from 1900 to 2600: before, each zone's first
# offset holds. From 2200 every zone keeps its last rule (no change is ever scheduled that
# far ahead), and a rule's dates repeat every 400 years (146,097 days, whole weeks): a
# reading from 2200 on is looked up at its place in 2200-2600, as zoneinfo extends a rule.
FIRST_YEAR, FOLD_YEAR, LAST_YEAR = 1900, 2200, 2600
CYCLE_US = 146_097 * 86_400 * SECOND_US  # the Gregorian calendar's 400 years
INSTANT_FUNCTION = "fairproc_instant_us"
ZONE_FUNCTION = "fairproc_local_to_utc_us"

# SQLAlchemy's SQLite DATETIME text: with and without microseconds
_SQLITE_FULL = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
_SQLITE_MICROS = _SQLITE_FULL + ".[0-9][0-9][0-9][0-9][0-9][0-9]"
_GLOB_FULL = sa.literal_column(f"'{_SQLITE_FULL}'", sa.String())
_GLOB_MICROS = sa.literal_column(f"'{_SQLITE_MICROS}'", sa.String())


# --- naive wall-clock readings moved to UTC -------------------------------------------------


@attrs.frozen(repr=False)
class ZoneSteps(Value):
    """A zone's offsets as a step function of wall-clock time (microseconds, read as if UTC):
    ``offsets[i]`` holds from ``starts[i - 1]`` (inclusive) to ``starts[i]``."""

    starts: tuple[int, ...]
    offsets: tuple[int, ...]

    def offset(self, local_us: int) -> int:
        return self.offsets[bisect.bisect_right(self.starts, folded(local_us))]


FOLD_US = (
    (dt.date(FOLD_YEAR, 1, 1).toordinal() - dt.date(1970, 1, 1).toordinal()) * 86_400 * SECOND_US
)


def folded(local_us: int) -> int:
    """A reading from :data:`FOLD_YEAR` on, at its place in the 400 years after it."""
    return local_us if local_us < FOLD_US else FOLD_US + (local_us - FOLD_US) % CYCLE_US


def folded_sql(local_us: ColumnElement[Any]) -> ColumnElement[Any]:
    """:func:`folded` in SQL."""
    return sa.case(
        (local_us >= _int(FOLD_US), _int(FOLD_US) + (local_us - _int(FOLD_US)) % _int(CYCLE_US)),
        else_=local_us,
    )


@functools.lru_cache(maxsize=32)
def zone_steps(zone: ZoneInfo) -> ZoneSteps:
    """The wall-clock times at which ``zone``'s offset changes, as ``fold=0`` reads them.

    At a transition at UTC instant T from offset ``a`` to ``b``, a wall-clock time before
    ``T + max(a, b)`` takes ``a``: the skipped hour (clocks forward) and the first of a
    repeated one (clocks back) are read with the offset before, as ``datetime.replace(
    tzinfo=zone)`` with ``fold=0`` reads them. From ``T + max(a, b)`` on, ``b``."""

    def offset_at(utc_us: int) -> int:
        moment = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=utc_us)
        found = moment.astimezone(zone).utcoffset()
        assert found is not None
        return found // dt.timedelta(microseconds=1)

    step = 86400 * SECOND_US  # no zone has changed its offset and back within a day
    start = instant_to_us(dt.datetime(FIRST_YEAR, 1, 1, tzinfo=UTC))
    end = instant_to_us(dt.datetime(LAST_YEAR, 1, 1, tzinfo=UTC))
    starts: list[int] = []
    offsets = [offset_at(start)]
    here, before = start, offsets[0]
    while here < end:
        there = here + step
        after = offset_at(there)
        if after != before:
            lo, hi = here, there  # the offset changes in (lo, hi]: find T to the second
            while hi - lo > SECOND_US:
                mid = (lo + hi) // 2 // SECOND_US * SECOND_US
                if mid <= lo:
                    mid = lo + SECOND_US
                if offset_at(mid) == before:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi + max(before, after))
            offsets.append(after)
            before = after
        here = there
    return ZoneSteps(tuple(starts), tuple(offsets))


def local_to_utc(local_us: ColumnElement[Any], zone: ZoneInfo, dialect: str) -> ColumnElement[Any]:
    """``local_us`` (a wall-clock reading in ``zone``, as microseconds read as if UTC) as the
    UTC instant it means, by the zone's steps (:func:`zone_steps`) written into the statement:
    not the database's ``AT TIME ZONE``, whose time zone data may be older than Python's (and
    PostgreSQL reads a repeated hour as its later instant; MariaDB here has no zone tables).

    The offset is found by a binary search the database runs over two lists written in once
    each: PostgreSQL's ``width_bucket(operand, thresholds)`` ("the number of the bucket in
    which operand falls given an array listing the lower bounds of the buckets"; 0 below the
    first) into an array; MySQL's and MariaDB's ``INTERVAL(N, N1, N2, ...)`` (the index of the
    last Ni not above N, by binary search over sorted Ni; 0 below N1) into ``ELT``. A
    ``CASE`` of hundreds of branches, each repeating the column's expression, made every
    statement tens of kilobytes to parse and plan (8 ms of a 14 ms query on PostgreSQL)."""
    steps = zone_steps(zone)
    if len(set(steps.offsets)) == 1:
        return local_us - _int(steps.offsets[0]) if steps.offsets[0] else local_us
    lookup = folded_sql(local_us)
    if dialect == "postgresql":
        starts: ColumnElement[Any] = sa.literal_column(
            f"'{{{','.join(map(str, steps.starts))}}}'::bigint[]"
        )
        offsets = sa.literal_column(
            f"('{{{','.join(map(str, steps.offsets))}}}'::bigint[])",
            postgresql.ARRAY(sa.BigInteger(), zero_indexes=False),
        )
        bucket = sa.func.width_bucket(lookup, starts, type_=sa.Integer())
        return local_us - offsets[bucket + _int(1)]
    if dialect in ("mysql", "mariadb"):
        index = sa.func.interval(lookup, *map(_int, steps.starts), type_=sa.Integer())
        offset = sa.func.elt(index + _int(1), *map(_int, steps.offsets))
        return local_us - sa.cast(offset, sa.BigInteger())
    raise ValueError(f"no SQL for a zone's steps on {dialect}")


def _int(value: int) -> ColumnElement[Any]:
    """An integer written into the statement: a zone's steps are hundreds of them, too many
    to bind one by one."""
    return sa.literal_column(str(int(value)), sa.BigInteger())


# --- columns as the compiler's values -------------------------------------------------------


def instant_us(column: Any, zone: ZoneInfo | None, dialect: str) -> ColumnElement[Any] | None:
    """``column`` as integer microseconds since the epoch, or None when SQL cannot say it
    exactly (a naive column with no declared zone: the store refuses to read it). SQLite text
    in another layout is read by ``fairproc_instant_us(text, "table.column")``, which the
    store registers on its connections (:func:`sqlite_instant_function`)."""
    kind = column.type
    zoned = isinstance(kind, sa.DateTime) and bool(kind.timezone)
    if dialect == "postgresql":
        if not isinstance(kind, sa.DateTime):
            return None
        epoch = sa.cast(sa.extract("epoch", column) * SECOND_US, sa.BigInteger())
        if zoned:
            return epoch
        return None if zone is None else local_to_utc(epoch, zone, dialect)
    if dialect in ("mysql", "mariadb"):
        if not isinstance(kind, sa.DateTime) or zone is None:
            return None
        wall = sa.func.timestampdiff(sa.text("MICROSECOND"), "1970-01-01 00:00:00", column)
        return local_to_utc(sa.cast(wall, sa.BigInteger()), zone, dialect)
    if dialect == "sqlite":
        if zone is None:
            return None  # text without an offset: refused when read; with one: not said here
        text = sa.cast(column, sa.String())
        seconds = sa.cast(sa.func.strftime(sa.literal_column("'%s'"), text), sa.Integer()) * _int(
            SECOND_US
        )
        micros = sa.cast(sa.func.substr(text, _int(21), _int(6)), sa.Integer())
        reading = sa.case(
            (text.op("GLOB")(_GLOB_MICROS), seconds + micros),
            (text.op("GLOB")(_GLOB_FULL), seconds),
        )
        fallback = sa.func.fairproc_instant_us(text, f"{column.table.name}.{column.name}")
        if len(set(zone_steps(zone).offsets)) > 1:
            # SQLite runs in this process: the zone's offset is found by a function of ours
            # (a bisection), not a CASE of hundreds of steps written into every statement.
            utc: ColumnElement[Any] = sa.func.fairproc_local_to_utc_us(
                reading, sa.literal_column(f"'{zone.key}'")
            )
        else:
            utc = local_to_utc(reading, zone, dialect)
        return sa.case(
            (sa.or_(text.op("GLOB")(_GLOB_MICROS), text.op("GLOB")(_GLOB_FULL)), utc),
            else_=fallback,
        )
    return None


def sqlite_zone_function(local_us: Any, zone: Any) -> int | None:
    """``fairproc_local_to_utc_us(local_us, zone)`` on SQLite connections: a wall-clock
    reading in the named zone as the UTC instant it means (:func:`zone_steps`)."""
    if local_us is None:
        return None
    return int(local_us) - zone_steps(ZoneInfo(str(zone))).offset(int(local_us))


def sqlite_instant_function(
    read: Callable[[str, str], dt.datetime],
) -> Callable[[Any, Any], int | None]:
    """The function registered on SQLite connections as ``fairproc_instant_us(text, key)``:
    text in a layout ``strftime`` does not read, read as the store's Python reads the column
    ``key`` ("table.column")."""

    def instant(text: Any, key: Any) -> int | None:
        if text is None:
            return None
        # A value the store refuses raises here: SQLite ends the statement, and the store
        # reports it (a StoreError), as its Python path would, rather than skip the row.
        return instant_to_us(read(str(key), str(text)))

    return instant


def _text(column: Any) -> ColumnElement[Any] | None:
    """A column's value as the store's ``str()`` gives it, or None when SQL's text of it
    may differ (floats, dates, decimals)."""
    kind = column.type
    if isinstance(kind, sa.String):
        return column  # type: ignore[no-any-return]
    if isinstance(kind, sa.Integer) and not isinstance(kind, sa.Boolean):
        return sa.cast(column, sa.String())
    return None


# --- the views ------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Branch(Value):
    """One mapped record table as records: the columns the compiler reads, and what orders
    its rows as the store lists them."""

    name: str
    # its rows as the subquery ``r`` each statement reads (made once: proxying a view's
    # columns, each with its zone's arithmetic, costs milliseconds)
    rows: sa.Subquery
    source: str | None  # the one source of every row, when the mapping fixes it
    # the sources its rows can have, when the mapping lists them (fixed or a value map)
    sources: tuple[str, ...] | None
    # rows whose instant is in some intervals, by the stored column (its index): a superset
    stored_range: Callable[[Any, Sequence[tuple[int | None, int | None]]], Any] | None = None


@attrs.frozen(repr=False)
class Views(Value):
    records: sa.CTE
    categories: sa.CTE
    events: sa.CTE
    suppression: sa.Table
    branches: tuple[Branch, ...]  # per record table, with ``_o0``, ``_o1``... to order by
    inexact: frozenset[str]  # names the views cannot give exactly (checked in Python)


class BoundTable(Protocol):
    """What the views need of one mapped table: its spec, reflected table and zone."""

    spec: Any  # RecordTable or EventTable
    table: sa.Table
    zone: ZoneInfo | None


def build_views(
    policy: Policy,
    records: Sequence[BoundTable],
    host_events: Sequence[BoundTable],
    own_events: sa.Table,
    suppression: sa.Table,
    subject_of: Callable[[Any], tuple[Any, Any]],
    dialect: str,
    collation: str | None = None,
) -> Views | None:
    """The views of a mapped store's tables, or None when one of them cannot be said in SQL.

    ``subject_of(table)``: the subject id's column and the FROM clause it needs.
    ``collation`` (MySQL, MariaDB): the one collation every text column of the views is
    read in; the host's tables and fairproc's may each have their own, which a ``UNION``
    or a comparison across them refuses to mix."""

    def same(text: ColumnElement[Any]) -> ColumnElement[Any]:
        if collation is None:
            return text
        converted = sa.func.convert(text.op("USING")(sa.literal_column("utf8mb4")))
        return sa.collate(converted, collation)

    inexact: set[str] = set()
    email = policy.info.email_category
    branches: list[Branch] = []
    record_selects: list[sa.Select[Any]] = []
    category_selects: list[sa.Select[Any]] = []
    for bound in records:
        spec = bound.spec
        assert isinstance(spec, RecordTable)
        t = bound.table
        subject_col, joined = subject_of(bound)
        subject = _text(subject_col)
        ids = [_text(t.c[c]) for c in spec.id]
        at = instant_us(t.c[spec.collected_at], bound.zone, dialect)
        source = _source(spec, t)
        if subject is None or any(i is None for i in ids) or at is None or source is None:
            return None
        record_id: ColumnElement[Any] = ids[0]  # type: ignore[assignment]
        for part in ids[1:]:
            record_id = record_id + ID_SEPARATOR + part
        where = [subject_col.is_not(None), *_source_where(spec, t)]
        columns = [
            same(record_id).label("id"),
            same(subject).label("subject"),
            same(_as_text(source)).label("source"),
            _as_int(at).label("collected_at"),
        ]
        base = sa.select(*columns).select_from(joined).where(*where)
        record_selects.append(base)
        order = (
            [t.c[spec.order]]
            if spec.order is not None
            else [t.c[spec.collected_at], *(t.c[c] for c in spec.id)]
        )
        branches.append(
            Branch(
                spec.name,
                base.add_columns(
                    *(o.label(f"_o{i}") for i, o in enumerate(order)),
                    t.c[spec.collected_at].label("_stored_at"),
                ).subquery("r"),
                spec.source.fixed,
                None if spec.source.verbatim else spec.source.names(),
                stored_range(t.c[spec.collected_at], bound.zone, dialect),
            )
        )
        if spec.extra is not None:
            # categories kept in the JSON text: which a record holds is read in Python
            inexact.update(("record.categories", "record.suppressed"))
        for category, group in spec.categories.items():
            held = sa.or_(*(t.c[c].is_not(None) for c in group))
            norm: Any = sa.null()
            if category == email:
                if len(group) == 1 and isinstance(t.c[group[0]].type, sa.String):
                    trimmed = sa.func.trim(t.c[group[0]])
                    norm = sa.case(
                        (
                            sa.and_(trimmed != "", sa.func.length(trimmed) <= MAX_EMAIL_LENGTH),
                            sa.func.lower(trimmed),
                        ),
                        else_=sa.null(),
                    )
                else:
                    inexact.add("record.suppressed")
            category_selects.append(
                sa.select(
                    same(record_id).label("record_id"),
                    same(_as_text(sa.literal(category, sa.String()))).label("category"),
                    same(subject).label("subject"),
                    same(sa.cast(norm, sa.String())).label("norm"),
                )
                .select_from(joined)
                .where(*where, held)
            )
    e = own_events
    event_selects: list[sa.Select[Any]] = [
        sa.select(
            _as_int(_int(0)).label("src"),
            e.c.seq,
            same(e.c.id).label("id"),
            same(e.c.subject).label("subject"),
            same(e.c.kind).label("kind"),
            e.c.at,
            same(e.c.record).label("record"),
            same(e.c.purpose).label("purpose"),
        )
    ]
    for number, bound in enumerate(host_events, start=1):
        spec = bound.spec
        assert isinstance(spec, EventTable)
        t = bound.table
        subject_col, joined = subject_of(bound)
        subject = _text(subject_col)
        at = instant_us(t.c[spec.at], bound.zone, dialect)
        kind = _kind(spec, t)
        optional = {
            label: (_text(t.c[column]) if column is not None else sa.null())
            for label, column in (
                ("id", spec.id),
                ("record", spec.record),
                ("purpose", spec.purpose),
            )
        }
        if (
            subject is None
            or at is None
            or kind is None
            or any(v is None for v in optional.values())
        ):
            return None
        if spec.kind.column is not None:
            # two rows of one table at one instant: which came last is the host's order,
            # which SQL is not told
            inexact.update(f"kind:{k}" for k in spec.kind.names() or ("*",))
        where = [subject_col.is_not(None)]
        if spec.kind.column is not None:
            held = t.c[spec.kind.column]
            where.append(
                held.is_not(None) if spec.kind.verbatim else held.in_(list(spec.kind.values))
            )
        event_selects.append(
            sa.select(
                _as_int(_int(number)).label("src"),
                _as_int(_int(0)).label("seq"),
                same(sa.cast(optional["id"], sa.String())).label("id"),
                same(subject).label("subject"),
                same(_as_text(kind)).label("kind"),
                _as_int(at).label("at"),
                same(sa.cast(optional["record"], sa.String())).label("record"),
                same(sa.cast(optional["purpose"], sa.String())).label("purpose"),
            )
            .select_from(joined)
            .where(*where)
        )
    if not record_selects:
        return None
    return Views(
        records=_view(record_selects, "fp_records", dialect),
        categories=(
            _view(category_selects, "fp_categories", dialect)
            if category_selects
            else sa.select(
                sa.cast(sa.null(), sa.String()).label("record_id"),
                sa.cast(sa.null(), sa.String()).label("category"),
                sa.cast(sa.null(), sa.String()).label("subject"),
                sa.cast(sa.null(), sa.String()).label("norm"),
            )
            .where(sa.false())
            .cte("fp_categories")
        ),
        events=_view(event_selects, "fp_events", dialect),
        suppression=suppression,
        branches=tuple(branches),
        inexact=frozenset(inexact),
    )


def stored_range(
    column: Any, zone: ZoneInfo | None, dialect: str
) -> Callable[[Any, Sequence[tuple[int | None, int | None]]], Any] | None:
    """For a timestamp column: ``r.collected_at`` in some intervals (UTC microseconds), said
    through the stored value ``r._stored_at``. A naive column's wall-clock reading ``w`` is
    the instant ``u`` plus an offset between the zone's least and greatest (``lo``, ``hi``),
    so ``u >= a`` is ``w >= a + lo`` and (``w >= a + hi`` or ``u >= a``), the first part one
    range of the host's index (an ``OR`` of two would scan it twice): the instant, with
    its search of the zone's steps (or SQLite's function), is computed only for readings
    within the offsets' spread of a bound, and the host's index on the column can narrow. A
    second is added to each margin for columns that keep no fraction.

    SQLite keeps text, which orders as instants only in SQLAlchemy's layouts
    (``YYYY-MM-DD HH:MM:SS[.ffffff]``): there the sure comparisons hold only for text in those
    layouts, against a bound of whole seconds rounded the safe way, and any other text is
    read exactly (``u``)."""
    kind = column.type
    if dialect not in ("postgresql", "mysql", "sqlite") or not isinstance(kind, sa.DateTime):
        return None
    zoned = dialect == "postgresql" and bool(kind.timezone)
    if not zoned and zone is None:
        return None
    offsets = (0,) if zoned or zone is None else zone_steps(zone).offsets
    low, high = min(offsets) - SECOND_US, max(offsets) + SECOND_US
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)

    def moment(us: int, up: bool) -> Any:
        """The stored value for the bound ``us``; on SQLite, text of whole seconds rounded
        ``up`` or down (a fraction only adds to the 19 fixed-width characters before it, so
        ``w >= B`` in text says the reading is at least ``B``, and ``w < B`` less)."""
        whole, rest = divmod(us, SECOND_US)
        if dialect == "sqlite":
            us = (whole + (1 if up and rest else 0)) * SECOND_US
        try:
            found = epoch + dt.timedelta(microseconds=us)
        except OverflowError:
            return None
        found = found if zoned else found.replace(tzinfo=None)
        if dialect != "sqlite":
            return found
        if not 1 <= found.year <= 9999:
            return None
        stamp = f"{found.year:04d}-{found:%m-%d %H:%M:%S}"  # %Y does not pad years below 1000
        return sa.literal_column(f"'{stamp}'", sa.String())

    def in_intervals(r: Any, intervals: Sequence[tuple[int | None, int | None]]) -> Any:
        if "_stored_at" not in r.c:
            return None  # not a record table's own rows
        w, u = r.c._stored_at, r.c.collected_at
        by_stored, exact = [], []  # per interval: through the stored value; the instant only
        for start, end in intervals:
            stored, instants = [], []
            if start is not None:
                # rounded up where the comparison says "surely", down where "maybe"
                sure, maybe = moment(start + high, up=True), moment(start + low, up=False)
                if sure is None or maybe is None:
                    return None
                stored.append(sa.and_(w >= maybe, sa.or_(w >= sure, u >= start)))
                instants.append(u >= start)
            if end is not None:
                sure, maybe = moment(end + low, up=False), moment(end + high, up=True)
                if sure is None or maybe is None:
                    return None
                stored.append(sa.and_(w < maybe, sa.or_(w < sure, u < end)))
                instants.append(u < end)
            by_stored.append(sa.and_(*stored) if stored else w.is_not(None))
            exact.append(sa.and_(*instants) if instants else w.is_not(None))
        if not intervals:
            return sa.false()
        if dialect != "sqlite":
            return sa.or_(*by_stored)
        # SQLite: text in SQLAlchemy's layouts by its text, any other by its instant. Not a
        # CASE: SQLite evaluates a CASE's branch as a value, both sides of every AND and OR in
        # it, so the instant (a call of the zone's function) for every row; an AND or OR the
        # WHERE clause tests stops at its first answer.
        reading = sa.cast(w, sa.String())
        layout = sa.or_(reading.op("GLOB")(_GLOB_MICROS), reading.op("GLOB")(_GLOB_FULL))
        return sa.or_(sa.and_(layout, sa.or_(*by_stored)), sa.and_(sa.not_(layout), sa.or_(*exact)))

    return in_intervals


def with_fixed_source(node: Node, source: str) -> Node:
    """``node`` with ``record.source`` replaced by ``source``: compiled for a table whose rows
    all have that source, a condition on other sources folds to false before any SQL is
    written, and its table is not read at all."""
    if isinstance(node, Ref):
        return Const(source, Type(Kind.STRING)) if node.name == "record.source" else node
    if not attrs.has(type(node)):
        return node
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(node)):
        value = getattr(node, field.name)
        replaced: Any
        if isinstance(value, tuple):
            replaced = tuple(
                with_fixed_source(v, source) if attrs.has(type(v)) else v for v in value
            )
        elif attrs.has(type(value)) and not isinstance(value, Type):
            replaced = with_fixed_source(value, source)
        else:
            continue
        if replaced != value:
            changes[field.name] = replaced
    return attrs.evolve(node, **changes) if changes else node


def may_hold_for(node: Node, sources: Sequence[str]) -> bool:
    """Whether ``node`` may hold for a record of one of ``sources`` (a value-mapped table's
    names): False only when what it says of ``record.source`` alone rules every one out, so
    a sweep over one source does not read the tables that cannot hold it."""
    return any(_by_source(node, source) is not False for source in sources)


def _by_source(node: Node, source: str) -> bool | None:
    """``node``'s truth when ``record.source`` is ``source``, where that alone decides it;
    None when other facts may."""

    def is_source(n: Node) -> bool:
        return isinstance(n, Ref) and n.name == "record.source"

    if isinstance(node, Compare) and node.op in ("==", "!="):
        sides = (node.left, node.right)
        for here, there in (sides, sides[::-1]):
            if is_source(here) and isinstance(there, Const) and isinstance(there.value, str):
                return (source == there.value) == (node.op == "==")
        return None
    if isinstance(node, In) and is_source(node.item) and isinstance(node.container, ListOf):
        return (source in [c.value for c in node.container.items]) != node.negated
    if isinstance(node, Not):
        inner = _by_source(node.item, source)
        return None if inner is None else not inner
    if isinstance(node, And | Or):
        found = [_by_source(item, source) for item in node.items]
        decisive = isinstance(node, Or)  # a True decides an Or, a False an And
        if decisive in found:
            return decisive
        return (not decisive) if all(f is not None for f in found) else None
    return None


def _as_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A computed text column of a view, given the affinity the other branches' plain
    columns have: SQLite pushes a correlated condition into the branches of a ``UNION ALL``
    (so each reaches the host's indexes) only when a column's affinity is the same in all."""
    return sa.cast(value, sa.String())


def _as_int(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A computed integer column of a view (see :func:`_as_text`)."""
    return sa.cast(value, sa.BigInteger())


def _view(selects: Sequence[sa.Select[Any]], name: str, dialect: str) -> sa.CTE:
    """The branches as one view, written once at the head of a statement however often the
    statement reads it, and inlined where it is read (``NOT MATERIALIZED``: a materialised
    copy would have none of the host's indexes). MariaDB has no such word and merges or
    materialises as its optimiser sees fit."""
    union = selects[0] if len(selects) == 1 else sa.union_all(*selects)
    view = union.cte(name)
    if dialect in ("postgresql", "sqlite"):
        view = view.prefix_with("NOT MATERIALIZED")
    return view


def _source(spec: RecordTable, t: sa.Table) -> ColumnElement[Any] | None:
    return _named(spec.source, t)


def _kind(spec: EventTable, t: sa.Table) -> ColumnElement[Any] | None:
    return _named(spec.kind, t)


def _named(names: Any, t: sa.Table) -> ColumnElement[Any] | None:
    """A value map's name for each row: fixed, the column as it is, or a CASE over its map
    (None where the column is not text: the store maps only text values)."""
    if names.fixed is not None:
        return sa.literal(names.fixed, sa.String())
    column = t.c[names.column]
    if names.verbatim:
        return _text(column)
    if not isinstance(column.type, sa.String):
        return None
    return sa.case(
        *(
            (column == stored, sa.literal(meant, sa.String()))
            for stored, meant in names.values.items()
        ),
        else_=sa.null(),
    )


def _source_where(spec: RecordTable, t: sa.Table) -> list[Any]:
    column = spec.source.column
    if column is None:
        return []
    if spec.source.verbatim:
        return [t.c[column].is_not(None)]
    return [t.c[column].in_(list(spec.source.values))]

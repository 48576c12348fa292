"""A store over a host application's own SQL tables, read and written through a mapping
(:mod:`fairproc.mapping`): SQLite, PostgreSQL, MySQL/MariaDB on SQLAlchemy 2 Core.

Records and the events the mapping names live in the host's tables; everything else fairproc
keeps (the audit log, the suppression list, the events it writes itself, its revision and
keys) lives in fairproc's own tables (``<prefix>meta``, ``events``, ``suppression``, ``audit``,
``keys``, as :mod:`fairproc.adapters.sql` lays them out) in the same database, created if
absent, so an erasure and its audit commit in one transaction.

The store takes a URL, or the host's own SQLAlchemy ``Engine`` or ``Connection``: given a
Connection it writes on it, inside the host's transaction when one is open (a savepoint, so a
refused change set leaves the host's transaction as it was) and the host commits; it keeps no
global state and installs nothing on an engine it did not make.

What a mapped store cannot hold, it refuses with :class:`~fairproc.errors.InputError` before
writing anything: a record of a source no table holds, a category no column holds, a value
its column's type cannot keep. Row order: a host table has no "order first put", so records
come in mapping order, then by the instant and id of each table's rows; events of a subject
by instant (a stable merge of the host's event tables and fairproc's own).

Deleting rows follows the foreign keys reflected from the database: children first when the
change set deletes them too; a row still pointed at by a row the change set keeps (and whose
key neither cascades nor sets null) refuses the whole change set, naming the foreign key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import heapq
import hmac
import secrets
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa
from sqlalchemy import exc

from fairproc.clock import require_aware
from fairproc.conditions import Condition
from fairproc.conditions.vocabulary import Ctx
from fairproc.errors import InputError, Problem
from fairproc.mapping import (
    ID_SEPARATOR,
    EventTable,
    HostMapping,
    Mask,
    RecordTable,
    SubjectRef,
    column_path,
    load_mapping,
    named_policy,
)
from fairproc.model import Event, Policy, Record, SuppressionEntry, normalise_email
from fairproc.storage import (
    AuditEntry,
    BaseStore,
    ChangeSet,
    ConditionLike,
    Decide,
    Row,
    StoreError,
    audit_from_stored,
    build_history,
    check_changes,
    decode_data,
    encode_data,
    filter_records,
    hide_password,
    normalised,
    records_condition,
    records_value,
    row_value,
    select_rows,
    us_to_instant,
)
from fairproc.values import Value
from fairproc.world import SubjectHistory, derived_entries, record_addresses

from .mapped_views import (
    INSTANT_FUNCTION,
    ZONE_FUNCTION,
    Views,
    build_views,
    may_hold_for,
    sqlite_instant_function,
    sqlite_zone_function,
    with_fixed_source,
)
from .sql import (
    CHUNK,
    MAX_NORM_LENGTH,
    SCHEMA_VERSION,
    _first_line,
    _tables,
    _where,
    audit_row,
    event_row,
    snapshot,
    suppression_row,
)
from .sqlcompile import Compiled, Compiler, Tables

if TYPE_CHECKING:
    from .mapped_csv import MappedCsvStore

__all__ = ["MappedSqlStore", "open_mapped"]

UTC = dt.UTC
_STATE = ("meta", "events", "suppression", "audit", "keys")
PAGE = 1000  # rows read at a time; the histories a page needs are read together
# Rows fetched at a time where none needs a history: a few megabytes, and on PostgreSQL each
# fetch from the server-side cursor is a round trip (9 for 8,422 due rows at 1,000)
STREAM_ROWS = 10_000


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def split_words(value: Any, parts: int) -> list[str | None] | None:
    """Text over ``parts`` columns (a category over several columns): split at spaces, the
    rest in the last column; None for a value that is not text."""
    if not isinstance(value, str):
        return None
    split: list[str | None] = list(value.split(" ", parts - 1)) if value else []
    return split + [None] * (parts - len(split))


def joined_words(parts: Iterable[Any]) -> str | None:
    """A category over several columns read back: the non-empty parts joined by spaces."""
    held = [str(p) for p in parts if p is not None]
    return " ".join(held) if held else None


def masked_value(mask: Mask, value: Any, key: bytes | None) -> Any:
    """What a masked column holds instead of ``value``."""
    if mask.how == "null" or value is None:
        return None
    if mask.how == "fixed":
        return mask.value
    # A keyed hash: equal values stay equal (joins and counts keep working), and without
    # the key no one can test a guessed value against it.
    assert key is not None  # read before the write began
    digest = hmac.new(key, str(value).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:32]


def table_for(mapping: HostMapping, rec: Record, path: Sequence[str | int]) -> RecordTable:
    """The table (or file) that holds ``rec``'s source; InputError when none does."""
    spec = mapping.table_for_source(rec.source)
    if spec is None:
        mapped = sorted(s for t in mapping.records.values() for s in t.source.names())
        raise InputError.one(
            f"no table of the mapping holds source {rec.source!r} (mapped sources: "
            + ", ".join(mapped)
            + ")",
            path=(*path, "source"),
        )
    return spec


def leftover_data(
    spec: RecordTable,
    rec: Record,
    extra: dict[str, Any],
    values: dict[str, Any],
    place: str,
    path: Sequence[str | int],
) -> Problem | None:
    """The data no category column holds: with ``extra`` (what no column could keep as it
    is) into the table's extra column as fairproc's JSON, or a problem naming it when the
    table has none."""
    unmapped = sorted(k for k in rec.data if k not in spec.categories)
    if spec.extra is not None:
        extra.update((k, rec.data[k]) for k in unmapped)
        values[spec.extra] = encode_data(extra) if extra else None
        return None
    if not unmapped:
        return None
    return Problem(
        f"{place} has no column for {', '.join(map(repr, unmapped))}", path=(*path, "data")
    )


class _Bound:
    """A mapped table with its reflected columns."""

    spec: Any  # RecordTable or EventTable: each method asks for the one it reads

    def __init__(self, spec: RecordTable | EventTable, table: sa.Table, zone: str | None):
        self.spec = spec
        self.table = table
        self.zone = ZoneInfo(zone) if zone else None


def reflect(
    md: sa.MetaData, bind: sa.Engine | sa.Connection, only: list[str] | None = None
) -> None:
    """The host's tables into ``md``. SQLAlchemy cannot reflect an index on an expression
    (such as ``lower(trim(email))``, which serves fairproc's address lookups) and says so
    in a warning; fairproc reads no index, so the warning says nothing to the host."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", exc.SAWarning
        )
        md.reflect(bind, only=only)


_PLAN_FOR_ALL = sa.text(
    "SELECT current_setting('jit'), current_setting('cursor_tuple_fraction'), "
    "set_config('jit', 'off', true), set_config('cursor_tuple_fraction', '1', true)"
)
_PLAN_BACK = sa.text(
    "SELECT set_config('jit', :jit, true), set_config('cursor_tuple_fraction', :fraction, true)"
)


class MappedSqlStore(BaseStore):
    """A store over the host's own tables (see the module's docstring)."""

    def __init__(
        self,
        bind: str | sa.Engine | sa.Connection,
        mapping: HostMapping,
        *,
        create: bool = True,
    ):
        self.mapping = mapping
        self._owned = isinstance(bind, str)
        if isinstance(bind, str):
            try:
                url = sa.make_url(bind)
            except (exc.ArgumentError, ValueError) as error:
                raise StoreError(f"not a database URL: {hide_password(bind)!r} ({error})") from None
            if url.get_backend_name() in ("mysql", "mariadb") and "charset" not in url.query:
                url = url.update_query_dict({"charset": "utf8mb4"})
            bind = sa.create_engine(url)
        self.bind: sa.Engine | sa.Connection = bind
        engine = bind if isinstance(bind, sa.Engine) else bind.engine
        self.backend = engine.url.get_backend_name()
        self._dialect = engine.dialect
        self.where = engine.url.render_as_string(hide_password=True)
        self._held = threading.local()
        self._state_ready = False  # fairproc's own tables exist
        self._subject_statements: dict[str, sa.Select[Any]] | None = None
        self._audit_key: bytes | None = None
        self._views_made = False
        self._view_cache: Views | None = None
        self._policy_for_views: Policy | None = None
        self._instant_function = sqlite_instant_function(self._read_text)
        self._mask_key: bytes | None = None
        try:
            self._reflect()
            self._ensure_state(create)
        except BaseException:
            if self._owned and isinstance(self.bind, sa.Engine):
                self.bind.dispose()
            raise

    # -- opening --

    def _located(self, message: str, path: Sequence[str | int]) -> StoreError:
        line = self.mapping.line_of(path)
        where = (self.mapping.file or "<mapping>") + (f":{line}" if line else "")
        return StoreError(f"{where}: {'.'.join(str(p) for p in path)}: {message} ({self.where})")

    def _reflect(self) -> None:
        m = self.mapping
        names = [*m.records, *m.events] + ([m.subjects.table] if m.subjects else [])
        self.host = sa.MetaData()
        with self._guard("reflect the host's tables"), self._connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for section, table in [("record", t) for t in m.records] + [
                ("event", t) for t in m.events
            ]:
                if table not in present:
                    raise self._located(f"no table {table!r} in the database", (section, table))
            if m.subjects and m.subjects.table not in present:
                raise self._located(
                    f"no table {m.subjects.table!r} in the database", ("subjects", "table")
                )
            reflect(self.host, conn, only=list(dict.fromkeys(names)))
        self.records: dict[str, _Bound] = {}
        self.host_events: dict[str, _Bound] = {}
        specs: dict[str, RecordTable | EventTable] = {**m.records, **m.events}
        for name, spec in specs.items():
            reflected = self.host.tables[name]
            for column in spec.columns:
                if column not in reflected.c:
                    raise self._located(
                        f"table {name!r} has no column {column!r}",
                        column_path(spec, column),
                    )
            into = self.records if isinstance(spec, RecordTable) else self.host_events
            into[name] = _Bound(spec, reflected, m.zone_of(spec))
        self.subjects: sa.Table | None = None
        if m.subjects is not None:
            self.subjects = self.host.tables[m.subjects.table]
            for key in ("id", "key"):
                column = getattr(m.subjects, key)
                if column not in self.subjects.c:
                    raise self._located(
                        f"table {m.subjects.table!r} has no column {column!r}", ("subjects", key)
                    )

    def _ensure_state(self, create: bool) -> None:
        collation = None
        if self.backend == "mysql":
            engine = self.bind if isinstance(self.bind, sa.Engine) else self.bind.engine
            mariadb = bool(getattr(engine.dialect, "is_mariadb", False))
            collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
        self._collation = collation
        self.state_md = sa.MetaData()
        every = _tables(self.state_md, self.mapping.prefix, collation)
        # fairproc's records and categories tables are not made: the host's tables hold those.
        for name in ("records", "categories"):
            self.state_md.remove(every[name])
        self.meta, self.events = every["meta"], every["events"]
        self.suppression, self.audit, self.keys = (
            every["suppression"],
            every["audit"],
            every["keys"],
        )
        with self._own_write("create fairproc's tables") as conn:
            if sa.inspect(conn).has_table(self.meta.name):
                self._state_ready = True
                return
            if not create:
                raise StoreError(f"{self.where}: holds no fairproc tables; nothing was created")
            self.state_md.create_all(conn, checkfirst=True)
            conn.execute(
                sa.insert(self.meta),
                [
                    {"name": "schema_version", "value": SCHEMA_VERSION},
                    {"name": "revision", "value": 0},
                ],
            )
        self._state_ready = True

    # -- connections and transactions --

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        if isinstance(self.bind, sa.Connection):
            yield self.bind
            return
        with self.bind.connect() as conn:
            yield conn

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except exc.SQLAlchemyError as error:
            raise StoreError(
                f"mapped {self.backend} store at {self.where}: could not {action}: "
                f"{_first_line(error)}"
            ) from error

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        held: sa.Connection | None = getattr(self._held, "conn", None)
        with self._guard(action):
            if held is not None:
                yield held
                return
            with self._connect() as conn:
                yield conn
                if conn is not self.bind and conn.in_transaction():
                    # a read on a connection of the store's own: ended without a ROLLBACK,
                    # on which psycopg forgets the connection's prepared statements
                    conn.commit()

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        """One transaction: the host's, through a savepoint, when the store was given a
        Connection inside one; otherwise a transaction of its own, committed at the end."""
        if getattr(self._held, "conn", None) is not None:
            raise StoreError(
                f"mapped store at {self.where}: cannot {action} inside a decision or reading()"
            )
        with self._guard(action):
            if isinstance(self.bind, sa.Connection):
                conn = self.bind
                if conn.in_transaction():
                    if self.backend == "sqlite" and self._state_ready:
                        # pysqlite begins the database's transaction lazily, at the first
                        # INSERT, UPDATE or DELETE: a SAVEPOINT before it would begin (and
                        # its RELEASE commit) a transaction of its own. A write matching no
                        # row makes the host's transaction real first.
                        no_op = sa.update(self.meta).where(sa.false()).values(value=0)
                        conn.execute(no_op)
                    with conn.begin_nested():
                        yield conn
                else:
                    with conn.begin():
                        yield conn
                return
            with self.bind.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def _own_write(self, action: str) -> Iterator[sa.Connection]:
        """A transaction of fairproc's own on a connection of its own, even when the store was
        given the host's Connection: making fairproc's tables and keys is not the host's
        work to roll back (and DDL would end a MariaDB transaction)."""
        engine = self.bind if isinstance(self.bind, sa.Engine) else self.bind.engine
        with self._guard(action), engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        if self._owned and isinstance(self.bind, sa.Engine):
            self.bind.dispose()

    def holding_rows(self) -> str | None:
        """The first mapped table holding a row, or None when every one is empty."""
        with self._read("count the host's rows") as conn:
            for table in self.host.sorted_tables:
                if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                    return table.name
        return None

    def clear_rows(self) -> None:
        """Delete every row of the mapped tables and of fairproc's events, suppression and
        audit tables: what a scenario run leaves."""
        with self._write("clear a scenario's rows") as conn:
            for table in reversed(self.host.sorted_tables):
                conn.execute(sa.delete(table))
            for table in (self.events, self.suppression, self.audit):
                conn.execute(sa.delete(table))

    def drop_state(self) -> None:
        """Drop fairproc's own tables (the host's are the host's)."""
        with self._write("drop fairproc's tables") as conn:
            self.state_md.drop_all(conn)

    # -- values --

    def _subject_column(self, bound: _Bound) -> tuple[Any, Any]:
        """The subject id's column expression, and the FROM clause it needs."""
        ref: SubjectRef = bound.spec.subject
        t = bound.table
        if ref.column is not None:
            return t.c[ref.column], t
        assert self.subjects is not None and self.mapping.subjects is not None and ref.via
        s = self.subjects
        joined = t.join(s, s.c[self.mapping.subjects.id] == t.c[ref.via])
        return s.c[self.mapping.subjects.key], joined

    def _instant(self, bound: _Bound, column: str, value: Any) -> dt.datetime:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise self._located(
                    f"column {column!r} of table {bound.table.name!r} holds {value!r}, not a "
                    "timestamp",
                    (self._section(bound), bound.table.name),
                ) from None
        if not isinstance(value, dt.datetime):
            raise self._located(
                f"column {column!r} of table {bound.table.name!r} holds {type(value).__name__} "
                "values, not timestamps",
                (self._section(bound), bound.table.name),
            )
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        if bound.zone is None:
            raise self._located(
                f"column {column!r} of table {bound.table.name!r} holds timestamps without a "
                'zone and the mapping declares none: add timezone = "..." (never guessed)',
                (self._section(bound), bound.table.name),
            )
        return value.replace(tzinfo=bound.zone).astimezone(UTC)

    def _stored_instant(self, bound: _Bound, column: str, value: dt.datetime) -> dt.datetime:
        kind = bound.table.c[column].type
        if isinstance(kind, sa.DateTime) and kind.timezone:
            return value.astimezone(UTC)
        if bound.zone is None:
            raise self._located(
                f"column {column!r} of table {bound.table.name!r} keeps no zone and the mapping "
                'declares none: add timezone = "..."',
                (self._section(bound), bound.table.name),
            )
        return value.astimezone(bound.zone).replace(tzinfo=None)

    def _section(self, bound: _Bound) -> str:
        return "record" if isinstance(bound.spec, RecordTable) else "event"

    def _record_query(self, bound: _Bound) -> sa.Select[Any]:
        spec = bound.spec
        assert isinstance(spec, RecordTable)
        t = bound.table
        subject, joined = self._subject_column(bound)
        cols = [*(t.c[c] for c in spec.id), subject.label("_subject")]
        cols.append(t.c[spec.collected_at].label("_at"))
        if spec.source.column is not None:
            cols.append(t.c[spec.source.column].label("_source"))
        for group in spec.categories.values():
            cols.extend(t.c[c] for c in group)
        if spec.extra is not None:
            cols.append(t.c[spec.extra].label("_extra"))
        query = sa.select(*cols).select_from(joined).where(subject.is_not(None))
        return query.where(*self._source_where(bound))

    def _source_where(self, bound: _Bound) -> list[Any]:
        """Rows whose source column means a source (none when the source is fixed)."""
        spec = bound.spec
        column = spec.source.column
        if column is None:
            return []
        if spec.source.verbatim:
            return [bound.table.c[column].is_not(None)]
        return [bound.table.c[column].in_(list(spec.source.values))]

    def _record(self, bound: _Bound, row: Any) -> Record:
        spec = bound.spec
        assert isinstance(spec, RecordTable)
        m = row._mapping
        rid = ID_SEPARATOR.join(str(m[c]) for c in spec.id)
        source = spec.source.meaning(m["_source"] if spec.source.column else None)
        assert source is not None  # the query selects rows that mean a source
        data: dict[str, Any] = {}
        for category, group in spec.categories.items():
            value = m[group[0]] if len(group) == 1 else joined_words(m[c] for c in group)
            if value is not None:
                data[category] = value
        if spec.extra is not None and m["_extra"]:
            try:
                data.update(decode_data(m["_extra"]))
            except ValueError as error:
                raise StoreError(
                    f"{self.where}: table {bound.table.name!r}, record {rid!r}: column "
                    f"{spec.extra!r} is not fairproc's JSON ({error})"
                ) from None
        at = self._instant(bound, spec.collected_at, m["_at"])
        return Record(rid, str(m["_subject"]), source, at, data)

    def _ordered(self, bound: _Bound, query: sa.Select[Any]) -> sa.Select[Any]:
        spec = bound.spec
        assert isinstance(spec, RecordTable)
        t = bound.table
        if spec.order is not None:
            return query.order_by(t.c[spec.order])
        return query.order_by(t.c[spec.collected_at], *(t.c[c] for c in spec.id))

    # -- reads --

    @property
    def revision(self) -> int:
        with self._read("read its revision") as conn:
            value = conn.execute(
                sa.select(self.meta.c.value).where(self.meta.c.name == "revision")
            ).scalar_one()
        return int(value)

    def _id_where(self, bound: _Bound, record_id: str) -> Any | None:
        spec = bound.spec
        assert isinstance(spec, RecordTable)
        parts = record_id.split(ID_SEPARATOR) if len(spec.id) > 1 else [record_id]
        if len(parts) != len(spec.id):
            return None
        clauses = []
        for column, part in zip(spec.id, parts, strict=True):
            col = bound.table.c[column]
            value: Any = part
            if isinstance(col.type, sa.Integer):
                if not part.lstrip("-").isdigit():
                    return None  # no row of an integer key has this id
                value = int(part)
            clauses.append(col == value)
        return sa.and_(*clauses)

    def get_record(self, record_id: str) -> Record | None:
        with self._read("read a record") as conn:
            for bound in self.records.values():
                where = self._id_where(bound, record_id)
                if where is None:
                    continue
                row = conn.execute(self._record_query(bound).where(where)).first()
                if row is not None:
                    return self._record(bound, row)
        return None

    def _by_subject(self) -> dict[str, sa.Select[Any]]:
        """Per mapped table, the statement reading one subject's rows (``:subject``), built
        once: a subject's lookup is the hot path of every decision."""
        if self._subject_statements is None:
            made: dict[str, sa.Select[Any]] = {}
            wanted: sa.BindParameter[str] = sa.bindparam("subject", type_=sa.String())
            for name, bound in self.records.items():
                column, _ = self._subject_column(bound)
                made[name] = self._ordered(bound, self._record_query(bound).where(column == wanted))
            for name, bound in self.host_events.items():
                column, _ = self._subject_column(bound)
                t = bound.table
                query = self._event_query(bound).where(column == wanted)
                made[name] = query.order_by(t.c[bound.spec.at], *t.primary_key.columns)
            e = self.events
            made[""] = sa.select(e).where(e.c.subject == wanted).order_by(e.c.seq)
            self._subject_statements = made
        return self._subject_statements

    def subject_records(self, subject: str) -> Sequence[Record]:
        found: list[Record] = []
        statements = self._by_subject()
        with self._read("read a subject's records") as conn:
            for name, bound in self.records.items():
                rows = conn.execute(statements[name], {"subject": subject})
                found.extend(self._record(bound, row) for row in rows)
        return tuple(found)

    def iter_records(self) -> Iterator[Record]:
        for bound in self.records.values():
            query = self._ordered(bound, self._record_query(bound))
            with self._read("read records") as conn:
                options = {"stream_results": True, "yield_per": PAGE}
                with conn.execute(query, execution_options=options) as got:
                    for part in got.partitions():
                        yield from (self._record(bound, row) for row in part)

    def _event_query(self, bound: _Bound) -> sa.Select[Any]:
        spec = bound.spec
        assert isinstance(spec, EventTable)
        t = bound.table
        subject, joined = self._subject_column(bound)
        cols = [subject.label("_subject"), t.c[spec.at].label("_at")]
        for label, column in (
            ("_kind", spec.kind.column),
            ("_record", spec.record),
            ("_purpose", spec.purpose),
            ("_id", spec.id),
        ):
            if column is not None:
                cols.append(t.c[column].label(label))
        query = sa.select(*cols).select_from(joined).where(subject.is_not(None))
        if spec.kind.column is not None:
            held = t.c[spec.kind.column]
            known = held.is_not(None) if spec.kind.verbatim else held.in_(list(spec.kind.values))
            query = query.where(known)
        return query

    def _host_event(self, bound: _Bound, row: Any) -> Event:
        spec = bound.spec
        assert isinstance(spec, EventTable)
        m = row._mapping
        kind = spec.kind.meaning(m["_kind"] if spec.kind.column else None)
        assert kind is not None  # the query selects rows that mean a kind

        def text(label: str) -> str | None:
            value = m.get(label)
            return None if value is None else str(value)

        return Event(
            str(m["_subject"]),
            kind,
            self._instant(bound, spec.at, m["_at"]),
            text("_record"),
            text("_purpose"),
            text("_id"),
        )

    def subject_events(self, subject: str) -> Sequence[Event]:
        statements = self._by_subject()
        given = {"subject": subject}
        with self._read("read a subject's events") as conn:
            own = [
                Event(r.subject, r.kind, us_to_instant(r.at), r.record, r.purpose, r.id)
                for r in conn.execute(statements[""], given)
            ]
            host: list[Event] = []
            for name, bound in self.host_events.items():
                rows = conn.execute(statements[name], given)
                host.extend(self._host_event(bound, row) for row in rows)
        # The host's events merged in by instant; fairproc's own keep the order they were
        # added in (heapq.merge keeps each side's order, sorted or not).
        return tuple(heapq.merge(own, host, key=lambda ev: ev.at))

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Several subjects' histories in one statement per mapped table (per 500 subjects),
        as :meth:`fairproc.adapters.sql.SqlStore.histories` gives them."""
        wanted = list(dict.fromkeys(subjects))
        records: dict[str, list[Record]] = defaultdict(list)
        own: dict[str, list[Event]] = defaultdict(list)
        host: dict[str, list[Event]] = defaultdict(list)
        e = self.events
        with self._read("read subjects' histories") as conn:
            for chunk in _chunks(wanted):
                some = list(chunk)
                for bound in self.records.values():
                    column, _ = self._subject_column(bound)
                    query = self._ordered(bound, self._record_query(bound).where(column.in_(some)))
                    for row in conn.execute(query):
                        record = self._record(bound, row)
                        records[record.subject].append(record)
                query = sa.select(e).where(e.c.subject.in_(some)).order_by(e.c.seq)
                for r in conn.execute(query):
                    own[r.subject].append(
                        Event(r.subject, r.kind, us_to_instant(r.at), r.record, r.purpose, r.id)
                    )
                for bound in self.host_events.values():
                    column, _ = self._subject_column(bound)
                    t = bound.table
                    query = self._event_query(bound).where(column.in_(some))
                    query = query.order_by(t.c[bound.spec.at], *t.primary_key.columns)
                    for row in conn.execute(query):
                        event = self._host_event(bound, row)
                        host[event.subject].append(event)
        events = {
            s: list(heapq.merge(own.get(s, []), host.get(s, []), key=lambda ev: ev.at))
            for s in wanted
        }
        given = {s: record_addresses(policy, records[s]) for s in wanted}
        emails = [m for found in given.values() for m in found]
        entries: dict[str, list[SuppressionEntry]] = defaultdict(list)
        for entry in self.suppression_entries(emails):
            entries[normalise_email(entry.email)].append(entry)
        for entry in derived_entries(self, policy, emails, events.get):
            entries[normalise_email(entry.email)].append(entry)
        return {
            s: build_history(
                policy, s, records[s], events[s], [x for m in given[s] for x in entries.get(m, ())]
            )
            for s in wanted
        }

    # -- conditions in the database (RowQueries) --

    def _views(self) -> Views | None:
        """The host's tables as the SQL compiler reads them, made once (None: some column
        cannot be said in SQL, and conditions are evaluated in Python)."""
        if not self._views_made:
            assert self._policy_for_views is not None
            self._view_cache = build_views(
                self._policy_for_views,
                list(self.records.values()),
                list(self.host_events.values()),
                self.events,
                self.suppression,
                self._subject_column,
                self.backend,
                self._collation,
            )
            self._views_made = True
        return self._view_cache

    def _all_bound(self) -> list[_Bound]:
        return [*self.records.values(), *self.host_events.values()]

    def _compiled(self, policy: Policy) -> Views | None:
        if self._policy_for_views is not policy:
            # the views read the policy's email category: made again for another policy
            self._policy_for_views = policy
            self._views_made = False
        return self._views()

    def _tables_of(self, views: Views) -> Tables:
        return Tables(
            views.records,
            views.categories,
            views.events,
            views.suppression,
            inexact=views.inexact,
            event_order=("src", "seq"),
            own=False,
            collections=False,
        )

    @contextmanager
    def _query(self, action: str) -> Iterator[sa.Connection]:
        """A read that runs compiled conditions: on SQLite, with the function that reads
        timestamp text in a layout ``strftime`` does not (registered on the connection, not
        on the engine, which may be the host's)."""
        # a read of its own, outside reading() and the host's transaction, ends right after
        ends_after = getattr(self._held, "conn", None) is None and isinstance(self.bind, sa.Engine)
        with self._read(action) as conn:
            if self.backend == "sqlite":
                with self._guard(action):
                    raw = conn.connection.driver_connection
                    raw.create_function(  # type: ignore[union-attr]
                        INSTANT_FUNCTION, 2, self._instant_function, deterministic=True
                    )
                    raw.create_function(  # type: ignore[union-attr]
                        ZONE_FUNCTION, 2, sqlite_zone_function, deterministic=True
                    )
            if self.backend != "postgresql":
                yield conn
                return
            # Two settings for this read only: put back after it where its transaction goes
            # on (the host's, or a reading()), ended with it otherwise. A naive column's zone
            # arithmetic makes the planner cost a statement
            # far above jit_above_cost, and PostgreSQL then spends seconds JIT-compiling it
            # (17.8 s for a 6.9 s query at 1M rows). A streamed read is a cursor, planned
            # for its first tenth of rows: a sweep reads them all (1.5 s -> 0.47 s).
            with self._guard(action):
                before = conn.execute(_PLAN_FOR_ALL).one()
            try:
                yield conn
            finally:
                # where the transaction ends (a read of its own) or failed, its end puts the
                # settings back: they were set for this transaction only
                if not ends_after and conn.in_transaction() and not conn.invalidated:
                    with contextlib.suppress(exc.DBAPIError):
                        conn.execute(_PLAN_BACK, {"jit": before[0], "fraction": before[1]})

    def _read_text(self, key: str, text: str) -> dt.datetime:
        """A timestamp's text as the store reads the column ``key`` ("table.column")."""
        table, _, column = key.partition(".")
        bound = next(b for b in self._all_bound() if b.table.name == table)
        processor = bound.table.c[column].type.result_processor(self._dialect, None)
        return self._instant(bound, column, processor(text) if processor else text)

    def _plans(self, cond: Condition, at: dt.datetime, policy: Policy) -> list[_Plan] | None:
        """Per mapped record table, the condition compiled over its rows (the other tables
        through the views), or None when the views cannot be made."""
        views = self._compiled(policy)
        if views is None:
            return None
        tables = self._tables_of(views)
        plans = []
        for branch in views.branches:
            r = branch.rows
            narrowing = attrs.evolve(tables, stored_range=branch.stored_range)
            compiler = Compiler(policy, at, narrowing, r, self.backend)
            order = [c for c in r.c if c.key.startswith("_o")]
            node = cond.node
            if branch.sources is not None and not may_hold_for(node, branch.sources):
                continue  # no source of this table's rows can hold: not read
            if branch.source is not None:
                node = with_fixed_source(node, branch.source)
            compiled = compiler.compile(node)
            if compiled.where is False:
                continue  # no row of this table can hold: not read
            plans.append(_Plan(branch.name, r, compiler, compiled, order))
        return plans

    def find_records(self, condition: ConditionLike, at: Any, policy: Policy) -> Iterator[Record]:
        at = require_aware(at)
        cond = records_condition(condition, policy)
        plans = self._plans(cond, at, policy)
        if plans is None:
            return filter_records(self, cond, at, policy)
        return (record for record, _ in self._found(plans, cond, at, policy))

    def _found(
        self, plans: list[_Plan], cond: Condition, at: dt.datetime, policy: Policy
    ) -> Iterator[tuple[Record, SubjectHistory]]:
        """The records the condition holds for, each with its subject's history: the rows SQL
        selects, streamed a page at a time; those it is not sure of checked in Python."""
        for plan in plans:
            r, compiled = plan.r, plan.compiled
            flag = compiled.sure_flag().label("sure")
            query = _where(sa.select(r.c.id, r.c.subject, flag), compiled.where)
            for page in self._pages(query.order_by(*plan.order), "find records"):
                histories = self.histories(policy, (row.subject for row in page))
                for row in page:
                    history = histories[row.subject]
                    record = next((x for x in history.records if x.id == row.id), None)
                    if record is None:
                        continue  # gone since the statement ran
                    if row.sure or cond.evaluate(Ctx(at, history, record)):
                        yield record, history

    def _pages(self, query: sa.Select[Any], action: str) -> Iterator[Sequence[Any]]:
        """The statement's rows a page at a time, read as they come while the caller reads
        each page's histories: on the same connection inside a ``reading()``, which
        PostgreSQL (a server-side cursor) and SQLite allow. MySQL does not while a streamed
        result is open on it, so there the rows are read whole first."""
        if self.backend == "mysql":
            with self._query(action) as conn:
                rows = conn.execute(query).all()
            for start in range(0, len(rows), PAGE):
                yield rows[start : start + PAGE]
            return
        options = {"stream_results": True, "yield_per": PAGE}
        with self._query(action) as conn, conn.execute(query, execution_options=options) as got:
            yield from got.partitions()

    def find_rows(
        self,
        condition: ConditionLike,
        at: Any,
        policy: Policy,
        values: Sequence[ConditionLike] = (),
    ) -> Iterator[Row]:
        """(id, subject, source, values) for each record the condition holds for, in the
        order the store lists records: one statement per mapped table over the host's
        columns when the condition and every value are exact in SQL; otherwise the rows SQL
        narrows to, finished in Python (the same answer, more slowly)."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        exprs = [records_value(v, policy) for v in values]
        plans = self._plans(cond, at, policy)
        if plans is None:
            return select_rows(self, cond, at, policy, exprs)
        columns = [[plan.compiler.value(e.node) for e in exprs] for plan in plans]
        if not all(p.compiled.exact for p in plans) or any(c is None for cs in columns for c in cs):
            return self._rows_in_python(plans, cond, at, policy, exprs)
        return self._rows_in_sql(plans, columns)

    def _rows_in_sql(self, plans: list[_Plan], columns: list[list[Any]]) -> Iterator[Row]:
        for plan, values in zip(plans, columns, strict=True):
            r = plan.r
            query = _where(sa.select(r.c.id, r.c.subject, r.c.source, *values), plan.compiled.where)
            options = {"stream_results": True, "yield_per": STREAM_ROWS}
            with (
                self._query("find rows") as conn,
                conn.execute(query.order_by(*plan.order), execution_options=options) as got,
            ):
                for part in got.partitions():
                    for row in part:
                        yield str(row[0]), str(row[1]), str(row[2]), tuple(row[3:])

    def _rows_in_python(
        self,
        plans: list[_Plan],
        cond: Condition,
        at: dt.datetime,
        policy: Policy,
        exprs: Sequence[Condition],
    ) -> Iterator[Row]:
        for record, history in self._found(plans, cond, at, policy):
            ctx = Ctx(at, history, record)
            values = tuple(row_value(v.evaluate(ctx)) for v in exprs)
            yield record.id, record.subject, record.source, values

    def count_records(self, condition: ConditionLike, at: Any, policy: Policy) -> int:
        """How many records the condition holds for: counted in the database when it is
        exact in SQL, otherwise the records found, counted."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        plans = self._plans(cond, at, policy)
        if plans is None or not all(p.compiled.exact for p in plans):
            return sum(1 for _ in self.find_records(cond, at, policy))
        total = 0
        with self._query("count records") as conn:
            for plan in plans:
                query = _where(sa.select(sa.func.count()).select_from(plan.r), plan.compiled.where)
                total += int(conn.execute(query).scalar_one())
        return total

    def explain(self, condition: ConditionLike, at: Any, policy: Policy) -> tuple[str, bool]:
        """The SQL ``find_records`` runs for a condition (a statement per mapped record
        table), and whether it is exact (no row is checked again in Python); ("", False)
        when the mapped columns cannot be read in SQL and every record is checked in
        Python."""
        at = require_aware(at)
        plans = self._plans(records_condition(condition, policy), at, policy)
        if plans is None:
            return "", False
        engine = self.bind if isinstance(self.bind, sa.Engine) else self.bind.engine
        texts = []
        for plan in plans:
            query = _where(sa.select(plan.r.c.id), plan.compiled.where).order_by(*plan.order)
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            texts.append(f"-- {plan.table}\n{compiled}")
        return "\n\n".join(texts), all(p.compiled.exact for p in plans)

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        wanted = [normalise_email(e) for e in emails]
        unique = [n for n in dict.fromkeys(wanted) if len(n) <= MAX_NORM_LENGTH]
        found: dict[str, list[SuppressionEntry]] = defaultdict(list)
        t = self.suppression
        with self._read("read the suppression list") as conn:
            for chunk in _chunks(unique):
                query = sa.select(t).where(t.c.email_norm.in_(list(chunk))).order_by(t.c.seq)
                for row in conn.execute(query):
                    found[row.email_norm].append(
                        SuppressionEntry(row.email, us_to_instant(row.at), row.reason)
                    )
        return [entry for norm in wanted for entry in found.get(norm, ())]

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`): per table holding the
        category in one column, the rows whose trimmed, lower-cased value is asked for."""
        unique = [n for n in dict.fromkeys(emails) if len(n) <= MAX_NORM_LENGTH]
        first: dict[tuple[str, str], dt.datetime] = {}
        with self._read("look up who gave an address") as conn:
            for bound in self.records.values():
                spec = bound.spec
                assert isinstance(spec, RecordTable)
                group = spec.categories.get(category)
                if not group or len(group) != 1:
                    continue
                column = bound.table.c[group[0]]
                norm = sa.func.lower(sa.func.trim(column))
                for chunk in _chunks(unique):
                    query = self._record_query(bound).add_columns(norm.label("_norm"))
                    for row in conn.execute(query.where(norm.in_(list(chunk)))):
                        at = self._instant(bound, spec.collected_at, row._mapping["_at"])
                        key = (str(row._mapping["_subject"]), str(row._mapping["_norm"]))
                        if key not in first or at < first[key]:
                            first[key] = at
        return [(s, n, at) for (s, n), at in first.items()]

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        t = self.audit
        query = sa.select(t) if subject is None else sa.select(t).where(t.c.subject == subject)
        with self._read("read the audit log") as conn:
            rows = conn.execute(query.order_by(t.c.seq)).all()
        for row in rows:
            yield audit_from_stored(
                us_to_instant(row.at), row.action, row.subject, row.actor, decode_data(row.detail)
            )

    # -- keys --

    def _key(self, name: str) -> bytes:
        """A key of ``<prefix>keys``, made on first use (two processes making it at once: the
        first one's is kept). Read and made on a connection of fairproc's own: the host's
        transaction may hold a snapshot older than the key."""
        k = self.keys
        named = k.c.name == name
        with self._own_write("read a key") as conn:
            found = conn.execute(sa.select(k.c.value).where(named)).scalar()
        if found is None:
            try:
                with self._own_write("make a key") as conn:
                    conn.execute(sa.insert(k).values(name=name, value=secrets.token_hex(32)))
            except StoreError as error:
                if not isinstance(error.__cause__, exc.IntegrityError):
                    raise
            with self._own_write("read a key") as conn:
                found = conn.execute(sa.select(k.c.value).where(named)).scalar_one()
        return bytes.fromhex(found)

    def audit_key(self) -> bytes:
        """The key naming subjects in the audit log (:class:`fairproc.storage.AuditKeys`)."""
        if self._audit_key is None:
            self._audit_key = self._key("audit")
        return self._audit_key

    def _ready_mask_key(self) -> None:
        """Read (or make) the hashing key before a write transaction that may mask: making
        it inside one would wait on that transaction's own lock."""
        hashing = any(
            m.how == "hash"
            for b in [*self.records.values(), *self.host_events.values()]
            for m in b.spec.mask.values()
        )
        if hashing and self._mask_key is None:
            self._mask_key = self._key("mask")

    def _masked(self, mask: Mask, value: Any) -> Any:
        return masked_value(mask, value, self._mask_key)

    # -- writes --

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)
        if not changes:
            return
        changes = normalised(changes)
        self._ready_mask_key()
        with self._write("apply a change set") as conn:
            self._bump(conn)
            self._apply(conn, changes)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every read inside the block, on this thread, sees the tables as they stood when
        the first of them ran (:class:`fairproc.storage.Snapshots`): one transaction
        (REPEATABLE READ on PostgreSQL and MySQL, a deferred one on SQLite) on one
        connection; inside the host's transaction when the store was given its Connection.
        Blocks nest; writing inside one is refused."""
        if getattr(self._held, "conn", None) is not None:
            yield
            return
        if isinstance(self.bind, sa.Connection):
            self._held.conn = self.bind
            try:
                yield
            finally:
                self._held.conn = None
            return
        with (
            self._guard("begin a read"),
            self.bind.connect() as conn,
            snapshot(conn, self.backend),
        ):
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    def apply_decided(self, decide: Decide) -> ChangeSet:
        """``decide`` and its changes in one write transaction
        (:class:`fairproc.storage.DecidedWrites`), the revision row locked first."""
        self._ready_mask_key()
        with self._write("apply a decided change set") as conn:
            revision = self.meta.c.name == "revision"
            locked = sa.select(self.meta.c.value).where(revision)
            if self.backend != "sqlite":
                locked = locked.with_for_update()
            conn.execute(locked).scalar_one()
            self._held.conn = conn
            try:
                changes = decide(self)
            finally:
                self._held.conn = None
            check_changes(changes)
            if changes:
                self._bump(conn)
                self._apply(conn, normalised(changes))
        return changes

    def _bump(self, conn: sa.Connection) -> None:
        m = self.meta
        conn.execute(sa.update(m).where(m.c.name == "revision").values(value=m.c.value + 1))

    def _locate(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        """Which table holds each of ``ids``: table name -> ids."""
        where: dict[str, list[str]] = defaultdict(list)
        for bound in self.records.values():
            spec = bound.spec
            assert isinstance(spec, RecordTable)
            for record_id in ids:
                clause = self._id_where(bound, record_id)
                if clause is None:
                    continue
                hit = conn.execute(
                    sa.select(sa.literal(1)).select_from(bound.table).where(clause)
                ).first()
                if hit is not None:
                    where[bound.table.name].append(record_id)
        return where

    def _apply(self, conn: sa.Connection, changes: ChangeSet) -> None:
        # Everything the host's tables cannot keep is refused before the first write.
        rows = [self._row_for(conn, rec, i) for i, rec in enumerate(changes.put_records)]
        placed = [self._event_place(ev) for ev in changes.add_events]

        put_ids = [rec.id for rec in changes.put_records]
        gone = list(dict.fromkeys(changes.delete_records))
        located = self._locate(conn, list(dict.fromkeys(gone + put_ids)))
        deleting: dict[str, list[str]] = defaultdict(list)
        replacing: dict[str, list[str]] = defaultdict(list)
        target = {
            rec.id: bound.table.name
            for rec, (bound, _) in zip(changes.put_records, rows, strict=True)
        }
        for name, ids in located.items():
            for record_id in ids:
                if record_id in gone or target.get(record_id, name) != name:
                    deleting[name].append(record_id)
                elif record_id in target:
                    replacing[name].append(record_id)
        self._remove_records(conn, deleting)

        e = self.events
        subjects = list(dict.fromkeys(changes.delete_subject_events))
        for chunk in _chunks(subjects):
            conn.execute(sa.delete(e).where(e.c.subject.in_(list(chunk))))
        for chunk in _chunks(list(dict.fromkeys(changes.delete_record_events))):
            conn.execute(sa.delete(e).where(e.c.record.in_(list(chunk))))
        for bound in self.host_events.values():
            self._forget_events(conn, bound, subjects, list(changes.delete_record_events))

        for rec, (bound, values) in zip(changes.put_records, rows, strict=True):
            values = dict(values)
            via = bound.spec.subject.via
            if via is not None:
                values[via] = self._subject_row(conn, rec.subject)
            else:
                values[bound.spec.subject.stored_in] = rec.subject
            if rec.id in replacing.get(bound.table.name, ()):
                where = self._id_where(bound, rec.id)
                assert where is not None  # the id was found in this table
                conn.execute(sa.update(bound.table).where(where).values(**values))
            else:
                conn.execute(sa.insert(bound.table).values(**values))

        own: list[dict[str, Any]] = []
        for ev, place in zip(changes.add_events, placed, strict=True):
            if place is None:
                own.append(event_row(ev))
                continue
            bound, values = place
            values = dict(values)
            via = bound.spec.subject.via
            if via is not None:
                values[via] = self._subject_row(conn, ev.subject)
            else:
                values[bound.spec.subject.stored_in] = ev.subject
            conn.execute(sa.insert(bound.table).values(**values))
        self._append(conn, self.events, own)
        self._append(conn, self.suppression, [suppression_row(s) for s in changes.add_suppression])
        self._append(conn, self.audit, [audit_row(a) for a in changes.audit])

    def _append(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        first = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar_one()
        )
        for i, row in enumerate(rows, start=1):
            row["seq"] = first + i
        conn.execute(sa.insert(table), rows)

    def _subject_row(self, conn: sa.Connection, subject: str) -> Any:
        """The subjects table's row id for ``subject``, the row made when there is none."""
        assert self.subjects is not None and self.mapping.subjects is not None
        s, spec = self.subjects, self.mapping.subjects
        query = sa.select(s.c[spec.id]).where(s.c[spec.key] == subject)
        found = conn.execute(query).scalar()
        if found is None:
            conn.execute(sa.insert(s).values({spec.key: subject}))
            found = conn.execute(query).scalar_one()
        return found

    @staticmethod
    def _keeps(bound: _Bound, column: str, value: Any) -> bool:
        """Whether ``column`` gives ``value`` back as it is (its type is the value's)."""
        if value is None:
            return True
        kind = bound.table.c[column].type
        try:
            python = kind.python_type
        except NotImplementedError:
            return isinstance(value, str)
        if isinstance(value, bool):
            return python is bool
        if isinstance(value, dt.datetime):
            return False  # a zone would be lost
        return type(value) is python or (python is str and type(value) is str)

    def _column_value(
        self, bound: _Bound, column: str, value: Any, path: Sequence[str | int]
    ) -> tuple[Any, Problem | None]:
        col = bound.table.c[column]
        if not self._keeps(bound, column, value):
            return None, Problem(
                f"a {type(value).__name__} value cannot be kept in column {column!r} of table "
                f"{bound.table.name!r} ({col.type}) without changing it",
                path=tuple(path),
            )
        return value, None

    def _row_for(self, conn: sa.Connection, rec: Record, i: int) -> tuple[_Bound, dict[str, Any]]:
        path: tuple[str | int, ...] = ("put_records", i)
        spec = table_for(self.mapping, rec, path)
        bound = self.records[spec.name]
        problems: list[Problem] = []
        values: dict[str, Any] = {}
        parts = rec.id.split(ID_SEPARATOR) if len(spec.id) > 1 else [rec.id]
        if len(parts) != len(spec.id):
            raise InputError.one(
                f"table {spec.name!r} keys its rows on {len(spec.id)} columns: expected an id "
                f"of {len(spec.id)} parts joined by {ID_SEPARATOR!r}",
                path=(*path, "id"),
            )
        for column, part in zip(spec.id, parts, strict=True):
            if isinstance(bound.table.c[column].type, sa.Integer):
                if not part.lstrip("-").isdigit():
                    raise InputError.one(
                        f"table {spec.name!r} keys its rows on integer column {column!r}",
                        path=(*path, "id"),
                    )
                values[column] = int(part)
            else:
                values[column] = part
        values[spec.collected_at] = self._stored_instant(bound, spec.collected_at, rec.collected_at)
        if spec.source.column is not None:
            values[spec.source.column] = spec.source.stored(rec.source)
        extra: dict[str, Any] = {}
        for category, group in spec.categories.items():
            value = rec.data.get(category)
            if spec.extra is not None and category in rec.data:
                kept = split_words(value, len(group)) if len(group) > 1 else None
                fits = (
                    (kept is not None and " ".join(p for p in kept if p) == value)
                    if len(group) > 1
                    else self._keeps(bound, group[0], value)
                )
                if not fits or value is None:
                    # the column cannot give it back as it is (None too: a NULL column
                    # means "not held"), so the JSON column keeps it
                    extra[category] = value
                    values.update(dict.fromkeys(group))
                    continue
            if len(group) > 1:
                if value is not None and not isinstance(value, str):
                    problems.append(
                        Problem(
                            f"category {category!r} spans columns {', '.join(group)}: "
                            "expected text",
                            path=(*path, "data", category),
                        )
                    )
                    continue
                split = value.split(" ", len(group) - 1) if value else []
                for j, column in enumerate(group):
                    values[column] = split[j] if j < len(split) else None
                continue
            got, problem = self._column_value(bound, group[0], value, (*path, "data", category))
            if problem is not None:
                problems.append(problem)
            values[group[0]] = got
        leftover = leftover_data(spec, rec, extra, values, f"table {spec.name!r}", path)
        problems.extend([leftover] if leftover else [])
        if problems:
            raise InputError(problems)
        return bound, values

    def _event_place(self, ev: Event) -> tuple[_Bound, dict[str, Any]] | None:
        """The host table and row ``ev`` goes to, or None: fairproc's own events table (the
        kind is mapped nowhere, or the event carries a field its table has no column for)."""
        spec = self.mapping.table_for_kind(ev.kind)
        if spec is None:
            return None
        for given, column in (
            (ev.record, spec.record),
            (ev.purpose, spec.purpose),
            (ev.id, spec.id),
        ):
            if given is not None and column is None:
                return None
        bound = self.host_events[spec.name]
        values: dict[str, Any] = {spec.at: self._stored_instant(bound, spec.at, ev.at)}
        if spec.kind.column is not None:
            values[spec.kind.column] = spec.kind.stored(ev.kind)
        for given, column in (
            (ev.record, spec.record),
            (ev.purpose, spec.purpose),
            (ev.id, spec.id),
        ):
            if column is not None:
                values[column] = given
        return bound, values

    def _forget_events(
        self, conn: sa.Connection, bound: _Bound, subjects: Sequence[str], records: Sequence[str]
    ) -> None:
        spec = bound.spec
        assert isinstance(spec, EventTable)
        t = bound.table
        clauses = []
        if subjects:
            ref = spec.subject
            if ref.via is not None:
                assert self.subjects is not None and self.mapping.subjects is not None
                s, sub = self.subjects, self.mapping.subjects
                ids = sa.select(s.c[sub.id]).where(s.c[sub.key].in_(list(subjects)))
                clauses.append(t.c[ref.via].in_(ids.scalar_subquery()))
            else:
                clauses.append(t.c[ref.stored_in].in_(list(subjects)))
        if records and spec.record is not None:
            clauses.append(t.c[spec.record].in_(list(dict.fromkeys(records))))
        if not clauses:
            return
        where = sa.or_(*clauses)
        if spec.erasure == "delete":
            conn.execute(sa.delete(t).where(where))
        else:
            self._mask_rows(conn, bound, where)

    def _mask_rows(self, conn: sa.Connection, bound: _Bound, where: Any) -> None:
        t = bound.table
        masks = bound.spec.mask
        keys = list(t.primary_key.columns)
        if any(m.how == "hash" for m in masks.values()):
            rows = conn.execute(sa.select(*keys, *(t.c[c] for c in masks)).where(where)).all()
            for row in rows:
                m = row._mapping
                values = {c: self._masked(mask, m[c]) for c, mask in masks.items()}
                conn.execute(sa.update(t).where(*(k == m[k.name] for k in keys)).values(**values))
            return
        values = {
            c: self._masked(mask, None) if mask.how == "null" else mask.value
            for c, mask in masks.items()
        }
        conn.execute(sa.update(t).where(where).values(**values))

    def _remove_records(self, conn: sa.Connection, deleting: dict[str, list[str]]) -> None:
        """Delete (or mask) rows, children first along the reflected foreign keys; refuse a
        delete that would leave a kept row pointing at nothing."""
        doomed: dict[str, Any] = {}
        for name, ids in deleting.items():
            bound = self.records[name]
            clauses = [self._id_where(bound, i) for i in ids]
            doomed[name] = sa.or_(*(c for c in clauses if c is not None))
        deleted = {n for n in doomed if self.records[n].spec.erasure == "delete"}
        order = self._children_first(deleted)
        for name in order:
            self._check_children(conn, name, doomed, deleted)
        for name in order:
            conn.execute(sa.delete(self.records[name].table).where(doomed[name]))
        for name in doomed:
            if name not in deleted:
                self._mask_rows(conn, self.records[name], doomed[name])

    def _children_first(self, names: set[str]) -> list[str]:
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in ordered or name in visiting:
                return
            visiting.add(name)
            for other in names:
                table = self.records[other].table
                if other != name and any(fk.column.table.name == name for fk in table.foreign_keys):
                    visit(other)  # ``other`` points at ``name``: it goes first
            ordered.append(name)

        for name in sorted(names):
            visit(name)
        return ordered

    def _check_children(
        self, conn: sa.Connection, parent: str, doomed: dict[str, Any], deleted: set[str]
    ) -> None:
        parent_table = self.records[parent].table
        for child in self.host.tables.values():
            for fk in child.foreign_key_constraints:
                if fk.referred_table is not parent_table:
                    continue
                if (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                    continue
                pairs = list(zip(fk.columns, fk.elements, strict=True))
                keys = sa.select(*(el.column for _, el in pairs)).where(doomed[parent])
                pointing = sa.tuple_(*(c for c, _ in pairs)).in_(keys)
                if len(pairs) == 1:
                    pointing = pairs[0][0].in_(keys.scalar_subquery())
                query = sa.select(sa.func.count()).select_from(child).where(pointing)
                if child.name in deleted:
                    query = query.where(sa.not_(doomed[child.name]))
                if conn.execute(query).scalar_one():
                    cols = ", ".join(c.name for c, _ in pairs)
                    refs = ", ".join(el.column.name for _, el in pairs)
                    raise StoreError(
                        f"mapped store at {self.where}: deleting from {parent!r} would break "
                        f"foreign key {child.name}({cols}) -> {parent}({refs}): rows of "
                        f"{child.name!r} that this change keeps point at rows it deletes "
                        "(map the child table too, or make the key ON DELETE SET NULL); "
                        "nothing was changed"
                    )


@attrs.frozen(repr=False)
class _Plan(Value):
    """A condition compiled over one mapped record table's rows (``r``)."""

    table: str
    r: Any
    compiler: Compiler
    compiled: Compiled
    order: list[Any]


def open_mapped(
    url: str | sa.Engine | sa.Connection, mapping: str | Path | HostMapping, *, create: bool = True
) -> MappedSqlStore | MappedCsvStore:
    """A mapped store on ``url`` (or the host's Engine or Connection) through the mapping file
    at ``mapping`` (or a loaded :class:`~fairproc.mapping.HostMapping`), checked against its
    policy when it names one: a :class:`~fairproc.adapters.mapped_csv.MappedCsvStore` for a
    ``csv:`` URL (a folder of the host's CSV files), a :class:`MappedSqlStore` otherwise."""
    if not isinstance(mapping, HostMapping):
        from fairproc.loader import load_policy

        named = named_policy(mapping)
        mapping = load_mapping(mapping, load_policy(named) if named else None)
    if isinstance(url, str) and url.startswith("csv:"):
        from .csv import folder_of
        from .mapped_csv import MappedCsvStore

        return MappedCsvStore(folder_of(url), mapping)
    return MappedSqlStore(url, mapping, create=create)


class MappedStores:
    """A scenario store factory (:data:`fairproc.scenarios.StoreFactory`): each scenario's
    world is loaded into the host's tables (or CSV files) through the mapping, and removed
    after it.

    The host's tables must exist and be empty when the first scenario runs (they are the
    host's: a scenario run must not mix with, or delete, the host's own rows)."""

    def __init__(self, url: str, mapping: str | Path | HostMapping):
        self.url = url
        self.mapping = mapping
        store = open_mapped(url, mapping)
        try:
            holding = store.holding_rows()
        finally:
            store.close()
        if holding is not None:
            raise StoreError(
                f"{url}: table {holding!r} holds rows; scenarios run on empty host tables only "
                "(each scenario's world is loaded, then deleted)"
            )

    def __call__(self, scenario: Any) -> MappedSqlStore | MappedCsvStore:
        store = open_mapped(self.url, self.mapping)
        try:
            store.apply(
                ChangeSet(
                    put_records=scenario.records,
                    add_events=scenario.events,
                    add_suppression=scenario.suppression,
                )
            )
        except BaseException:
            self.release(store)
            raise
        return store

    def release(self, store: Any) -> None:
        """Delete every row the scenario left, in the host's tables and fairproc's."""
        assert isinstance(store, MappedSqlStore | _csv_store())
        try:
            store.clear_rows()
        finally:
            store.close()


def _csv_store() -> type[MappedCsvStore]:
    from .mapped_csv import MappedCsvStore

    return MappedCsvStore

"""SQL storage on SQLAlchemy 2 Core: SQLite (the embedded default), PostgreSQL, MySQL/MariaDB.

``open_store("sqlite:///fairproc.db")``, ``"postgresql://user@host/db"`` (psycopg 3),
``"mysql+pymysql://user@host/db"`` (MySQL or MariaDB). ``?prefix=name_`` chooses the prefix of
the table names (default ``fairproc_``), so several stores can share one database.

The schema (tables ``<prefix>meta``, ``records``, ``categories``, ``events``, ``suppression``,
``audit``) is created on first use and versioned in ``<prefix>meta`` (``schema_version``); a
database whose schema is newer than this code knows is refused. Instants are stored as
integers, microseconds since the epoch (UTC), so they compare and index exactly on every
database; a record's data is JSON text (:func:`fairproc.storage.encode_data`), and each category
it holds is a row of ``categories`` (with its normalised text, so suppression entries match
without reading the JSON).

Writes run in one transaction that first bumps ``revision`` in the meta table: that row lock
serialises writers on every database (SQLite: ``BEGIN IMMEDIATE``), so two processes writing at
once lose nothing, and the new revision tells every engine to drop its cached histories.

``find_records`` compiles the condition to SQL (:mod:`fairproc.adapters.sqlcompile`) and reads
only the rows it selects, a page (``page_size`` rows, keyset-paginated on the insertion order)
per statement, so memory stays flat and the table is never pulled into Python.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql

from fairproc.clock import require_aware
from fairproc.conditions import Condition
from fairproc.conditions.vocabulary import Ctx
from fairproc.model import Event, Policy, Record, SuppressionEntry, normalise_email
from fairproc.storage import (
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    AuditEntry,
    BaseStore,
    ChangeSet,
    ConditionLike,
    Decide,
    Row,
    StoreError,
    audit_detail,
    audit_from_stored,
    build_history,
    category_norms,
    check_changes,
    decode_data,
    encode_data,
    hide_password,
    instant_to_us,
    normalised,
    records_condition,
    records_value,
    rows_of,
    us_to_instant,
)
from fairproc.world import SubjectHistory, derived_entries, record_addresses

from .sqlcompile import Compiler, Tables

__all__ = ["SCHEMA_VERSION", "SqlStore", "open_url"]

SCHEMA_VERSION = 2
CHUNK = 500  # values per IN (...) list
MAX_NORM_LENGTH = 2 * MAX_EMAIL_LENGTH  # lower() may lengthen text
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "psycopg", "postgresql"),
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "pymysql", "mysql"),
    "sqlite": ("sqlite", None, None),
}
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _tables(md: sa.MetaData, prefix: str, collation: str | None) -> dict[str, sa.Table]:
    kw: dict[str, Any] = {}
    if collation:
        kw = {"mysql_charset": "utf8mb4", "mysql_collate": collation, "mysql_engine": "InnoDB"}

    def ident(name: str, nullable: bool = False, **extra: Any) -> sa.Column[Any]:
        return sa.Column(name, sa.String(MAX_ID_LENGTH), nullable=nullable, **extra)

    def seq() -> sa.Column[Any]:
        kind = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        return sa.Column("seq", kind, primary_key=True, autoincrement=False)

    text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    p = prefix
    return {
        "meta": sa.Table(
            f"{p}meta",
            md,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.BigInteger(), nullable=False),
            **kw,
        ),
        "records": sa.Table(
            f"{p}records",
            md,
            seq(),
            ident("id", unique=True),
            ident("subject"),
            ident("source"),
            sa.Column("collected_at", sa.BigInteger(), nullable=False),
            sa.Column("data", text, nullable=False),
            sa.Index(f"{p}records_subject", "subject", "collected_at"),
            sa.Index(f"{p}records_source", "source", "collected_at"),
            sa.Index(f"{p}records_collected", "collected_at"),
            **kw,
        ),
        "categories": sa.Table(
            f"{p}categories",
            md,
            ident("record_id", primary_key=True),
            ident("category", primary_key=True),
            ident("subject"),
            sa.Column("norm", sa.String(MAX_NORM_LENGTH), nullable=True),
            sa.Index(f"{p}categories_subject", "subject", "category"),
            # who gave an address (suppression by address, across subjects): schema version 2
            sa.Index(f"{p}categories_norm", "norm"),
            **kw,
        ),
        "events": sa.Table(
            f"{p}events",
            md,
            seq(),
            ident("id", nullable=True),
            ident("subject"),
            ident("kind"),
            sa.Column("at", sa.BigInteger(), nullable=False),
            ident("record", nullable=True),
            ident("purpose", nullable=True),
            sa.Index(f"{p}events_subject", "subject", "kind", "at"),
            sa.Index(f"{p}events_record", "record", "kind", "at"),
            **kw,
        ),
        "suppression": sa.Table(
            f"{p}suppression",
            md,
            seq(),
            sa.Column("email", sa.String(MAX_EMAIL_LENGTH), nullable=False),
            sa.Column("email_norm", sa.String(MAX_NORM_LENGTH), nullable=False),
            sa.Column("at", sa.BigInteger(), nullable=False),
            ident("reason"),
            sa.Index(f"{p}suppression_email", "email_norm"),
            **kw,
        ),
        "keys": sa.Table(
            f"{p}keys",
            md,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.String(128), nullable=False),
            **kw,
        ),
        "audit": sa.Table(
            f"{p}audit",
            md,
            seq(),
            sa.Column("at", sa.BigInteger(), nullable=False),
            ident("action"),
            ident("subject", nullable=True),
            ident("actor", nullable=True),
            sa.Column("detail", text, nullable=False),
            sa.Index(f"{p}audit_subject", "subject"),
            **kw,
        ),
    }


@contextmanager
def snapshot(conn: sa.Connection, backend: str) -> Iterator[None]:
    """One transaction on ``conn`` whose reads all see the database as the first of them did:
    REPEATABLE READ on PostgreSQL and MySQL, a deferred transaction on SQLite. Ended by a
    commit (nothing was written: it ends as a rollback would, and psycopg keeps its prepared
    statements, which it forgets on a ROLLBACK, so each lookup would be planned again), or
    rolled back when the block fails."""
    if backend in ("postgresql", "mysql"):
        conn.execution_options(isolation_level="REPEATABLE READ")
    transaction = conn.begin()
    if backend == "sqlite" and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        # pysqlite begins a transaction only at a write (fairproc's own engine says BEGIN
        # itself; a host's does not): without one, each read would see the file as it is then
        conn.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        transaction.rollback()
        raise
    else:
        transaction.commit()


def _where(query: sa.Select[Any], where: Any) -> sa.Select[Any]:
    """``query`` filtered by a compiled predicate (which may be a plain True or False)."""
    if where is False:
        return query.where(sa.false())
    if where is True:
        return query
    return query.where(where)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def event_row(event: Event) -> dict[str, Any]:
    """An event as a row of fairproc's events table (``seq`` is added on append)."""
    return {
        "id": event.id,
        "subject": event.subject,
        "kind": event.kind,
        "at": instant_to_us(event.at),
        "record": event.record,
        "purpose": event.purpose,
    }


def suppression_row(entry: SuppressionEntry) -> dict[str, Any]:
    """A suppression entry as a row of fairproc's suppression table."""
    return {
        "email": entry.email,
        "email_norm": normalise_email(entry.email),
        "at": instant_to_us(entry.at),
        "reason": entry.reason,
    }


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as a row of fairproc's audit table: its named fields in the detail."""
    return {
        "at": instant_to_us(entry.at),
        "action": entry.action,
        "subject": entry.subject,
        "actor": entry.actor,
        "detail": encode_data(audit_detail(entry), "detail"),
    }


def record_of(row: Any, table: str) -> Record:
    """The record a row of fairproc's records table holds (id, subject, source, collected_at
    in UTC microseconds, data as JSON); ``table`` names where, in the error a row whose data
    is not JSON gives. The SQL and Spark stores keep the same columns."""
    try:
        data = decode_data(row.data)
    except ValueError as error:
        raise StoreError(f"{table}, record {row.id!r}: data is not valid JSON ({error})") from None
    return Record(row.id, row.subject, row.source, us_to_instant(row.collected_at), data)


def event_of(row: Any) -> Event:
    """The event a row of fairproc's events table holds."""
    return Event(row.subject, row.kind, us_to_instant(row.at), row.record, row.purpose, row.id)


def entry_of(row: Any) -> SuppressionEntry:
    """The entry a row of fairproc's suppression table holds."""
    return SuppressionEntry(row.email, us_to_instant(row.at), row.reason)


class SqlStore(BaseStore):
    """A store in a SQL database (see the module's docstring)."""

    page_size = 1000

    def __init__(self, url: str | sa.URL, *, prefix: str | None = None, create: bool = True):
        """``create=False``: open only a database that holds the fairproc tables already (and,
        for SQLite, a file that exists), else :class:`StoreError`; nothing is created."""
        self.url, self.prefix = self._parse(url, prefix)
        self.where = self.url.render_as_string(hide_password=True)
        self.backend = self.url.get_backend_name()
        if not create:
            self._require_file()
        self.rows_fetched = 0  # rows read by iter_records and find_records (a diagnostic)
        self._serial: threading.RLock | None = None
        self._held = threading.local()  # .conn: the connection of this thread's reading()
        self.engine = self._create_engine()
        try:
            with self._guard("connect"), self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            collation = None
            if self.backend == "mysql":
                mariadb = bool(getattr(self.engine.dialect, "is_mariadb", False))
                collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
            self.metadata = sa.MetaData()
            t = _tables(self.metadata, self.prefix, collation)
            self.meta, self.records = t["meta"], t["records"]
            self.categories, self.events = t["categories"], t["events"]
            self.suppression, self.audit = t["suppression"], t["audit"]
            self.keys = t["keys"]
            self._audit_key: bytes | None = None
            self.tables = Tables(self.records, self.categories, self.events, self.suppression)
            self._ensure_schema(create)
        except BaseException:
            self.engine.dispose()
            raise

    # -- opening --

    @staticmethod
    def _parse(url: str | sa.URL, prefix: str | None) -> tuple[sa.URL, str]:
        try:
            parsed = sa.make_url(url)
        except (exc.ArgumentError, ValueError) as error:
            shown = hide_password(url) if isinstance(url, str) else repr(url)
            raise StoreError(f"not a database URL: {shown!r} ({error})") from None
        name = parsed.get_backend_name()
        if name == "postgres":
            parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
            name = "postgresql"
        if name not in _DRIVERS:
            raise StoreError(
                f"unsupported database {name!r} in {parsed.render_as_string(hide_password=True)!r}"
                "; expected sqlite, postgresql, mysql or mariadb"
            )
        if "+" not in parsed.drivername:
            parsed = parsed.set(drivername=_DRIVERS[name][0])
        query = dict(parsed.query)
        given = query.pop("prefix", None)
        if prefix is None:
            prefix = given if isinstance(given, str) else "fairproc_"
        if not _PREFIX.match(prefix):
            raise StoreError(
                f"table prefix {prefix!r} must be a letter or _ then up to 30 letters, digits or _"
            )
        if name in ("mysql", "mariadb") and "charset" not in query:
            query["charset"] = "utf8mb4"
        return parsed.set(query=query), prefix

    def _create_engine(self) -> sa.Engine:
        url, backend = self.url, self.backend
        package = _DRIVERS.get(backend, (None, None, None))[1]
        extra = _DRIVERS.get(backend, (None, None, None))[2]
        try:
            dialect = url.get_dialect()
            dialect.import_dbapi()
        except (ImportError, exc.NoSuchModuleError) as error:
            hint = f": pip install 'fairproc[{extra}]'" if extra else ""
            raise StoreError(
                f"cannot open {self.where}: the {url.drivername} driver"
                + (f" ({package})" if package else "")
                + f" is not installed{hint} ({error})"
            ) from None
        kwargs: dict[str, Any] = {}
        connect_args: dict[str, Any] = {}
        if backend == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:") or url.query.get("mode") == "memory":
                # One shared connection: threads see the same database, one at a time.
                kwargs["poolclass"] = sa.pool.StaticPool
                connect_args["check_same_thread"] = False
                self._serial = threading.RLock()
            connect_args["timeout"] = 60
        elif backend == "postgresql":
            if "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = 10
            if "options" not in url.query:
                # A pushed-down condition is one statement of many correlated subqueries, which
                # the planner costs far above jit_above_cost: PostgreSQL then JIT-compiles it
                # (hundreds of functions, seconds) for every page of a few hundred rows. A
                # streamed read is a cursor, which the planner plans for its first tenth of
                # rows unless told otherwise: fairproc's streamed reads read them all.
                connect_args["options"] = "-c jit=off -c cursor_tuple_fraction=1"
        elif backend in ("mysql", "mariadb"):
            if "connect_timeout" not in url.query:
                connect_args["connect_timeout"] = 10
            kwargs["isolation_level"] = "READ COMMITTED"
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
        if backend == "sqlite":
            memory = self._serial is not None

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.isolation_level = None  # fairproc issues BEGIN itself
                if not memory:
                    dbapi_conn.execute("PRAGMA journal_mode=WAL")

            @event.listens_for(engine, "begin")
            def _on_begin(conn: sa.Connection) -> None:
                write = conn.info.get("fairproc_write")
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _require_file(self) -> None:
        """A SQLite database file must exist: connecting would create an empty one."""
        database = self.url.database or ""
        in_memory = database in ("", ":memory:") or self.url.query.get("mode") == "memory"
        if self.backend != "sqlite" or in_memory or self.url.query.get("uri"):
            return
        if not Path(database).is_file():
            raise StoreError(
                f"{self.where}: no such database file {database!r} (expected an existing "
                "fairproc store; nothing was created)"
            )

    def _ensure_schema(self, create: bool = True) -> None:
        for attempt in range(3):
            try:
                with self._begin_write("create its schema") as conn:
                    if not create and not sa.inspect(conn).has_table(self.meta.name):
                        raise StoreError(
                            f"{self.where}: holds no fairproc tables (prefix {self.prefix!r}); "
                            "expected an existing fairproc store, nothing was created"
                        )
                    if sa.inspect(conn).has_table(self.meta.name):
                        version = conn.execute(
                            sa.select(self.meta.c.value).where(self.meta.c.name == "schema_version")
                        ).scalar()
                        if version is None:
                            raise StoreError(
                                f"{self.where}: table {self.meta.name} holds no schema_version"
                                "; it was not written by fairproc, or was damaged"
                            )
                        if version > SCHEMA_VERSION:
                            raise StoreError(
                                f"{self.where}: the fairproc tables (prefix {self.prefix!r}) "
                                f"have schema version {version}, newer than this fairproc "
                                f"knows (up to {SCHEMA_VERSION}): upgrade fairproc, or use "
                                "another prefix or database"
                            )
                        self.metadata.create_all(conn, checkfirst=True)
                        if version < 2:  # version 1 had no index on categories' addresses
                            for index in self.categories.indexes:
                                index.create(conn, checkfirst=True)
                            conn.execute(
                                sa.update(self.meta)
                                .where(self.meta.c.name == "schema_version")
                                .values(value=SCHEMA_VERSION)
                            )
                        return
                    self.metadata.create_all(conn, checkfirst=True)
                    conn.execute(
                        sa.insert(self.meta),
                        [
                            {"name": "schema_version", "value": SCHEMA_VERSION},
                            {"name": "revision", "value": 0},
                        ],
                    )
                    return
            except StoreError as error:
                cause = error.__cause__
                racing = isinstance(cause, exc.IntegrityError | exc.ProgrammingError)
                if attempt == 2 or not racing:
                    raise
                # Another process created the schema at the same moment: look again.

    # -- connections, transactions and errors --

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        lock = self._serial
        if lock is not None:
            lock.acquire()
        try:
            yield
        except exc.SQLAlchemyError as error:
            raise StoreError(
                f"{self.backend} store at {self.where}: could not {action}: {_first_line(error)}"
            ) from error
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every read inside the block, on this thread, sees the store as it stood when the
        first of them ran: one read-only transaction (REPEATABLE READ on PostgreSQL and
        MySQL, a deferred transaction on SQLite), on one connection. A sweep's plan selects
        and counts inside one, so its figures agree with each other. Blocks nest; writing
        inside one is refused (it could not see its own writes)."""
        if getattr(self._held, "conn", None) is not None:
            yield
            return
        with (
            self._guard("begin a read"),
            self.engine.connect() as conn,
            snapshot(conn, self.backend),
        ):
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        held: sa.Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            with self._guard(action):
                yield held
            return
        with self._guard(action), self.engine.connect() as conn:
            yield conn
            if conn.in_transaction():
                conn.commit()  # a read: ended without a ROLLBACK, as in reading()

    @contextmanager
    def _begin_write(self, action: str) -> Iterator[sa.Connection]:
        if getattr(self._held, "conn", None) is not None:
            raise StoreError(
                f"{self.backend} store at {self.where}: cannot {action} inside reading(), "
                "whose reads would not see it; write after the block"
            )
        with self._guard(action), self.engine.connect() as conn:
            conn.info["fairproc_write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("fairproc_write", None)

    def close(self) -> None:
        self.engine.dispose()

    def drop_tables(self) -> None:
        """Drop this store's tables (those with its prefix) and everything in them."""
        with self._guard("drop its tables"):
            self.metadata.drop_all(self.engine)

    # -- values --

    def _record(self, row: Any) -> Record:
        return record_of(row, self._records_where)

    @cached_property
    def _records_where(self) -> str:
        """Where a record's row is, for its errors (formatted once, not for every row read)."""
        return f"{self.where}: table {self.records.name}"

    _event = staticmethod(event_of)
    _entry = staticmethod(entry_of)

    # -- reads --

    @cached_property
    def _lookups(self) -> dict[str, sa.Select[Any]]:
        """The statements every question reads with, built once and bound per call (building
        a statement costs more than SQLite takes to run it)."""
        m, r, e = self.meta, self.records, self.events
        key: sa.BindParameter[str] = sa.bindparam("key")
        return {
            "revision": sa.select(m.c.value).where(m.c.name == "revision"),
            "record": sa.select(r).where(r.c.id == key),
            "records": sa.select(r).where(r.c.subject == key).order_by(r.c.seq),
            "events": sa.select(e).where(e.c.subject == key).order_by(e.c.seq),
        }

    @property
    def revision(self) -> int:
        with self._read("read its revision") as conn:
            value = conn.execute(self._lookups["revision"]).scalar_one()
        return int(value)

    def get_record(self, record_id: str) -> Record | None:
        with self._read("read a record") as conn:
            row = conn.execute(self._lookups["record"], {"key": record_id}).first()
            return None if row is None else self._record(row)

    def subject_records(self, subject: str) -> Sequence[Record]:
        with self._read("read a subject's records") as conn:
            rows = conn.execute(self._lookups["records"], {"key": subject})
            return tuple(self._record(row) for row in rows)

    def subject_events(self, subject: str) -> Sequence[Event]:
        with self._read("read a subject's events") as conn:
            rows = conn.execute(self._lookups["events"], {"key": subject})
            return tuple(self._event(row) for row in rows)

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        wanted = [normalise_email(e) for e in emails]
        found = self._entries_for(wanted)
        return [entry for norm in wanted for entry in found.get(norm, ())]

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`): one statement per
        chunk of addresses, through the index on categories' normalised text."""
        unique = [n for n in dict.fromkeys(emails) if len(n) <= MAX_NORM_LENGTH]
        c, r = self.categories, self.records
        found: list[tuple[str, str, dt.datetime]] = []
        with self._read("look up who gave an address") as conn:
            for chunk in _chunks(unique):
                rows = conn.execute(
                    sa.select(c.c.subject, c.c.norm, sa.func.min(r.c.collected_at))
                    .select_from(c.join(r, r.c.id == c.c.record_id))
                    .where(c.c.norm.in_(list(chunk)), c.c.category == category)
                    .group_by(c.c.subject, c.c.norm)
                )
                found.extend((subject, norm, us_to_instant(at)) for subject, norm, at in rows)
        return found

    def _entries_for(self, norms: Sequence[str]) -> dict[str, list[SuppressionEntry]]:
        unique = [n for n in dict.fromkeys(norms) if len(n) <= MAX_NORM_LENGTH]
        found: dict[str, list[SuppressionEntry]] = defaultdict(list)
        t = self.suppression
        with self._read("read the suppression list") as conn:
            for chunk in _chunks(unique):
                rows = conn.execute(
                    sa.select(t).where(t.c.email_norm.in_(list(chunk))).order_by(t.c.seq)
                )
                for row in rows:
                    found[row.email_norm].append(self._entry(row))
        return found

    def _pages(
        self, query: sa.Select[Any], seq: Any, action: str
    ) -> Iterator[Sequence[sa.Row[Any]]]:
        last = -1
        while True:
            with self._read(action) as conn:
                rows = conn.execute(
                    query.where(seq > last).order_by(seq).limit(self.page_size)
                ).all()
            self.rows_fetched += len(rows)
            if rows:
                yield rows
                last = rows[-1].seq
            if len(rows) < self.page_size:
                return

    def iter_records(self) -> Iterator[Record]:
        for page in self._pages(sa.select(self.records), self.records.c.seq, "read records"):
            yield from (self._record(row) for row in page)

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        t = self.audit
        query = sa.select(t) if subject is None else sa.select(t).where(t.c.subject == subject)
        for page in self._pages(query, t.c.seq, "read the audit log"):
            for row in page:
                yield audit_from_stored(
                    us_to_instant(row.at),
                    row.action,
                    row.subject,
                    row.actor,
                    decode_data(row.detail),
                )

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Several subjects' histories in three statements (per 500 subjects)."""
        wanted = list(dict.fromkeys(subjects))
        records: dict[str, list[Record]] = defaultdict(list)
        events: dict[str, list[Event]] = defaultdict(list)
        r, e = self.records, self.events
        with self._read("read subjects' histories") as conn:
            for chunk in _chunks(wanted):
                for row in conn.execute(
                    sa.select(r).where(r.c.subject.in_(list(chunk))).order_by(r.c.seq)
                ):
                    records[row.subject].append(self._record(row))
                for row in conn.execute(
                    sa.select(e).where(e.c.subject.in_(list(chunk))).order_by(e.c.seq)
                ):
                    events[row.subject].append(self._event(row))
        given = {s: record_addresses(policy, records[s]) for s in wanted}
        emails = [m for found in given.values() for m in found]
        entries = self._entries_for(emails)
        loaded = set(wanted)

        def known(subject: str) -> Sequence[Event] | None:
            # Their events were read above, even those that have none: not read again.
            return events[subject] if subject in loaded else None

        for entry in derived_entries(self, policy, emails, known):
            entries[normalise_email(entry.email)].append(entry)
        return {
            s: build_history(
                policy,
                s,
                records[s],
                events[s],
                [x for m in given[s] for x in entries.get(m, ())],
            )
            for s in wanted
        }

    def find_records(self, condition: ConditionLike, at: Any, policy: Policy) -> Iterator[Record]:
        at = require_aware(at)
        cond = records_condition(condition, policy)
        return self._find(cond, at, policy)

    def explain(self, condition: ConditionLike, at: Any, policy: Policy) -> tuple[str, bool]:
        """The SQL ``find_records`` runs for a condition, and whether it is exact (no row is
        checked again in Python)."""
        query, exact, _ = self._find_query(records_condition(condition, policy), at, policy)
        compiled = query.compile(self.engine, compile_kwargs={"literal_binds": True})
        return str(compiled), exact

    def _find_query(
        self, cond: Condition, at: Any, policy: Policy
    ) -> tuple[sa.Select[Any], bool, Any]:
        r = self.tables.alias(self.records, "r")
        compiled = Compiler(policy, at, self.tables, r, self.backend).compile(cond.node)
        columns: list[Any] = [r.c.seq, r.c.id, r.c.subject, r.c.source, r.c.collected_at, r.c.data]
        if not compiled.exact:
            columns.append(compiled.sure_flag().label("sure"))
        return _where(sa.select(*columns), compiled.where), compiled.exact, r.c.seq

    def _find(self, cond: Condition, at: Any, policy: Policy) -> Iterator[Record]:
        query, exact, seq = self._find_query(cond, at, policy)
        if exact and self.backend == "postgresql":
            # One statement read as it runs: PostgreSQL builds a pushed-down condition's
            # hashed subplans (scans of the events, the suppression list) once, where a page
            # at a time would build them again for every page.
            for row in self._stream(query.order_by(seq), "find records"):
                yield self._record(row)
            return
        for page in self._pages(query, seq, "find records"):
            if exact:
                yield from (self._record(row) for row in page)
                continue
            unsure = [row for row in page if not row.sure]
            histories = self.histories(policy, (row.subject for row in unsure)) if unsure else {}
            for row in page:
                record = self._record(row)
                if row.sure or cond.evaluate(Ctx(at, histories[record.subject], record)):
                    yield record

    def find_rows(
        self,
        condition: ConditionLike,
        at: Any,
        policy: Policy,
        values: Sequence[ConditionLike] = (),
    ) -> Iterator[Row]:
        """(id, subject, source, values) for each record the condition holds for, in the order
        first put: one statement selecting only those columns, streamed, when the condition
        and every value are exact in SQL; otherwise ``find_records`` with the values computed
        in Python (the same answer, more slowly)."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        exprs = [records_value(v, policy) for v in values]
        query = self._rows_query(cond, exprs, at, policy)
        if query is None:
            return rows_of(self, self._find(cond, at, policy), at, policy, exprs)
        return self._stream_rows(query)

    def _rows_query(
        self, cond: Condition, exprs: Sequence[Condition], at: Any, policy: Policy
    ) -> sa.Select[Any] | None:
        """The statement ``find_rows`` runs, or None when part of it is not exact in SQL."""
        r = self.tables.alias(self.records, "r")
        compiler = Compiler(policy, at, self.tables, r, self.backend)
        compiled = compiler.compile(cond.node)
        columns = [compiler.value(e.node) for e in exprs]
        if not compiled.exact or any(c is None for c in columns):
            return None
        query = sa.select(r.c.id, r.c.subject, r.c.source, *columns).order_by(r.c.seq)
        return _where(query, compiled.where)

    def _stream_rows(self, query: sa.Select[Any]) -> Iterator[Row]:
        for row in self._stream(query, "find rows"):
            yield row[0], row[1], row[2], row[3:]

    def _stream(self, query: sa.Select[Any], action: str) -> Iterator[Any]:
        # One statement, read as it runs (a server-side cursor where the driver has one): a
        # consistent snapshot, and no re-planning per page.
        options = {"stream_results": True, "yield_per": self.page_size}
        with self._read(action) as conn, conn.execute(query, execution_options=options) as got:
            for part in got.partitions():
                self.rows_fetched += len(part)
                yield from part

    def count_records(self, condition: ConditionLike, at: Any, policy: Policy) -> int:
        """How many records the condition holds for: counted in the database when it is
        exact in SQL, otherwise the records ``find_records`` gives, counted."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        r = self.tables.alias(self.records, "r")
        compiled = Compiler(policy, at, self.tables, r, self.backend).compile(cond.node)
        if not compiled.exact:
            return sum(1 for _ in self._find(cond, at, policy))
        query = _where(sa.select(sa.func.count()).select_from(r), compiled.where)
        with self._read("count records") as conn:
            return int(conn.execute(query).scalar_one())

    # -- writes --

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)
        if not changes:
            return
        changes = normalised(changes)
        with self._begin_write("apply a change set") as conn:
            m = self.meta
            conn.execute(sa.update(m).where(m.c.name == "revision").values(value=m.c.value + 1))
            self._write(conn, changes)

    def apply_decided(self, decide: Decide) -> ChangeSet:
        """``decide`` and its changes in one write transaction (see
        :class:`fairproc.storage.DecidedWrites`): the revision row is locked first (SQLite:
        ``BEGIN IMMEDIATE``), so every read ``decide`` makes, on this transaction's
        connection, sees what every earlier writer committed and no other writer can commit
        until this one has; a change set it returns empty writes nothing, not even a new
        revision."""
        with self._begin_write("apply a decided change set") as conn:
            m = self.meta
            revision = m.c.name == "revision"
            # The row lock every writer takes; READ COMMITTED reads after it see their work.
            conn.execute(sa.select(m.c.value).where(revision).with_for_update()).scalar_one()
            self._held.conn = conn  # decide's reads go through this transaction
            try:
                changes = decide(self)
            finally:
                self._held.conn = None
            check_changes(changes)
            if changes:
                conn.execute(sa.update(m).where(revision).values(value=m.c.value + 1))
                self._write(conn, normalised(changes))
        return changes

    def audit_key(self) -> bytes:
        """The key naming subjects in the audit log (:class:`fairproc.storage.AuditKeys`): a
        row of ``<prefix>keys``, made on first use (two processes making it at once: the
        first one's is kept)."""
        if self._audit_key is None:
            k = self.keys
            named = k.c.name == "audit"
            with self._read("read its audit key") as conn:
                found = conn.execute(sa.select(k.c.value).where(named)).scalar()
            if found is None:
                try:
                    with self._begin_write("make its audit key") as conn:
                        conn.execute(sa.insert(k).values(name="audit", value=secrets.token_hex(32)))
                except StoreError as error:
                    if not isinstance(error.__cause__, exc.IntegrityError):
                        raise
                with self._read("read its audit key") as conn:
                    found = conn.execute(sa.select(k.c.value).where(named)).scalar_one()
            self._audit_key = bytes.fromhex(found)
        return self._audit_key

    def _next_seq(self, conn: sa.Connection, table: sa.Table) -> int:
        return (
            int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar_one())
            + 1
        )

    def _write(self, conn: sa.Connection, changes: ChangeSet) -> None:
        r, c = self.records, self.categories
        gone = list(dict.fromkeys(changes.delete_records))
        for chunk in _chunks(gone):
            conn.execute(sa.delete(r).where(r.c.id.in_(list(chunk))))
            conn.execute(sa.delete(c).where(c.c.record_id.in_(list(chunk))))
        e = self.events
        for chunk in _chunks(list(dict.fromkeys(changes.delete_subject_events))):
            conn.execute(sa.delete(e).where(e.c.subject.in_(list(chunk))))
        for chunk in _chunks(list(dict.fromkeys(changes.delete_record_events))):
            conn.execute(sa.delete(e).where(e.c.record.in_(list(chunk))))
        puts = changes.put_records
        if puts:
            ids = [rec.id for rec in puts]
            existing: set[str] = set()
            for chunk in _chunks(ids):
                existing.update(
                    conn.execute(sa.select(r.c.id).where(r.c.id.in_(list(chunk)))).scalars()
                )
            updates = [rec for rec in puts if rec.id in existing]
            inserts = [rec for rec in puts if rec.id not in existing]
            if updates:
                conn.execute(
                    sa.update(r)
                    .where(r.c.id == sa.bindparam("b_id"))
                    .values(
                        subject=sa.bindparam("b_subject"),
                        source=sa.bindparam("b_source"),
                        collected_at=sa.bindparam("b_collected_at"),
                        data=sa.bindparam("b_data"),
                    ),
                    [
                        {
                            "b_id": rec.id,
                            "b_subject": rec.subject,
                            "b_source": rec.source,
                            "b_collected_at": instant_to_us(rec.collected_at),
                            "b_data": encode_data(rec.data),
                        }
                        for rec in updates
                    ],
                )
                for chunk in _chunks([rec.id for rec in updates]):
                    conn.execute(sa.delete(c).where(c.c.record_id.in_(list(chunk))))
            if inserts:
                first = self._next_seq(conn, r)
                conn.execute(
                    sa.insert(r),
                    [
                        {
                            "seq": first + i,
                            "id": rec.id,
                            "subject": rec.subject,
                            "source": rec.source,
                            "collected_at": instant_to_us(rec.collected_at),
                            "data": encode_data(rec.data),
                        }
                        for i, rec in enumerate(inserts)
                    ],
                )
            rows = [
                {"record_id": rec.id, "category": cat, "subject": rec.subject, "norm": norm}
                for rec in puts
                for cat, norm in category_norms(rec)
            ]
            if rows:
                conn.execute(sa.insert(c), rows)
        self._append(conn, self.events, [event_row(ev) for ev in changes.add_events])
        self._append(conn, self.suppression, [suppression_row(s) for s in changes.add_suppression])
        self._append(conn, self.audit, [audit_row(a) for a in changes.audit])

    def _append(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        first = self._next_seq(conn, table)
        for i, row in enumerate(rows):
            row["seq"] = first + i
        conn.execute(sa.insert(table), rows)


def open_url(url: str, *, create: bool = True) -> SqlStore:
    return SqlStore(url, create=create)

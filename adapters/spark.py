"""A store on Apache Spark over Parquet folders: ``open_store("spark+parquet:///path/to/folder")``.

fairproc's own table layout (records, categories, events, suppression, audit: the columns the
SQL store's tables hold, :mod:`fairproc.adapters.sql`), each table a set of Parquet *groups*
(folders Spark wrote), listed by a manifest. ``?prefix=name_`` keeps a store in a subfolder of
its own (several stores in one folder); ``?master=`` names the Spark master when this process
starts the session (default ``local[2]``; an application that has a session already gets it).

Reads go through one seam, :class:`TableSource`: it says where each table is and which column
holds what, and gives a Spark DataFrame per table under fairproc's column names. The Parquet
layout is one source; a mapping of the host's own tables plugs in as another.

Queries run as Spark jobs: ``find_records``, ``find_rows`` and ``count_records`` compile the
condition to Spark SQL (:mod:`fairproc.adapters.sparkcompile`, the SQL store's compiler); what
Spark cannot compute exactly (local wall-clock functions) is narrowed in Spark and finished in
Python. ``histories`` reads many subjects at once (the access lookup).

Writes: a change set writes new groups (the rows it adds; each group it deletes rows from,
rewritten without them: only the groups holding affected rows), then commits by replacing the
manifest atomically (written beside it, fsynced, ``os.replace``). A write killed before that
leaves the old manifest, and so the old version, whole; the groups it wrote are listed nowhere
and removed by the next writer. Groups a commit drops are deleted one commit later, so a reader
still on the previous version can finish. Writers take an exclusive ``fcntl.flock`` on
``.fairproc-write.lock`` (processes on one machine, or on a file system with working locks:
not object storage, see docs/spark.md); ``apply_decided`` decides under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import sqlalchemy as sa

from fairproc.clock import require_aware
from fairproc.conditions import Condition
from fairproc.conditions.vocabulary import Ctx
from fairproc.model import Event, Policy, Record, SuppressionEntry, normalise_email
from fairproc.retention import DueParts, any_of, due_parts, source_in
from fairproc.storage import (
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
    instant_to_us,
    normalised,
    records_condition,
    records_value,
    rows_of,
    us_to_instant,
)
from fairproc.world import SubjectHistory, derived_entries, record_addresses

from .sparkcompile import SparkCompiler, render
from .sql import _tables, entry_of, event_of, record_of
from .sqlcompile import Compiled, Tables

__all__ = ["SCHEMAS", "ParquetTables", "SparkStore", "TableSource", "open_url", "spark_session"]

MANIFEST = "CURRENT"
WRITE_LOCK = ".fairproc-write.lock"
AUDIT_KEY = ".fairproc-audit-key"
CHUNK = 5000  # values per isin(...) list
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")

SCHEMAS: dict[str, str] = {
    "records": "seq BIGINT, id STRING, subject STRING, source STRING, collected_at BIGINT, "
    "data STRING",
    "categories": "record_id STRING, category STRING, subject STRING, norm STRING",
    "events": "seq BIGINT, id STRING, subject STRING, kind STRING, at BIGINT, record STRING, "
    "purpose STRING",
    "suppression": "seq BIGINT, email STRING, email_norm STRING, at BIGINT, reason STRING",
    "audit": "seq BIGINT, at BIGINT, action STRING, subject STRING, actor STRING, detail STRING",
}
"""fairproc's tables and their columns, as the SQL store holds them."""

LOOKED_UP_BY: dict[str, str] = {
    "records": "subject",
    "categories": "norm",
    "events": "subject",
    "suppression": "email_norm",
    "audit": "subject",
}
"""The column each table's one-subject (or one-address) lookups filter on. Every file is
written sorted by it, so that Parquet's statistics of its row groups and pages let Spark skip
what cannot hold the value asked for instead of reading the whole table (the access lookup's
figures are in docs/spark.md). Reads never rely on the order: each orders by ``seq`` where
order matters."""

crash_point: Callable[[str], None] | None = None
"""Called at each stage of a write (``prepared``: every new group written, the manifest not
yet replaced); tests set it to kill a write midway."""


def _stage(name: str) -> None:
    if crash_point is not None:
        crash_point(name)


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """The active Spark session, or a new one on ``master`` (default ``local[2]``): UTC
    session time, no UI, quiet logs, and ``conf`` (e.g. ``spark.driver.memory``, which only a
    new session takes)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.structuredLogging.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        # The driver keeps the plans and task figures of its last executions for the UI even
        # when the UI is off; a condition's plan (its fixpoint levels inlined) is large, and a
        # long-lived session asking many of them ran out of heap keeping a thousand.
        "spark.sql.ui.retainedExecutions": "20",
        "spark.ui.retainedJobs": "100",
        "spark.ui.retainedStages": "100",
        "spark.ui.retainedTasks": "1000",
        "spark.ui.retainedDeadExecutors": "10",
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master or "local[2]").appName("fairproc")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class TableSource:
    """Where each of fairproc's tables is and which column holds what: the one seam through
    which the store reads. ``frame(name, version)`` gives a DataFrame with the columns of
    :data:`SCHEMAS` for that table."""

    def frame(self, spark: Any, name: str, manifest: dict[str, Any]) -> Any:
        raise NotImplementedError  # pragma: no cover - every source overrides it


class ParquetTables(TableSource):
    """fairproc's own layout: ``tables/<name>/<group>/part-*.parquet``, the groups of each
    table listed by the manifest."""

    def __init__(self, root: Path):
        self.root = root

    def group_path(self, name: str, group: str) -> Path:
        return self.root / "tables" / name / group

    def frame(self, spark: Any, name: str, manifest: dict[str, Any]) -> Any:
        groups = sorted(manifest["tables"][name])
        schema = SCHEMAS[name]
        if not groups:
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).parquet(*(str(self.group_path(name, g)) for g in groups))


def _empty_manifest() -> dict[str, Any]:
    return {
        "format": 1,
        "version": 0,
        "tables": {name: {} for name in SCHEMAS},  # group -> rows
        "next_seq": {name: 1 for name in SCHEMAS if name != "categories"},
    }


class _Version:
    """One version's DataFrames, temporary views and SQLAlchemy tables (named as the views)."""

    def __init__(self, store: SparkStore, manifest: dict[str, Any]):
        self.manifest = manifest
        self.number = int(manifest["version"])
        spark = store.spark
        self.prefix = f"fp_{store.token}_v{self.number}_"
        self.frames = {name: store.source.frame(spark, name, manifest) for name in SCHEMAS}
        for name, frame in self.frames.items():
            frame.createOrReplaceTempView(self.prefix + name)
        self.metadata = sa.MetaData()
        t = _tables(self.metadata, self.prefix, None)
        self.tables = Tables(t["records"], t["categories"], t["events"], t["suppression"])
        self.counted: dict[tuple[int, int], tuple[sa.Table, bool] | None] = {}
        self.fixed: dict[int, Any] = {}  # instant -> the fixed overdue flags (or None)
        self.cached: list[Any] = []
        self.small = sum(sum(groups.values()) for groups in manifest["tables"].values()) <= (
            store.local_rows
        )
        self._local: dict[str, list[Any]] = {}
        self._collect = store._collect

    def local(self, name: str) -> list[Any] | None:
        """Every row of ``name`` in seq order, read once, when this version is small (see
        :attr:`SparkStore.local_rows`); None otherwise."""
        if not self.small:
            return None
        found = self._local.get(name)
        if found is None:
            frame = self.frames[name]
            found = self._local[name] = self._collect(
                frame.orderBy("seq") if name != "categories" else frame
            )
        return found

    def drop(self, spark: Any) -> None:
        for frame in self.cached:
            frame.unpersist()
        counted = [found[0].name for found in self.counted.values() if found is not None]
        for view in [*(self.prefix + name for name in SCHEMAS), *counted]:
            spark.catalog.dropTempView(view)


class SparkStore(BaseStore):
    """A store on Spark over Parquet folders (see the module's docstring)."""

    write_batch = 10_000  # every write is a Spark job and a commit: large batches
    local_rows = 20_000
    """A version holding at most this many rows answers the engine's one-subject lookups from
    its tables read whole, once (one Spark job per table), instead of a Spark job per lookup;
    queries (``find_records``, ``find_rows``, ``count_records``) always run in Spark."""

    def __init__(
        self,
        folder: str | Path,
        *,
        create: bool = True,
        master: str | None = None,
        spark: Any = None,
    ):
        try:
            import pyspark  # noqa: F401
        except ImportError as error:
            raise StoreError(
                f"cannot open the Spark store at {folder}: pyspark is not installed: "
                f"pip install 'fairproc[spark]' ({error})"
            ) from None
        self.folder = Path(folder)
        if not create and not (self.folder / MANIFEST).is_file():
            raise StoreError(
                f"spark store: no store at {self.folder} (no {MANIFEST} file; expected an "
                "existing fairproc store, nothing was created)"
            )
        self.spark = spark if spark is not None else spark_session(master)
        self.source: TableSource = ParquetTables(self.folder)
        self.token = secrets.token_hex(4)
        self._lock = threading.RLock()
        self._held = threading.local()  # .manifest: this thread's reading(); .deciding
        self._version: _Version | None = None
        self.rows_fetched = 0
        if create and not (self.folder / MANIFEST).is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._write_lock():
                if not (self.folder / MANIFEST).is_file():
                    self._commit(_empty_manifest())

    # -- the manifest and versions --

    def _read_manifest(self) -> dict[str, Any]:
        try:
            with open(self.folder / MANIFEST, encoding="utf-8") as handle:
                manifest: dict[str, Any] = dict(json.load(handle))
        except FileNotFoundError:
            raise StoreError(f"spark store: {self.folder} holds no {MANIFEST} file") from None
        except (OSError, ValueError) as error:
            raise StoreError(
                f"spark store: cannot read {self.folder / MANIFEST}: {error}"
            ) from None
        if manifest.get("format") != 1:
            raise StoreError(
                f"spark store: {self.folder / MANIFEST} has format {manifest.get('format')!r}; "
                "this fairproc reads format 1"
            )
        return manifest

    def _manifest(self) -> dict[str, Any]:
        held: dict[str, Any] | None = getattr(self._held, "manifest", None)
        return held if held is not None else self._read_manifest()

    def _current(self) -> _Version:
        """The version reads see: the one pinned by ``reading()``, else the newest."""
        manifest = self._manifest()
        with self._lock:
            found = self._version
            if found is None or found.number != manifest["version"]:
                if found is not None:
                    found.drop(self.spark)
                found = self._version = _Version(self, manifest)
            return found

    @property
    def revision(self) -> int:
        return int(self._manifest()["version"])

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every read inside the block, on this thread, sees the version current at its start
        (:class:`fairproc.storage.Snapshots`). Blocks nest; writing inside one is refused."""
        if getattr(self._held, "manifest", None) is not None:
            yield
            return
        self._held.manifest = self._read_manifest()
        try:
            yield
        finally:
            self._held.manifest = None

    # -- values --

    def _record(self, row: Any) -> Record:
        return record_of(row, f"spark store at {self.folder}: table records")

    _event = staticmethod(event_of)
    _entry = staticmethod(entry_of)

    def _each(self, frame: Any) -> Iterable[Any]:
        """The rows of a query's result: a small version's (:attr:`local_rows`) in one Spark
        job; a larger one's streamed a partition at a time (a job per partition, the next
        one computed while this one is read)."""
        if self._current().small:
            rows: Iterable[Any] = frame.collect()
        else:
            rows = frame.toLocalIterator(prefetchPartitions=True)
        return rows

    def _each_in_order(self, query: Any) -> Iterator[Any]:
        """The rows of ``query`` (a selection with a ``seq`` column) in ``seq`` order.

        A sort in Spark samples its input to cut it into ranges (a job of its own) and then
        reads it again: over a selection with joins, everything before the sort would run
        twice. The selection is persisted instead (memory, then disk; only the rows it
        keeps), sorted from there, and dropped once read."""
        from pyspark import StorageLevel

        selected = self._sql(query).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            yield from self._each(selected.orderBy("seq"))
        finally:
            selected.unpersist()

    def _collect(self, frame: Any) -> list[Any]:
        rows: list[Any] = list(frame.collect())
        self.rows_fetched += len(rows)
        return rows

    # -- reads --

    def get_record(self, record_id: str) -> Record | None:
        from pyspark.sql.functions import col

        version = self._current()
        local = version.local("records")
        if local is not None:
            rows = [row for row in local if row.id == record_id]
        else:
            rows = self._collect(version.frames["records"].where(col("id") == record_id))
        return self._record(rows[0]) if rows else None

    def subject_records(self, subject: str) -> Sequence[Record]:
        from pyspark.sql.functions import col

        version = self._current()
        local = version.local("records")
        if local is not None:
            rows = [row for row in local if row.subject == subject]
        else:
            frame = version.frames["records"]
            rows = self._collect(frame.where(col("subject") == subject).orderBy("seq"))
        return tuple(self._record(row) for row in rows)

    def subject_events(self, subject: str) -> Sequence[Event]:
        from pyspark.sql.functions import col

        version = self._current()
        local = version.local("events")
        if local is not None:
            rows = [row for row in local if row.subject == subject]
        else:
            frame = version.frames["events"]
            rows = self._collect(frame.where(col("subject") == subject).orderBy("seq"))
        return tuple(self._event(row) for row in rows)

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        wanted = [normalise_email(e) for e in emails]
        found = self._entries_for(wanted)
        return [entry for norm in wanted for entry in found.get(norm, ())]

    def _entries_for(self, norms: Sequence[str]) -> dict[str, list[SuppressionEntry]]:
        from pyspark.sql.functions import col

        unique = list(dict.fromkeys(norms))
        found: dict[str, list[SuppressionEntry]] = defaultdict(list)
        version = self._current()
        local = version.local("suppression")
        if local is not None:
            wanted = set(unique)
            for row in local:
                if row.email_norm in wanted:
                    found[row.email_norm].append(self._entry(row))
            return found
        frame = version.frames["suppression"]
        for i in range(0, len(unique), CHUNK):
            chunk = unique[i : i + CHUNK]
            for row in self._collect(frame.where(col("email_norm").isin(chunk)).orderBy("seq")):
                found[row.email_norm].append(self._entry(row))
        return found

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`): the categories rows
        holding the addresses, then their records' collection instants, looked up by subject
        (the records' files are sorted by it, so Spark skips what cannot hold them) rather
        than joined with every record; a small version's from its tables read once."""
        from pyspark.sql import functions as f

        unique = list(dict.fromkeys(emails))
        version = self._current()
        given: list[Any] = []
        local = version.local("categories")
        if local is not None:
            wanted = set(unique)
            given = [row for row in local if row.norm in wanted and row.category == category]
        for i in range(0, len(unique) if local is None else 0, CHUNK):
            chunk = unique[i : i + CHUNK]
            holding = version.frames["categories"].where(
                f.col("norm").isin(chunk) & (f.col("category") == category)
            )
            given.extend(self._collect(holding.select("record_id", "subject", "norm")))
        collected = self._collected_at(version, {row.record_id: row.subject for row in given})
        first: dict[tuple[str, str], int] = {}
        for row in given:
            at = collected.get(row.record_id)
            if at is None:
                continue  # no such record: as a join with the records, nothing
            key = (row.subject, row.norm)
            first[key] = min(first.get(key, at), at)
        return [(subject, norm, us_to_instant(at)) for (subject, norm), at in first.items()]

    def _collected_at(self, version: _Version, subjects: dict[str, str]) -> dict[str, int]:
        """When each record (``record id -> its subject``, as its categories rows say) was
        collected, for those that exist: read by subject and id, then by id alone for any not
        found so (a category row whose subject is not its record's: rows ``load`` took
        unchecked); a small version's from its records read once."""
        from pyspark.sql import functions as f

        found: dict[str, int] = {}

        def keep(rows: Iterable[Any]) -> None:
            for row in rows:
                at = int(row.collected_at)
                found[row.id] = min(found.get(row.id, at), at)

        local = version.local("records")
        if local is not None:
            keep(row for row in local if row.id in subjects)
            return found
        r = version.frames["records"]

        def read(ids: list[str], by_subject: bool) -> None:
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]
                where = f.col("id").isin(chunk)
                if by_subject:
                    where = f.col("subject").isin(sorted({subjects[x] for x in chunk})) & where
                keep(self._collect(r.where(where).select("id", "collected_at")))

        read(list(subjects), by_subject=True)
        read([x for x in subjects if x not in found], by_subject=False)
        return found

    def iter_records(self) -> Iterator[Record]:
        version = self._current()
        local = version.local("records")  # a small version's rows, read once already
        if local is not None:
            yield from (self._record(row) for row in local)
            return
        for row in self._each(version.frames["records"].orderBy("seq")):
            self.rows_fetched += 1
            yield self._record(row)

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        from pyspark.sql.functions import col

        frame = self._current().frames["audit"]
        if subject is not None:
            frame = frame.where(col("subject") == subject)
        for row in self._collect(frame.orderBy("seq")):
            yield audit_from_stored(
                us_to_instant(row.at), row.action, row.subject, row.actor, decode_data(row.detail)
            )

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Several subjects' histories (the access lookup): two Spark jobs per 5,000 subjects,
        and the suppression entries of their addresses."""
        from pyspark.sql.functions import col

        wanted = list(dict.fromkeys(subjects))
        records: dict[str, list[Record]] = defaultdict(list)
        events: dict[str, list[Event]] = defaultdict(list)
        version = self._current()
        local_records, local_events = version.local("records"), version.local("events")
        if local_records is not None and local_events is not None:
            asked = set(wanted)
            for row in local_records:
                if row.subject in asked:
                    records[row.subject].append(self._record(row))
            for row in local_events:
                if row.subject in asked:
                    events[row.subject].append(self._event(row))
        for i in range(0, len(wanted) if local_records is None else 0, CHUNK):
            chunk = wanted[i : i + CHUNK]
            for row in self._collect(
                version.frames["records"].where(col("subject").isin(chunk)).orderBy("seq")
            ):
                records[row.subject].append(self._record(row))
            for row in self._collect(
                version.frames["events"].where(col("subject").isin(chunk)).orderBy("seq")
            ):
                events[row.subject].append(self._event(row))
        given = {s: record_addresses(policy, records[s]) for s in wanted}
        emails = [m for found in given.values() for m in found]
        entries = self._entries_for(emails) if emails else {}
        for entry in derived_entries(self, policy, emails, events.get):
            entries.setdefault(normalise_email(entry.email), []).append(entry)
        return {
            s: build_history(
                policy, s, records[s], events[s], [x for m in given[s] for x in entries.get(m, ())]
            )
            for s in wanted
        }

    # -- conditions as Spark SQL --

    def _compiler(self, version: _Version, policy: Policy, at: dt.datetime) -> SparkCompiler:
        r = version.tables.alias(version.tables.records, "r")
        at_us = instant_to_us(at)

        def counted_table(level: int) -> tuple[sa.Table, bool] | None:
            return self._counted_table(version, policy, at, at_us, level)

        return SparkCompiler(policy, at, version.tables, r, "spark", counted_table=counted_table)

    def _counted_table(
        self, version: _Version, policy: Policy, at: dt.datetime, at_us: int, level: int
    ) -> tuple[sa.Table, bool] | None:
        """The records with their ``overdue`` flag at fixpoint ``level`` (the retention due
        condition compiled at that level), computed once per version and instant and read as
        a table by the level above.

        Only the groups of sources whose retention reads a fact counting collections change
        from one level to the next (:func:`fairproc.retention.due_parts`): the flag of every
        other record is computed once per version and instant (:meth:`_fixed_overdue`), and
        each level computes only its own groups' records. Each part is persisted in Spark
        (memory, then disk) and the level's table is their union."""
        key = (at_us, level)
        with self._lock:
            if key in version.counted:
                return version.counted[key]
        parts = due_parts(policy)
        fixed = self._fixed_overdue(version, policy, at, at_us, parts)
        found: tuple[sa.Table, bool] | None = None
        if fixed is not None:
            frame = fixed
            if parts.moving_sources:
                r = version.tables.alias(version.tables.records, "r")
                compiler = SparkCompiler(
                    policy,
                    at,
                    version.tables,
                    r,
                    "spark",
                    level,
                    counted_table=lambda lower: self._counted_table(
                        version, policy, at, at_us, lower
                    ),
                )
                due = compiler.compile(parts.moving)
                moving = None
                if due.exact:
                    query = sa.select(
                        r.c.id,
                        r.c.subject,
                        r.c.collected_at,
                        compiler.as_int(due.sure).label("overdue"),
                    ).where(r.c.source.in_(parts.moving_sources))
                    moving = self._persist(version, query)
                frame = None if moving is None else fixed.unionByName(moving)
            if frame is not None:
                found = (self._counted_view(version, frame, f"counted_{level}_{at_us}"), True)
        with self._lock:
            version.counted[key] = found
        return found

    def _fixed_overdue(
        self, version: _Version, policy: Policy, at: dt.datetime, at_us: int, parts: DueParts
    ) -> Any:
        """The ``overdue`` flag of the records no level changes (every record outside
        ``parts.moving_sources``), persisted once per version and instant; None when Spark
        cannot compute it exactly.

        One selection per part of the due condition, over that part's records alone (Spark
        joins a subquery to every row it may read: the subqueries of one group's rules are
        not asked of another group's records), and the records of no part, never due."""
        with self._lock:
            if at_us in version.fixed:
                return version.fixed[at_us]

        def no_collections(lower: int) -> tuple[sa.Table, bool] | None:
            raise AssertionError("the fixed part of the due condition reads no collections")

        r = version.tables.alias(version.tables.records, "r")
        # Compiled at level 0, so that reading collections would call no_collections.
        compiler = SparkCompiler(
            policy, at, version.tables, r, "spark", 0, counted_table=no_collections
        )
        selections: list[sa.Select[Any]] = []
        exact = True
        for part in parts.fixed:
            records, holds = compiler.compile(part.records), compiler.compile(part.holds)
            exact = exact and records.exact and holds.exact
            flag = compiler.as_int(holds.sure).label("overdue")
            selections.append(
                self._where(sa.select(r.c.id, r.c.subject, r.c.collected_at, flag), records.sure)
            )
        selected = [part.records for part in parts.fixed]
        if parts.moving_sources:
            selected.append(source_in(parts.moving_sources))
        # A record of no part (a NULL source among them) is never due.
        anywhere = compiler.compile(any_of(selected))
        exact = exact and anywhere.exact
        if anywhere.sure is not True:
            rest = sa.select(
                r.c.id, r.c.subject, r.c.collected_at, sa.literal(0, sa.Integer()).label("overdue")
            )
            if anywhere.sure is not False:
                rest = rest.where(sa.not_(sa.func.coalesce(anywhere.sure, sa.false())))
            selections.append(rest)
        frame = None
        if exact:
            query = selections[0] if len(selections) == 1 else sa.union_all(*selections)
            frame = self._persist(version, query)
        with self._lock:
            version.fixed[at_us] = frame
        return frame

    def _persist(self, version: _Version, query: Any) -> Any:
        """``query``'s rows persisted in Spark (memory, then disk) until the version goes."""
        from pyspark import StorageLevel

        text, params = render(query)
        frame = self.spark.sql(text, args=params).persist(StorageLevel.MEMORY_AND_DISK)
        with self._lock:
            version.cached.append(frame)
        return frame

    def _counted_view(self, version: _Version, frame: Any, name: str) -> sa.Table:
        """``frame`` (id, subject, collected_at, overdue) as a view and its SQLAlchemy table."""
        name = f"{version.prefix}{name}".replace("-", "m")
        frame.createOrReplaceTempView(name)
        return sa.Table(
            name,
            version.metadata,
            sa.Column("id", sa.String()),
            sa.Column("subject", sa.String()),
            sa.Column("collected_at", sa.BigInteger()),
            sa.Column("overdue", sa.Integer()),
        )

    def _sql(self, statement: sa.ClauseElement) -> Any:
        text, params = render(statement)
        try:
            return self.spark.sql(text, args=params)
        except Exception as error:  # Spark's AnalysisException and friends
            raise StoreError(
                f"spark store at {self.folder}: Spark refused a query: "
                f"{str(error).strip().splitlines()[0] if str(error).strip() else error!r}"
            ) from error

    def _compile(
        self, cond: Condition, at: dt.datetime, policy: Policy
    ) -> tuple[SparkCompiler, Compiled]:
        compiler = self._compiler(self._current(), policy, at)
        return compiler, compiler.compile(cond.node)

    @staticmethod
    def _where(query: Any, where: Any) -> Any:
        if where is False:
            return query.where(sa.false())
        if where is True:
            return query
        return query.where(where)

    def find_records(self, condition: ConditionLike, at: Any, policy: Policy) -> Iterator[Record]:
        at = require_aware(at)
        cond = records_condition(condition, policy)
        return self._find(cond, at, policy)

    def explain(self, condition: ConditionLike, at: Any, policy: Policy) -> tuple[str, bool]:
        """The Spark SQL ``find_records`` runs (parameters bound as ``:name``), and whether it
        is exact (no row checked again in Python)."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        compiler, compiled = self._compile(cond, at, policy)
        r = compiler.r
        text, _ = render(self._where(sa.select(r.c.id), compiled.where))
        return text, compiled.exact

    def _find(self, cond: Condition, at: dt.datetime, policy: Policy) -> Iterator[Record]:
        compiler, compiled = self._compile(cond, at, policy)
        r = compiler.r
        columns: list[Any] = [r.c.seq, r.c.id, r.c.subject, r.c.source, r.c.collected_at, r.c.data]
        if not compiled.exact:
            columns.append(compiler.as_int(compiled.sure).label("sure"))
        query = self._where(sa.select(*columns), compiled.where)
        page: list[Any] = []
        for row in self._each_in_order(query):
            self.rows_fetched += 1
            if compiled.exact:
                yield self._record(row)
                continue
            page.append(row)
            if len(page) >= 1000:
                yield from self._finish(page, cond, at, policy)
                page = []
        if page:
            yield from self._finish(page, cond, at, policy)

    def _finish(
        self, page: list[Any], cond: Condition, at: dt.datetime, policy: Policy
    ) -> Iterator[Record]:
        """Rows Spark could only narrow to, checked again in Python."""
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
        first put: one Spark job selecting only those columns when the condition and every
        value are exact in Spark SQL; otherwise ``find_records`` with the values computed in
        Python."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        exprs = [records_value(v, policy) for v in values]
        compiler, compiled = self._compile(cond, at, policy)
        columns = [compiler.value(e.node) for e in exprs]
        if not compiled.exact or any(c is None for c in columns):
            return rows_of(self, self._find(cond, at, policy), at, policy, exprs)
        r = compiler.r
        labelled = [c.label(f"v{i}") for i, c in enumerate(columns) if c is not None]
        query = self._where(
            sa.select(r.c.id, r.c.subject, r.c.source, *labelled, r.c.seq), compiled.where
        )
        return self._stream_rows(query, len(columns))

    def _stream_rows(self, query: Any, width: int) -> Iterator[Row]:
        for row in self._each_in_order(query):
            self.rows_fetched += 1
            yield row[0], row[1], row[2], tuple(_plain(row[3 + i]) for i in range(width))

    def count_records(self, condition: ConditionLike, at: Any, policy: Policy) -> int:
        """How many records the condition holds for: counted in Spark when it is exact there,
        otherwise the records ``find_records`` gives, counted."""
        at = require_aware(at)
        cond = records_condition(condition, policy)
        compiler, compiled = self._compile(cond, at, policy)
        if not compiled.exact:
            return sum(1 for _ in self._find(cond, at, policy))
        r = compiler.r
        query = self._where(sa.select(sa.func.count().label("n")).select_from(r), compiled.where)
        return int(self._sql(query).collect()[0][0])

    # -- writes --

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._lock:
            if getattr(self._held, "manifest", None) is not None and not getattr(
                self._held, "deciding", False
            ):
                raise StoreError(
                    f"spark store at {self.folder}: cannot write inside reading(), whose reads "
                    "would not see it; write after the block"
                )
            if getattr(self._held, "deciding", False):
                raise StoreError(
                    f"spark store at {self.folder}: apply_decided's decide must not write"
                )
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / WRITE_LOCK, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)
        if not changes:
            return
        changes = normalised(changes)
        with self._write_lock():
            manifest = self._read_manifest()
            self._commit(self._write(manifest, changes))

    def apply_decided(self, decide: Decide) -> ChangeSet:
        """``decide`` and its changes under the folder's write lock
        (:class:`fairproc.storage.DecidedWrites`): its reads see the newest version, which no
        other writer can replace until this one has committed."""
        with self._write_lock():
            manifest = self._read_manifest()
            self._held.manifest = manifest
            self._held.deciding = True
            try:
                changes = decide(self)
            finally:
                self._held.manifest = None
                self._held.deciding = False
            check_changes(changes)
            if changes:
                self._commit(self._write(manifest, normalised(changes)))
        return changes

    def load(self, frames: dict[str, Any]) -> None:
        """Bulk import, one commit: each DataFrame (``table name -> frame`` with that table's
        columns, :data:`SCHEMAS`, ``seq`` included and above every stored one) added as new
        groups. For data already in Spark (a first import, a benchmark's world); rows are not
        checked as ``apply`` checks them."""
        from pyspark.sql import functions as f

        unknown = sorted(set(frames) - set(SCHEMAS))
        if unknown:
            raise StoreError(f"spark store: no table {unknown[0]!r}; tables: {sorted(SCHEMAS)}")
        with self._write_lock():
            manifest: dict[str, Any] = json.loads(json.dumps(self._read_manifest()))
            manifest["version"] = int(manifest["version"]) + 1
            self._clean(manifest)
            for name, frame in frames.items():
                columns = [c.split()[0] for c in SCHEMAS[name].split(", ")]
                shaped = frame.select(*columns).sortWithinPartitions(LOOKED_UP_BY[name])
                group = f"g-{secrets.token_hex(8)}"
                path = ParquetTables(self.folder).group_path(name, group)
                shaped.write.mode("errorifexists").parquet(str(path))
                written = self.spark.read.schema(SCHEMAS[name]).parquet(str(path))
                if name == "categories":
                    rows = written.count()
                else:
                    got = written.agg(f.count(f.lit(1)), f.max("seq")).collect()[0]
                    rows, top = int(got[0]), got[1]
                    if top is not None:
                        manifest["next_seq"][name] = max(manifest["next_seq"][name], int(top) + 1)
                manifest["tables"][name][group] = int(rows)
            _stage("prepared")
            self._commit(manifest)

    def _commit(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically: every reader sees the old version or the new one."""
        path = self.folder / MANIFEST
        temp = self.folder / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
        with open(temp, "w", encoding="utf-8") as out:
            json.dump(manifest, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        with contextlib.suppress(OSError):
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _new_group(self, name: str, frame: Any) -> str:
        group = f"g-{secrets.token_hex(8)}"
        path = ParquetTables(self.folder).group_path(name, group)
        written = frame.coalesce(1).sortWithinPartitions(LOOKED_UP_BY[name])
        written.write.mode("errorifexists").parquet(str(path))
        return group

    def _append_rows(self, name: str, rows: list[tuple[Any, ...]]) -> tuple[str, int]:
        frame = self.spark.createDataFrame(rows, SCHEMAS[name])
        return self._new_group(name, frame), len(rows)

    def _delete_where(self, manifest: dict[str, Any], name: str, condition: Any) -> None:
        """Drop the rows ``condition`` selects from ``name``: each group holding one is
        rewritten without them (or dropped, when nothing is left); other groups are kept."""
        from pyspark.sql import functions as f

        groups: dict[str, int] = manifest["tables"][name]
        if not groups:
            return
        condition = f.coalesce(condition, f.lit(False))  # a NULL column matches nothing
        frame = self.source.frame(self.spark, name, manifest)
        hits = self._collect(
            frame.where(condition)
            .groupBy(f.input_file_name().alias("file"))
            .agg(f.count(f.lit(1)).alias("n"))
        )
        per_group: dict[str, int] = defaultdict(int)
        for row in hits:
            per_group[unquote(row.file.rstrip("/")).split("/")[-2]] += int(row.n)
        for group, gone in per_group.items():
            if group not in groups:  # pragma: no cover - a file outside the manifest
                continue
            left = groups.pop(group) - gone
            if left > 0:
                old = ParquetTables(self.folder).group_path(name, group)
                kept = self.spark.read.schema(SCHEMAS[name]).parquet(str(old)).where(~condition)
                groups[self._new_group(name, kept)] = left

    def _write(self, old: dict[str, Any], changes: ChangeSet) -> dict[str, Any]:
        from pyspark.sql import functions as f

        manifest: dict[str, Any] = json.loads(json.dumps(old))  # a deep copy
        manifest["version"] = int(old["version"]) + 1
        tables = manifest["tables"]
        seqs = manifest["next_seq"]
        self._clean(old)

        puts = list({rec.id: rec for rec in changes.put_records}.values())
        put_ids = [rec.id for rec in changes.put_records]
        # A put of an existing id keeps its place: the row goes and comes back with its seq.
        existing: dict[str, int] = {}
        current = self._current()
        local = current.local("records") if current.number == old["version"] else None
        if put_ids and local is not None:
            asked = set(put_ids)
            existing = {row.id: int(row.seq) for row in local if row.id in asked}
        elif put_ids and tables["records"]:
            frame = self.source.frame(self.spark, "records", old)
            for i in range(0, len(put_ids), CHUNK):
                chunk = put_ids[i : i + CHUNK]
                for row in self._collect(frame.where(f.col("id").isin(chunk)).select("id", "seq")):
                    existing[row.id] = int(row.seq)
        gone_ids = list(dict.fromkeys([*changes.delete_records, *existing]))
        if gone_ids:
            self._delete_where(manifest, "records", f.col("id").isin(gone_ids))
            self._delete_where(manifest, "categories", f.col("record_id").isin(gone_ids))
        deleted = set(changes.delete_records)
        subjects = list(dict.fromkeys(changes.delete_subject_events))
        records = list(dict.fromkeys(changes.delete_record_events))
        if subjects or records:
            condition = f.lit(False)
            if subjects:
                condition = condition | f.col("subject").isin(subjects)
            if records:
                condition = condition | f.col("record").isin(records)
            self._delete_where(manifest, "events", condition)
        if puts:
            rows = []
            for rec in puts:
                seq = existing.get(rec.id) if rec.id not in deleted else None
                if seq is None:
                    seq = seqs["records"]
                    seqs["records"] += 1
                rows.append(
                    (
                        seq,
                        rec.id,
                        rec.subject,
                        rec.source,
                        instant_to_us(rec.collected_at),
                        encode_data(rec.data),
                    )
                )
            group, n = self._append_rows("records", rows)
            tables["records"][group] = n
            cats = [
                (rec.id, cat, rec.subject, norm)
                for rec in puts
                for cat, norm in category_norms(rec)
            ]
            if cats:
                group, n = self._append_rows("categories", cats)
                tables["categories"][group] = n
        self._append(
            manifest,
            "events",
            [
                (e.id, e.subject, e.kind, instant_to_us(e.at), e.record, e.purpose)
                for e in changes.add_events
            ],
        )
        self._append(
            manifest,
            "suppression",
            [
                (s.email, normalise_email(s.email), instant_to_us(s.at), s.reason)
                for s in changes.add_suppression
            ],
        )
        self._append(
            manifest,
            "audit",
            [
                (
                    instant_to_us(a.at),
                    a.action,
                    a.subject,
                    a.actor,
                    encode_data(audit_detail(a), "detail"),
                )
                for a in changes.audit
            ],
        )
        _stage("prepared")
        return manifest

    def _append(self, manifest: dict[str, Any], name: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        first = manifest["next_seq"][name]
        manifest["next_seq"][name] = first + len(rows)
        group, n = self._append_rows(name, [(first + i, *row) for i, row in enumerate(rows)])
        manifest["tables"][name][group] = n

    def _clean(self, current: dict[str, Any]) -> None:
        """Under the write lock, before writing: delete every group the current manifest does
        not list: those the last commit dropped (a reader still on the version before it had
        until now to finish) and any left by a write killed before its commit."""
        for name in SCHEMAS:
            folder = self.folder / "tables" / name
            if not folder.is_dir():
                continue
            listed = set(current["tables"][name])
            for entry in folder.iterdir():
                if entry.name not in listed:
                    shutil.rmtree(entry, ignore_errors=True)

    def audit_key(self) -> bytes:
        """The key naming subjects in the audit log (:class:`fairproc.storage.AuditKeys`):
        ``.fairproc-audit-key`` in the folder, mode 0600, made on first use."""
        path = self.folder / AUDIT_KEY
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with open(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32))
                out.flush()
                os.fsync(out.fileno())
        for _ in range(100):
            text = path.read_text(encoding="ascii").strip()
            if len(text) == 64:
                return bytes.fromhex(text)
            threading.Event().wait(0.01)  # another process is writing it
        raise StoreError(f"spark store: the audit key {path} is damaged")

    def close(self) -> None:
        with self._lock:
            if self._version is not None:
                with contextlib.suppress(Exception):  # a stopped session: nothing to drop
                    self._version.drop(self.spark)
                self._version = None

    def drop_tables(self) -> None:
        """Remove this store's folder and everything in it."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def open_url(url: str, *, create: bool = True) -> SparkStore:
    """What ``open_store`` calls for ``spark+parquet:///folder`` (``?prefix=``, ``?master=``)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "spark+parquet":
        raise StoreError(
            f"unsupported Spark store URL {url!r}; expected spark+parquet:///absolute/folder "
            "or spark+parquet://relative/folder"
        )
    path, _, query = rest.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"prefix", "master"})
    if unknown:
        raise StoreError(f"{url!r}: unknown parameter {unknown[0]!r} (expected prefix, master)")
    if not path:
        raise StoreError(f"{url!r} names no folder; expected spark+parquet:///absolute/folder")
    folder = Path(unquote(path))
    prefix = params.get("prefix")
    if prefix is not None:
        if not _PREFIX.match(prefix):
            raise StoreError(
                f"store prefix {prefix!r} must be a letter or _ then up to 30 letters, digits or _"
            )
        folder = folder / prefix
    return SparkStore(folder, create=create, master=params.get("master"))

"""A store in one folder of CSV files: ``open_store("csv:///path/to/folder")``.

Files, each with a fixed header (a wrong header or a malformed row is an error naming the file
and line):

* ``records.csv``: ``id,subject,source,collected_at,data`` (data: JSON, see
  :func:`fairproc.storage.encode_data`);
* ``events.csv``: ``subject,kind,at,record,purpose,id``;
* ``suppression.csv``: ``email,at,reason``;
* ``audit.csv``: ``at,action,subject,actor,detail``.

Instants are ISO 8601 in UTC (``2026-11-21T10:00:00Z``). An empty optional cell is a missing
value. A cell that a spreadsheet would read as a formula (starting ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) is written with a leading ``'``, as is one that starts with ``'``; the
reader removes it again, so values round-trip exactly.

Writes: a change set is written to temporary files beside the ones it changes (flushed and
fsynced), then committed by writing a journal naming the replacements, then each file is
replaced atomically (``os.replace``) and the journal removed. A write killed before the journal
is written leaves every old file whole; one killed after it is completed by the next reader or
writer. Writers take an exclusive ``fcntl.flock`` on ``.fairproc-write.lock`` for the whole
read-modify-write, so two processes writing the same folder lose no row; readers take a shared
lock on ``.fairproc-commit.lock`` only while opening files, so they never see half a commit
and never wait for a writer's copying. Every write rewrites the files it touches, so the cost
of a write grows with the folder: this store suits small and medium data sets, and data that
people want to read and diff.

Reads stream row by row, so memory does not grow with the files; a lookup by subject or id
reads the file through. A UTF-8 byte order mark is accepted; a byte that is not UTF-8 is an
error naming its line; an empty (0-byte) file is not a store file; a record id on two rows is
refused (naming both lines) by every pass over ``records.csv``, writes included.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import marshal
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from fairproc.model import Event, Policy, Record, SuppressionEntry, normalise_email
from fairproc.storage import (
    AuditEntry,
    BaseStore,
    ChangeSet,
    Decide,
    StoreError,
    audit_detail,
    audit_from_stored,
    build_history,
    check_changes,
    decode_data,
    encode_data,
    format_instant,
    normalised,
    parse_stored_instant,
)
from fairproc.world import SubjectHistory, derived_entries, givers_in, index_givers

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["HEADERS", "CsvStore", "open_url"]

HEADERS: dict[str, tuple[str, ...]] = {
    "records": ("id", "subject", "source", "collected_at", "data"),
    "events": ("subject", "kind", "at", "record", "purpose", "id"),
    "suppression": ("email", "at", "reason"),
    "audit": ("at", "action", "subject", "actor", "detail"),
}
JOURNAL = ".fairproc-journal.json"
REVISION = ".fairproc-revision"
WRITE_LOCK = ".fairproc-write.lock"
COMMIT_LOCK = ".fairproc-commit.lock"
TEMP_MARK = ".tmp-"
SPOOL_MARK = ".fairproc-spool-"
AUDIT_KEY = ".fairproc-audit-key"
SPLIT_BLOCK = 1000  # rows a partition file takes at a time while a sweep splits the store
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")
_BATCH = 500

# Test hook: called with the name of each stage of a commit ("prepared", "journaled",
# "replaced"), so a test can kill the process there.
crash_point: Callable[[str], None] | None = None

csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))


def escape(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula; :func:`unescape` gives it back."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def unescape(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def _stage(name: str) -> None:
    if crash_point is not None:
        crash_point(name)


def _first_empty(**cells: str) -> str | None:
    return next((name for name, value in cells.items() if not value), None)


def _write_block(handle: IO[bytes], rows: list[tuple[int, list[str]]]) -> None:
    data = marshal.dumps(rows)
    handle.write(len(data).to_bytes(8, "little"))
    handle.write(data)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _SeenIds:
    """The record ids one pass over records.csv has met, in a Bloom filter of about 3% of the
    file's size (a set of the ids would cost more than the rows it streams), with the few ids
    it may have met before: those are checked exactly, reading the file again, after the pass.
    """

    def __init__(self, file_bytes: int):
        self.size = max(1 << 16, file_bytes // 4)  # bits: 10 or more per row of 40 bytes
        self.bits = bytearray(self.size // 8 + 1)
        self.maybe: set[str] = set()

    def add(self, record_id: str) -> None:
        h = hash(record_id) & 0xFFFFFFFFFFFFFFFF
        step = (h >> 32) | 1
        bits, size, new = self.bits, self.size, False
        for i in range(3):
            at = (h + i * step) % size
            mask = 1 << (at & 7)
            if not bits[at >> 3] & mask:
                bits[at >> 3] |= mask
                new = True
        if not new:
            self.maybe.add(record_id)


class CsvStore(BaseStore):
    """A store in a folder of CSV files (see the module's docstring)."""

    partition_bytes = 4 * 1024 * 1024  # history_batches: the most it reads into memory at once
    write_batch = 100_000
    """Items per batch of a sweep's apply (:func:`fairproc.sweep.apply_sweep`): every write
    reads and rewrites the files, so a batch costs about the same whatever its size; small
    batches would cost a pass over the store each (50,000 records in batches of 1,000: 50
    rewrites)."""

    def __init__(self, folder: str | os.PathLike[str]):
        if fcntl is None:  # pragma: no cover
            raise StoreError(
                "the CSV store needs POSIX file locks (fcntl), which this system lacks"
            )
        self.folder = Path(folder)
        self._deciding = threading.local()  # .active: this thread is inside apply_decided
        if self.folder.exists() and not self.folder.is_dir():
            raise StoreError(f"csv store: {self.folder} is a file, not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"csv store: cannot create folder {self.folder}: {error}") from None
        for leftover in self.folder.glob(f"{SPOOL_MARK}*"):
            # A spool a killed sweep left with a name (only where O_TMPFILE is missing): its
            # rows are personal data, and nothing else would ever remove them.
            leftover.unlink(missing_ok=True)
        with self._snapshot(tuple(HEADERS)) as handles:
            for name, handle in handles.items():
                if handle is not None:
                    self._header(name, csv.reader(handle), handle)

    def audit_key(self) -> bytes:
        """The key naming subjects in the audit log (:class:`fairproc.storage.AuditKeys`):
        ``.fairproc-audit-key`` in the folder, mode 0600, made on first use."""
        return self.key_file(AUDIT_KEY)

    def key_file(self, name: str) -> bytes:
        """The 32-byte key in the file ``name`` of the folder (mode 0600), made on first use
        (two processes making it at once: the first one's is kept)."""
        path = self.folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as error:
            raise StoreError(f"csv store: cannot make its key {path}: {error}") from None
        else:
            # Written whole before anyone can read it: another process waits for the lock.
            with open(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
                out.flush()
                os.fsync(out.fileno())
        for _ in range(100):
            try:
                text = path.read_text("ascii").strip()
            except OSError as error:
                raise StoreError(f"csv store: cannot read its key {path}: {error}") from None
            if len(text) == 64:
                return bytes.fromhex(text)
            time.sleep(0.01)  # another process is writing it this moment
        raise StoreError(f"csv store: its key {path} is damaged (expected 64 hex digits)")

    # -- files and locks --

    prefix = ""
    """Put before the names of fairproc's own files (``<prefix>records.csv``): a mapped store
    (:mod:`fairproc.adapters.mapped_csv`) keeps them beside the host's files."""

    def path(self, name: str) -> Path:
        return self.folder / f"{self.prefix}{name}.csv"

    @contextmanager
    def _lock(self, name: str, mode: int) -> Iterator[None]:
        assert fcntl is not None
        try:
            fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(
                f"csv store: cannot open lock file {self.folder / name}: {error}"
            ) from None
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _recover(self) -> None:
        """Finish a commit whose journal was written (call with the commit lock held)."""
        journal = self.folder / JOURNAL
        if not journal.exists():
            return
        try:
            moves = json.loads(journal.read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise StoreError(
                f"csv store: cannot read the commit journal {journal}: {error}"
            ) from None
        for temp, target in moves:
            if (self.folder / temp).exists():
                os.replace(self.folder / temp, self.folder / target)
        _fsync_dir(self.folder)
        journal.unlink()
        _fsync_dir(self.folder)

    @contextmanager
    def _snapshot(self, names: Sequence[str]) -> Iterator[dict[str, IO[str] | None]]:
        """Open the named files as one consistent snapshot (a file once opened never changes:
        writers replace files, never modify them)."""
        assert fcntl is not None
        handles: dict[str, IO[str] | None] = {}
        try:
            while True:
                with self._lock(COMMIT_LOCK, fcntl.LOCK_SH):
                    if not (self.folder / JOURNAL).exists():
                        for name in names:
                            try:
                                # Closed in the finally below, when the caller is done.
                                handles[name] = open(  # noqa: SIM115
                                    self.path(name), encoding="utf-8-sig", newline=""
                                )
                            except FileNotFoundError:
                                handles[name] = None
                        break
                with self._lock(COMMIT_LOCK, fcntl.LOCK_EX):
                    self._recover()
            yield handles
        finally:
            for handle in handles.values():
                if handle is not None:
                    handle.close()

    # -- reading rows --

    def _header(self, name: str, reader: Any, handle: IO[str] | None = None) -> None:
        path = self.path(name)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as error:
            raise self._undecodable(name, handle, error) from None
        except csv.Error as error:
            raise StoreError(f"{path}:1: cannot read the header: {error}") from None
        expected = HEADERS[name]
        if header is None:
            # fairproc never writes an empty file (a missing file is an empty table): this one
            # was truncated or made by hand, and may be the wrong folder altogether.
            raise StoreError(
                f"{path}: is empty (0 bytes), which is not a fairproc CSV store file: expected "
                f"the header line {','.join(expected)!r} (remove the file if the table is empty)"
            )
        if tuple(header) != expected:
            raise StoreError(
                f"{path}:1: wrong header {','.join(header)!r}; expected {','.join(expected)!r}"
            )

    def _rows(self, name: str, handle: IO[str] | None) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) for each row after the header, cells unescaped."""
        if handle is None:
            return
        path = self.path(name)
        reader = csv.reader(handle)
        self._header(name, reader, handle)
        width = len(HEADERS[name])
        line = 1
        # A duplicated record id would let one subject's erasure delete another's record, so
        # every pass over the file refuses it; the ids are remembered compactly (_SeenIds).
        ids = _SeenIds(os.fstat(handle.fileno()).st_size) if name == "records" else None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                if ids is not None and ids.maybe:
                    self._check_unique(handle, ids.maybe)
                return
            except UnicodeDecodeError as error:
                raise self._undecodable(name, handle, error) from None
            except csv.Error as error:
                raise StoreError(f"{path}:{reader.line_num}: malformed row: {error}") from None
            line = reader.line_num
            if not row:
                continue
            if len(row) != width:
                raise StoreError(
                    f"{path}:{line}: expected {width} fields ({','.join(HEADERS[name])}), "
                    f"got {len(row)}"
                )
            cells = [unescape(cell) for cell in row]
            if ids is not None:
                ids.add(cells[0])
            yield line, cells

    def _check_unique(self, handle: IO[str], maybe: set[str]) -> None:
        """Read records.csv again for the ids ``maybe`` met twice: the first one that was
        is refused, naming both its lines."""
        handle.seek(0)
        reader = csv.reader(handle)
        next(reader, None)
        first: dict[str, int] = {}
        for row in reader:
            record_id = unescape(row[0]) if row else None
            if record_id is None or record_id not in maybe:
                continue
            if record_id in first:
                raise StoreError(
                    f"{self.path('records')}:{reader.line_num}: record id {record_id!r} is "
                    f"also on line {first[record_id]}; a record id must be unique (fix or "
                    "remove one of the two rows)"
                )
            first[record_id] = reader.line_num

    def _undecodable(
        self, name: str, handle: IO[str] | None, error: UnicodeDecodeError
    ) -> StoreError:
        """The error for bytes that are not UTF-8, naming their line: the text layer decodes
        ahead of the CSV reader, so the line is found by reading the file's bytes again."""
        line = 0
        if handle is not None:
            raw = handle.buffer  # type: ignore[attr-defined]
            raw.seek(0)
            for number, data in enumerate(raw, start=1):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    line = number
                    break
        where = f"{self.path(name)}:{line}" if line else str(self.path(name))
        return StoreError(f"{where}: not UTF-8 text ({error.reason})")

    def _parse(self, name: str, line: int, cells: list[str]) -> Any:
        field = ""
        try:
            if name == "records":
                field = "id"
                rid, subject, source, collected, data = cells
                field = _first_empty(id=rid, subject=subject, source=source) or "collected_at"
                if field != "collected_at":
                    raise ValueError("is empty")
                at = parse_stored_instant(collected)
                field = "data"
                return Record(rid, subject, source, at, decode_data(data))
            if name == "events":
                subject, kind, when, record, purpose, eid = cells
                field = _first_empty(subject=subject, kind=kind) or "at"
                if field != "at":
                    raise ValueError("is empty")
                return Event(
                    subject,
                    kind,
                    parse_stored_instant(when),
                    record or None,
                    purpose or None,
                    eid or None,
                )
            if name == "suppression":
                email, when, reason = cells
                field = "at"
                return SuppressionEntry(email, parse_stored_instant(when), reason)
            when, action, subject, actor, detail = cells
            field = "at"
            at = parse_stored_instant(when)
            field = "detail"
            return audit_from_stored(
                at, action, subject or None, actor or None, decode_data(detail)
            )
        except ValueError as error:
            raise StoreError(f"{self.path(name)}:{line}: {field}: {error}") from None

    def _read(self, name: str) -> Iterator[Any]:
        with self._snapshot((name,)) as handles:
            for line, cells in self._rows(name, handles[name]):
                yield self._parse(name, line, cells)

    # -- reads --

    @property
    def revision(self) -> str:
        assert fcntl is not None
        with self._lock(COMMIT_LOCK, fcntl.LOCK_SH):
            try:
                return (self.folder / REVISION).read_text("utf-8").strip()
            except FileNotFoundError:
                return "0"

    def get_record(self, record_id: str) -> Record | None:
        found: Record | None = None
        with self._snapshot(("records",)) as handles:
            # Read through, not stopping at the first match: a duplicated id is refused.
            for line, cells in self._rows("records", handles["records"]):
                if cells[0] == record_id:
                    found = self._parse("records", line, cells)
        return found

    def subject_records(self, subject: str) -> Sequence[Record]:
        return tuple(r for r in self._read("records") if r.subject == subject)

    def subject_events(self, subject: str) -> Sequence[Event]:
        return tuple(e for e in self._read("events") if e.subject == subject)

    def suppression_entries(self, emails: Iterable[str]) -> Sequence[SuppressionEntry]:
        wanted = [normalise_email(e) for e in emails]
        found = self._entries_for(wanted)
        return [entry for norm in wanted for entry in found.get(norm, ())]

    def _entries_for(self, norms: Iterable[str]) -> dict[str, list[SuppressionEntry]]:
        wanted = set(norms)
        found: dict[str, list[SuppressionEntry]] = defaultdict(list)
        if wanted:
            for entry in self._read("suppression"):
                norm = normalise_email(entry.email)
                if norm in wanted:
                    found[norm].append(entry)
        return found

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`): one pass over the
        records file."""
        return givers_in(index_givers(self._read("records"), category), emails)

    def iter_records(self) -> Iterator[Record]:
        return self._read("records")

    def audit_entries(self, subject: str | None = None) -> Iterator[AuditEntry]:
        return (e for e in self._read("audit") if subject is None or e.subject == subject)

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Several subjects' histories from one pass over each file."""
        wanted = list(dict.fromkeys(subjects))
        keep = set(wanted)
        records: dict[str, list[Record]] = defaultdict(list)
        events: dict[str, list[Event]] = defaultdict(list)
        with self._snapshot(("records", "events")) as handles:
            for line, cells in self._rows("records", handles["records"]):
                if cells[1] in keep:
                    records[cells[1]].append(self._parse("records", line, cells))
            for line, cells in self._rows("events", handles["events"]):
                if cells[0] in keep:
                    events[cells[0]].append(self._parse("events", line, cells))
        found: dict[str, SubjectHistory] = {}
        lookup = self._lookup(policy, found, events)
        found.update((s, build_history(policy, s, records[s], events[s], lookup)) for s in wanted)
        return found

    def _lookup(
        self,
        policy: Policy,
        found: Mapping[str, SubjectHistory],
        events: Mapping[str, Sequence[Event]],
    ) -> Callable[[Sequence[str]], Sequence[SuppressionEntry]]:
        """The suppression lookup of the histories ``found`` (filled in as they are built):
        read when a fact first needs the list (a sweep never does), in one pass over the
        suppression file for every address of these subjects."""
        entries: dict[str, list[SuppressionEntry]] | None = None

        def lookup(emails: Sequence[str]) -> Sequence[SuppressionEntry]:
            nonlocal entries
            if entries is None:
                every = [m for h in found.values() for m in h.emails]
                entries = self._entries_for(every)
                for entry in derived_entries(self, policy, every, events.get):
                    entries[normalise_email(entry.email)].append(entry)
            return [x for m in emails for x in entries.get(normalise_email(m), ())]

        return lookup

    def history_batches(
        self, policy: Policy, size: int = 20
    ) -> Iterator[dict[str, SubjectHistory]]:
        """The history of every subject with records, each exactly once, ``size`` subjects at
        a time: how sweeps read the store. Time is linear in the files and memory bounded by
        :attr:`partition_bytes`, not by the files (:meth:`histories` reads the files through
        for every batch).

        Files of up to ``partition_bytes`` (records and events together) are read once. Larger
        ones are first split by a hash of the subject into partitions of about that size, in two
        spool files (:meth:`_spool`: unnamed, private, inside the store's folder, so a sweep
        killed part way leaves no personal data anywhere, and none outside the folder an
        erasure works on), then read partition by partition; each partition's suppression
        entries come from one pass over ``suppression.csv``. All from one snapshot of the
        files."""
        with self._snapshot(("records", "events", "suppression")) as handles:
            files = (handles["records"], handles["events"])
            total = sum(os.fstat(f.fileno()).st_size for f in files if f is not None)
            parts = max(1, -(-total // self.partition_bytes))
            records = self._rows("records", handles["records"])
            events = self._rows("events", handles["events"])
            if parts == 1:
                yield from self._partition(policy, records, events, handles["suppression"], size)
                return
            with self._spool() as record_spool, self._spool() as event_spool:
                record_blocks = self._split(record_spool, parts, records, 1)
                event_blocks = self._split(event_spool, parts, events, 0)
                for part in range(parts):
                    yield from self._partition(
                        policy,
                        self._split_rows(record_spool, record_blocks[part]),
                        self._split_rows(event_spool, event_blocks[part]),
                        handles["suppression"],
                        size,
                    )

    def _spool(self) -> IO[bytes]:
        """A spool file with no name, in the store's folder, mode 0600: gone when closed or
        when the process dies (``O_TMPFILE``; where the system lacks it, ``tempfile`` unlinks
        the file as it makes it, and a name left by a kill in between goes at the next open)."""
        try:
            return tempfile.TemporaryFile(prefix=SPOOL_MARK, dir=self.folder)
        except OSError as error:
            raise StoreError(
                f"csv store: cannot make a spool file in {self.folder}: {error}"
            ) from None

    @staticmethod
    def _split(
        spool: IO[bytes], parts: int, rows: Iterable[tuple[int, list[str]]], column: int
    ) -> list[list[int]]:
        """Rows (with their line numbers) written to ``spool`` in marshalled blocks, each
        block of one partition (by a hash of the subject in ``column``): where each partition's
        blocks start. The rows are parsed already, and marshal writes and reads them back
        several times faster than CSV would (the file is private and short-lived)."""
        starts: list[list[int]] = [[] for _ in range(parts)]
        blocks: list[list[tuple[int, list[str]]]] = [[] for _ in range(parts)]
        for row in rows:
            i = hash(row[1][column]) % parts
            block = blocks[i]
            block.append(row)
            if len(block) >= SPLIT_BLOCK:
                starts[i].append(spool.tell())
                _write_block(spool, block)
                blocks[i] = []
        for i, block in enumerate(blocks):
            if block:
                starts[i].append(spool.tell())
                _write_block(spool, block)
        spool.flush()
        return starts

    @staticmethod
    def _split_rows(spool: IO[bytes], starts: Sequence[int]) -> Iterator[tuple[int, list[str]]]:
        # Length-prefixed: marshal.load on a file reads it a few bytes at a time.
        for start in starts:
            spool.seek(start)
            size = int.from_bytes(spool.read(8), "little")
            block: list[tuple[int, list[str]]] = marshal.loads(spool.read(size))
            yield from block

    def _partition(
        self,
        policy: Policy,
        record_rows: Iterable[tuple[int, list[str]]],
        event_rows: Iterable[tuple[int, list[str]]],
        suppression: IO[str] | None,
        size: int,
    ) -> Iterator[dict[str, SubjectHistory]]:
        """The histories of the subjects with records among these rows, ``size`` at a time."""
        records: dict[str, list[Record]] = defaultdict(list)
        for line, cells in record_rows:
            records[cells[1]].append(self._parse("records", line, cells))
        events: dict[str, list[Event]] = defaultdict(list)
        for line, cells in event_rows:
            if cells[0] in records:
                events[cells[0]].append(self._parse("events", line, cells))
        email = policy.info.email_category
        emails = {
            normalise_email(value)
            for recs in records.values()
            for r in recs
            if email and isinstance(value := r.data.get(email), str) and value.strip()
        }
        entries: dict[str, list[SuppressionEntry]] = defaultdict(list)
        if emails and suppression is not None:
            suppression.seek(0)
            for line, cells in self._rows("suppression", suppression):
                norm = normalise_email(cells[0])
                if norm in emails:
                    entries[norm].append(self._parse("suppression", line, cells))

        def lookup(wanted: Sequence[str]) -> Sequence[SuppressionEntry]:
            stored = [x for m in wanted for x in entries.get(normalise_email(m), ())]
            return [*stored, *derived_entries(self, policy, wanted, events.get)]

        # Each history asks ``lookup`` only when a fact needs the list: a sweep never does.
        subjects = list(records)
        for start in range(0, len(subjects), size):
            yield {
                s: build_history(policy, s, records[s], events.get(s, ()), lookup)
                for s in subjects[start : start + size]
            }

    # -- writes --

    def apply_decided(self, decide: Decide) -> ChangeSet:
        """``decide`` and its changes under the folder's write lock (see
        :class:`fairproc.storage.DecidedWrites`): no other writer, in this process or another,
        commits between ``decide``'s reads and this write."""
        assert fcntl is not None
        with self._lock(WRITE_LOCK, fcntl.LOCK_EX):
            self._deciding.active = True
            try:
                changes = decide(self)
            finally:
                self._deciding.active = False
            check_changes(changes)
            if changes:
                self._write_locked(normalised(changes))
        return changes

    def apply(self, changes: ChangeSet) -> None:
        check_changes(changes)
        if not changes:
            return
        if getattr(self._deciding, "active", False):
            # The write lock is this thread's already: taking it again would wait forever.
            raise StoreError(f"csv store {self.folder}: cannot write while deciding a write")
        changes = normalised(changes)
        assert fcntl is not None
        with self._lock(WRITE_LOCK, fcntl.LOCK_EX):
            self._write_locked(changes)

    def _write_locked(self, changes: ChangeSet) -> None:
        """Write ``changes`` (checked and normalised), the write lock held."""
        assert fcntl is not None
        with self._lock(COMMIT_LOCK, fcntl.LOCK_EX):
            self._recover()
        for leftover in self.folder.glob(f"*{TEMP_MARK}*"):
            leftover.unlink()  # from a writer killed before its commit
        token = secrets.token_hex(4)
        moves: list[tuple[str, str]] = []
        try:
            self._prepare(changes, token, moves)
            moves.append(self._next_revision(token))
            _stage("prepared")
        except BaseException:
            for temp, _ in moves:
                (self.folder / temp).unlink(missing_ok=True)
            raise
        # From here the journal, once written, decides: a failure part way through the
        # replacements is completed by the next reader or writer, never undone.
        self._commit(moves, token)

    def _prepare(self, changes: ChangeSet, token: str, moves: list[tuple[str, str]]) -> None:
        """Write the replacement of every file ``changes`` touches, adding (temp, target) to
        ``moves`` as each is made (a failure removes the ones made)."""
        if changes.put_records or changes.delete_records:
            moves.append(self._rewrite_records(changes, token))
        self._prepare_own(changes, [self._event_row(e) for e in changes.add_events], token, moves)

    def _prepare_own(
        self,
        changes: ChangeSet,
        events: list[list[str]],
        token: str,
        moves: list[tuple[str, str]],
    ) -> None:
        """The events file (without the forgotten events, with ``events`` added), the
        suppression list and the audit log, as ``changes`` says."""
        if changes.delete_subject_events or changes.delete_record_events:
            moves.append(self._rewrite_events(changes, events, token))
            events = []
        appended = (
            ("events", events),
            ("suppression", [self._entry_row(s) for s in changes.add_suppression]),
            ("audit", [self._audit_row(a) for a in changes.audit]),
        )
        for name, rows in appended:
            if rows:
                moves.append(self._append(name, rows, token))

    def _temp(self, target: str, token: str) -> Path:
        return self.folder / f"{target}{TEMP_MARK}{os.getpid()}-{token}"

    @contextmanager
    def _writing(self, target: str, token: str) -> Iterator[tuple[IO[str], Any]]:
        temp = self._temp(target, token)
        try:
            with open(temp, "w", encoding="utf-8", newline="") as out:
                # CRLF (RFC 4180): a cell holding either CR or LF is then quoted.
                yield out, csv.writer(out, lineterminator="\r\n")
                out.flush()
                os.fsync(out.fileno())
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise StoreError(f"csv store: cannot write {temp}: {error}") from None

    @staticmethod
    def _row(cells: Iterable[str | None]) -> list[str]:
        return [escape(c or "") for c in cells]

    def _record_row(self, r: Record) -> list[str]:
        return self._row(
            [r.id, r.subject, r.source, format_instant(r.collected_at), encode_data(r.data)]
        )

    def _event_row(self, e: Event) -> list[str]:
        return self._row([e.subject, e.kind, format_instant(e.at), e.record, e.purpose, e.id])

    def _entry_row(self, s: SuppressionEntry) -> list[str]:
        return self._row([s.email, format_instant(s.at), s.reason])

    def _audit_row(self, a: AuditEntry) -> list[str]:
        detail = encode_data(audit_detail(a), "detail")
        return self._row([format_instant(a.at), a.action, a.subject, a.actor, detail])

    def _rewrite_records(self, changes: ChangeSet, token: str) -> tuple[str, str]:
        target = self.path("records").name
        puts = {r.id: r for r in changes.put_records}
        deleted = set(changes.delete_records)
        written: set[str] = set()
        with self._writing(target, token) as (_, writer):
            writer.writerow(HEADERS["records"])
            with self._snapshot(("records",)) as handles:
                for line, cells in self._rows("records", handles["records"]):
                    rid = cells[0]
                    if rid in deleted:
                        continue
                    if rid in puts:
                        writer.writerow(self._record_row(puts[rid]))
                        written.add(rid)
                    else:
                        self._parse("records", line, cells)  # refuse to copy a corrupt row
                        writer.writerow(self._row(cells))
            for record in changes.put_records:
                if record.id not in written:
                    writer.writerow(self._record_row(record))
        return self._temp(target, token).name, target

    def _rewrite_events(
        self, changes: ChangeSet, added: list[list[str]], token: str
    ) -> tuple[str, str]:
        """events.csv without the forgotten subjects' and records' events, plus ``added``."""
        target = self.path("events").name
        subjects = set(changes.delete_subject_events)
        records = set(changes.delete_record_events)
        with self._writing(target, token) as (_, writer):
            writer.writerow(HEADERS["events"])
            with self._snapshot(("events",)) as handles:
                if handles["events"] is not None:
                    for line, cells in self._rows("events", handles["events"]):
                        event = self._parse("events", line, cells)
                        if event.subject in subjects or (
                            event.record is not None and event.record in records
                        ):
                            continue
                        writer.writerow(self._row(cells))
            writer.writerows(added)
        return self._temp(target, token).name, target

    def _append(self, name: str, rows: list[list[str]], token: str) -> tuple[str, str]:
        target = self.path(name).name
        with self._writing(target, token) as (out, writer):
            with self._snapshot((name,)) as handles:
                handle = handles[name]
                if handle is None:
                    writer.writerow(HEADERS[name])
                else:
                    self._header(name, csv.reader(handle), handle)
                    handle.seek(0)
                    shutil.copyfileobj(handle, out)
                    out.flush()
                    if out.tell() and not self._ends_with_newline(self.path(name)):
                        out.write("\r\n")
                    elif not out.tell():
                        writer.writerow(HEADERS[name])
            writer.writerows(rows)
        return self._temp(target, token).name, target

    @staticmethod
    def _ends_with_newline(path: Path) -> bool:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return True
            f.seek(-1, os.SEEK_END)
            return f.read(1) in (b"\n", b"\r")

    def _next_revision(self, token: str) -> tuple[str, str]:
        try:
            current = (self.folder / REVISION).read_text("utf-8").split()
            count = int(current[0]) if current else 0
        except (FileNotFoundError, ValueError):
            count = 0
        temp = self._temp(REVISION, token)
        with open(temp, "w", encoding="utf-8") as out:
            out.write(f"{count + 1} {secrets.token_hex(8)}\n")
            out.flush()
            os.fsync(out.fileno())
        return temp.name, REVISION

    def _commit(self, moves: list[tuple[str, str]], token: str) -> None:
        assert fcntl is not None
        journal = self.folder / JOURNAL
        pending = self._temp(JOURNAL, token)
        with open(pending, "w", encoding="utf-8") as out:
            json.dump(moves, out)
            out.flush()
            os.fsync(out.fileno())
        with self._lock(COMMIT_LOCK, fcntl.LOCK_EX):
            os.replace(pending, journal)  # the commit point
            _fsync_dir(self.folder)
            _stage("journaled")
            for i, (temp, target) in enumerate(moves):
                os.replace(self.folder / temp, self.folder / target)
                if i == 0:
                    _stage("replaced")
            _fsync_dir(self.folder)
            journal.unlink()
            _fsync_dir(self.folder)


def open_url(url: str, *, create: bool = True) -> CsvStore:
    """``csv:///absolute/folder``, ``csv://./relative`` or ``csv:relative``; with
    ``create=False`` the folder must exist already."""
    path = folder_of(url)
    if not create and not Path(path).is_dir():
        raise StoreError(f"csv store: no such folder {path} (expected an existing store)")
    return CsvStore(path)


def folder_of(url: str) -> str:
    """The folder a ``csv:`` URL names (see :func:`open_url`)."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise StoreError(f"csv store URL takes no query or fragment: {url!r}")
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise StoreError(f"csv store URL names no folder: {url!r}; expected csv:///path/to/folder")
    if sys.platform == "win32" and path.startswith("/") and path[2:3] == ":":  # pragma: no cover
        path = path[1:]
    return path

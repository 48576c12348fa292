"""A store over a folder of the host application's own CSV files, read and written through a
mapping (:mod:`fairproc.mapping`): ``open_mapped("csv:///folder", "mapping.toml")``.

Each mapped table ``X`` is the file ``X.csv`` in the folder (or the file its ``file`` key
names), with its own header row naming its columns as the mapping does; the subjects table
likewise. A file may hold columns the mapping does not read: they are kept as they are, and
left empty in the rows fairproc adds. The host's cells are written verbatim (no formula
escaping: they are the host's values, read by the host's own code).

Everything else fairproc keeps (its audit log, suppression list, the events it writes itself,
its revision and keys) lives in fairproc's own files in the same folder, laid out as
:mod:`fairproc.adapters.csv` lays them out, their names after the mapping's state prefix
(``fairproc_events.csv``, ``fairproc_audit.csv``, ...), made when first written.

A CSV cell is text. An empty cell is a missing value. A timestamp with an offset is aware; one
without is wall time in the zone the mapping declares for its table, and an error when it
declares none (never guessed). Category columns hold text unless the mapping's ``types`` says
``integer``, ``number`` or ``boolean`` (``true``/``false``). A value a column cannot give back
as it is goes to the table's ``extra`` column (fairproc's JSON), or is refused.

Writes: every file a change set touches, the host's and fairproc's, is written whole beside the
old one (flushed and fsynced) and all are replaced together under the folder's write lock,
through the native CSV store's journal (:meth:`fairproc.adapters.csv.CsvStore._commit`): a
failure before the journal leaves every file as it was. Every write reads and rewrites the
files it touches, and every read reads the mapped files through: a store for small and medium
folders. Row order: records in mapping order, then file order (a table's ``order`` column is
not read: a row fairproc adds goes last); events of a subject by instant.

Bad input is refused with the file, line and column named, and nothing changed: a missing
file, a header without a mapped column, a row of the wrong width, a timestamp that does not
parse, a record id on two rows, a subject id the subjects file does not hold. CSV has no
foreign keys: deleting a row checks nothing beyond the mapping.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import heapq
import math
import os
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from fairproc.errors import InputError, Problem
from fairproc.mapping import ID_SEPARATOR, EventTable, HostMapping, RecordTable, column_path
from fairproc.model import Event, Policy, Record
from fairproc.storage import (
    ChangeSet,
    StoreError,
    build_history,
    decode_data,
)
from fairproc.world import SubjectHistory, givers_in, index_givers

from .csv import HEADERS, WRITE_LOCK, CsvStore
from .mapped_sql import joined_words, leftover_data, masked_value, split_words, table_for

__all__ = ["MappedCsvStore"]

UTC = dt.UTC
MASK_KEY = ".fairproc-mask-key"


class _File:
    """One host CSV file read whole: its header and its rows (line, cells; "" for empty)."""

    def __init__(self, name: str, header: list[str], rows: list[tuple[int, list[str]]]):
        self.name = name
        self.header = header
        self.at = {column: i for i, column in enumerate(header)}
        self.rows = rows
        self.changed = False

    def cell(self, cells: Sequence[str], column: str) -> str | None:
        value = cells[self.at[column]]
        return value if value != "" else None

    def set(self, cells: list[str], column: str, value: str | None) -> None:
        cells[self.at[column]] = value or ""


class _Snapshot:
    """Every mapped file, read in one consistent snapshot, and the subjects file's ids."""

    def __init__(self, files: dict[str, _File], subject_keys: dict[str, str]):
        self.files = files
        self.subject_keys = subject_keys  # subjects file: row id -> subject id
        self.subject_rows = {key: sid for sid, key in subject_keys.items()}  # the other way


class MappedCsvStore(CsvStore):
    """A store over the host's own CSV files (see the module's docstring)."""

    def __init__(self, folder: str | os.PathLike[str], mapping: HostMapping):
        self.mapping = mapping
        self.prefix = mapping.prefix
        self._mask_key: bytes | None = None
        folder = Path(folder)
        if not folder.is_dir():
            raise StoreError(f"mapped csv store: no such folder {folder}")
        own = {f"{self.prefix}{name}.csv" for name in HEADERS}
        self.files: dict[str, str] = {}  # table -> file name
        tables: list[tuple[str, str, RecordTable | EventTable | None]] = [
            *(("record", n, t) for n, t in mapping.records.items()),
            *(("event", n, t) for n, t in mapping.events.items()),
        ]
        if mapping.subjects is not None:
            tables.append(("subjects", mapping.subjects.table, None))
        for section, name, spec in tables:
            file = (spec.file if spec is not None else None) or f"{name}.csv"
            where = (section, name) if spec is not None else ("subjects", "table")
            if file in own:
                raise self._located(f"file {file!r} is one of fairproc's own files", where)
            self.files[name] = file
        super().__init__(folder)
        self._read_all()  # every file there, every header holding its columns

    # -- where things are --

    def path(self, name: str) -> Path:
        """A host file by its file name (``X.csv``), or one of fairproc's own by its name."""
        if name.endswith(".csv"):
            return self.folder / name
        return super().path(name)

    def _located(self, message: str, path: Sequence[str | int]) -> StoreError:
        line = self.mapping.line_of(path)
        where = (self.mapping.file or "<mapping>") + (f":{line}" if line else "")
        return StoreError(f"{where}: {'.'.join(str(p) for p in path)}: {message}")

    def _at(self, file: _File, line: int, column: str | None, message: str) -> StoreError:
        where = f"{self.path(file.name)}:{line}"
        return StoreError(f"{where}: " + (f"column {column!r}: " if column else "") + message)

    def _specs(self) -> Iterator[RecordTable | EventTable]:
        yield from self.mapping.records.values()
        yield from self.mapping.events.values()

    # -- reading the host's files --

    def _load(self, table: str, handle: IO[str] | None) -> _File:
        name = self.files[table]
        path = self.path(name)
        spec: RecordTable | EventTable | None = self.mapping.records.get(table)
        spec = spec or self.mapping.events.get(table)
        if handle is None:
            where = (
                ("subjects", "table")
                if spec is None
                else ("record" if isinstance(spec, RecordTable) else "event", table)
            )
            raise self._located(f"no file {name!r} in {self.folder}", where)
        reader = csv.reader(handle)
        rows: list[tuple[int, list[str]]] = []
        try:
            header = next(reader, None)
            if header is None:
                raise StoreError(f"{path}: is empty (0 bytes): expected a header row")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise StoreError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields "
                        f"({','.join(header)}), got {len(row)}"
                    )
                rows.append((reader.line_num, row))
        except UnicodeDecodeError as error:
            raise self._undecodable(name, handle, error) from None
        except csv.Error as error:
            raise StoreError(f"{path}:{reader.line_num}: malformed row: {error}") from None
        if len(set(header)) != len(header):
            twice = next(c for c in header if header.count(c) > 1)
            raise StoreError(f"{path}:1: column {twice!r} is named twice in the header")
        wanted: dict[str, tuple[str, ...]] = {}
        if spec is not None:
            wanted = {c: column_path(spec, c) for c in spec.columns}
            section = "record" if isinstance(spec, RecordTable) else "event"
            wanted.update((c, (section, spec.name, "mask", c)) for c in spec.mask)
        elif self.mapping.subjects is not None:
            subjects = self.mapping.subjects
            wanted = {subjects.id: ("subjects", "id"), subjects.key: ("subjects", "key")}
        for column, key in wanted.items():
            if column not in header:
                line = self.mapping.line_of(key)
                mapped = (self.mapping.file or "<mapping>") + (f":{line}" if line else "")
                raise StoreError(
                    f"{path}:1: the header has no column {column!r} (header: "
                    f"{','.join(header)}), which {mapped} ({'.'.join(map(str, key))}) maps"
                )
        return _File(name, header, rows)

    def _read_all(self) -> _Snapshot:
        tables = list(self.files)
        names = [self.files[t] for t in tables]
        with self._snapshot(names) as handles:
            files = {t: self._load(t, handles[self.files[t]]) for t in tables}
        keys: dict[str, str] = {}
        subjects = self.mapping.subjects
        if subjects is not None:
            file = files[subjects.table]
            first: dict[str, int] = {}
            for line, cells in file.rows:
                sid, key = file.cell(cells, subjects.id), file.cell(cells, subjects.key)
                if sid is None or key is None:
                    column = subjects.id if sid is None else subjects.key
                    raise self._at(file, line, column, "is empty")
                if sid in first:
                    raise self._at(
                        file, line, subjects.id, f"id {sid!r} is also on line {first[sid]}"
                    )
                first[sid] = line
                keys[sid] = key
        for table in self.mapping.records:
            self._unique_ids(files[table], self.mapping.records[table])
        return _Snapshot(files, keys)

    def _unique_ids(self, file: _File, spec: RecordTable) -> None:
        first: dict[str, int] = {}
        for line, cells in file.rows:
            rid = self._row_id(file, spec, line, cells)
            if rid in first:
                raise self._at(
                    file,
                    line,
                    spec.id[0] if len(spec.id) == 1 else None,
                    f"record id {rid!r} is also on line {first[rid]}; a record id must be "
                    "unique (fix or remove one of the two rows)",
                )
            first[rid] = line

    def _row_id(self, file: _File, spec: RecordTable, line: int, cells: Sequence[str]) -> str:
        parts = []
        for column in spec.id:
            value = file.cell(cells, column)
            if value is None:
                raise self._at(file, line, column, "the record id is empty")
            parts.append(value)
        return ID_SEPARATOR.join(parts)

    def _subject(
        self,
        snap: _Snapshot,
        file: _File,
        spec: RecordTable | EventTable,
        line: int,
        cells: Sequence[str],
    ) -> str | None:
        """The row's subject id, or None for a row that names none (a masked row)."""
        ref = spec.subject
        if ref.column is not None:
            return file.cell(cells, ref.column)
        assert ref.via is not None and self.mapping.subjects is not None
        held = file.cell(cells, ref.via)
        if held is None:
            return None
        if held not in snap.subject_keys:
            raise self._at(
                file,
                line,
                ref.via,
                f"{held!r} names no row of {self.files[self.mapping.subjects.table]}",
            )
        return snap.subject_keys[held]

    def _instant(
        self, file: _File, spec: RecordTable | EventTable, line: int, column: str, text: str | None
    ) -> dt.datetime:
        zone = self.mapping.zone_of(spec)
        try:
            return cell_instant(text, zone)
        except ValueError as error:
            message = str(error)
            if isinstance(error, NaiveInstant):
                section = "record" if isinstance(spec, RecordTable) else "event"
                located = str(self._located("", (section, spec.name))).rstrip(": ")
                message += f" ({located})"
            raise self._at(file, line, column, message) from None

    def _typed(self, file: _File, spec: RecordTable, line: int, column: str, text: str) -> Any:
        try:
            return typed_cell(text, spec.types.get(column, "text"))
        except ValueError as error:
            raise self._at(file, line, column, str(error)) from None

    def _record(
        self, snap: _Snapshot, file: _File, spec: RecordTable, line: int, cells: list[str]
    ) -> Record | None:
        """The record a row holds, or None for a row that is none (no subject, no source)."""
        subject = self._subject(snap, file, spec, line, cells)
        source_cell = file.cell(cells, spec.source.column) if spec.source.column else None
        source = spec.source.meaning(source_cell)
        if subject is None or source is None:
            return None
        rid = self._row_id(file, spec, line, cells)
        data: dict[str, Any] = {}
        for category, group in spec.categories.items():
            if len(group) == 1:
                text = file.cell(cells, group[0])
                value = None if text is None else self._typed(file, spec, line, group[0], text)
            else:
                value = joined_words(file.cell(cells, c) for c in group)
            if value is not None:
                data[category] = value
        if spec.extra is not None:
            extra = file.cell(cells, spec.extra)
            if extra:
                try:
                    data.update(decode_data(extra))
                except ValueError as error:
                    raise self._at(
                        file, line, spec.extra, f"is not fairproc's JSON ({error})"
                    ) from None
        at = self._instant(file, spec, line, spec.collected_at, file.cell(cells, spec.collected_at))
        return Record(rid, subject, source, at, data)

    def _host_event(
        self, snap: _Snapshot, file: _File, spec: EventTable, line: int, cells: list[str]
    ) -> Event | None:
        subject = self._subject(snap, file, spec, line, cells)
        kind = spec.kind.meaning(file.cell(cells, spec.kind.column) if spec.kind.column else None)
        if subject is None or kind is None:
            return None
        at = self._instant(file, spec, line, spec.at, file.cell(cells, spec.at))

        def text(column: str | None) -> str | None:
            return None if column is None else file.cell(cells, column)

        return Event(subject, kind, at, text(spec.record), text(spec.purpose), text(spec.id))

    def _all_records(self, snap: _Snapshot) -> Iterator[Record]:
        for name, spec in self.mapping.records.items():
            file = snap.files[name]
            for line, cells in file.rows:
                record = self._record(snap, file, spec, line, cells)
                if record is not None:
                    yield record

    def _host_events(self, snap: _Snapshot) -> list[Event]:
        """Every event of the host's event files, by instant (stable: file order within)."""
        found: list[Event] = []
        for name, spec in self.mapping.events.items():
            file = snap.files[name]
            for line, cells in file.rows:
                event = self._host_event(snap, file, spec, line, cells)
                if event is not None:
                    found.append(event)
        return sorted(found, key=lambda ev: ev.at)

    # -- reads --

    def get_record(self, record_id: str) -> Record | None:
        for record in self._all_records(self._read_all()):
            if record.id == record_id:
                return record
        return None

    def subject_records(self, subject: str) -> Sequence[Record]:
        return tuple(r for r in self._all_records(self._read_all()) if r.subject == subject)

    def iter_records(self) -> Iterator[Record]:
        return self._all_records(self._read_all())

    def subjects_giving(
        self, category: str, emails: Sequence[str]
    ) -> Sequence[tuple[str, str, dt.datetime]]:
        """Who gave each address (:class:`fairproc.world.AddressIndex`): one pass over the
        mapped files."""
        return givers_in(index_givers(self.iter_records(), category), emails)

    def _events_of(self, snap: _Snapshot, subjects: set[str]) -> dict[str, list[Event]]:
        """Each subject's events: the host's merged by instant with fairproc's own, which keep
        the order they were added in (a stable sort keeps each side's order)."""
        found: dict[str, list[Event]] = defaultdict(list)
        for event in self._host_events(snap):
            if event.subject in subjects:
                found[event.subject].append(event)
        own: dict[str, list[Event]] = defaultdict(list)
        for event in self._read("events"):
            if event.subject in subjects:
                own[event.subject].append(event)
        return {
            s: _merged(own.get(s, []), found.get(s, [])) for s in subjects if s in own or s in found
        }

    def subject_events(self, subject: str) -> Sequence[Event]:
        return tuple(self._events_of(self._read_all(), {subject}).get(subject, ()))

    def histories(self, policy: Policy, subjects: Iterable[str]) -> dict[str, SubjectHistory]:
        """Several subjects' histories from one pass over each file."""
        wanted = list(dict.fromkeys(subjects))
        return next(self._batches(policy, self._read_all(), wanted, max(1, len(wanted))), {})

    def history_batches(
        self, policy: Policy, size: int = 20
    ) -> Iterator[dict[str, SubjectHistory]]:
        """Every subject with records, each once, ``size`` at a time, from one read of the
        files (held in memory: see the module's docstring)."""
        snap = self._read_all()
        subjects = list(dict.fromkeys(r.subject for r in self._all_records(snap)))
        return self._batches(policy, snap, subjects, size)

    def _batches(
        self, policy: Policy, snap: _Snapshot, subjects: list[str], size: int
    ) -> Iterator[dict[str, SubjectHistory]]:
        keep = set(subjects)
        records: dict[str, list[Record]] = defaultdict(list)
        for record in self._all_records(snap):
            if record.subject in keep:
                records[record.subject].append(record)
        events = self._events_of(snap, keep)
        for start in range(0, len(subjects), size):
            found: dict[str, SubjectHistory] = {}
            lookup = self._lookup(policy, found, events)
            found.update(
                (s, build_history(policy, s, records[s], events.get(s, ()), lookup))
                for s in subjects[start : start + size]
            )
            yield found

    # -- writes --

    def _prepare(self, changes: ChangeSet, token: str, moves: list[tuple[str, str]]) -> None:
        """The host's files a change set touches, then fairproc's own (see the base class)."""
        snap = self._read_all()
        # A corrupt row is refused, not copied: every row is read as a record or event first.
        for _ in self._all_records(snap):
            pass
        self._host_events(snap)
        # Everything the host's files cannot keep is refused before the first file is written.
        rows = [self._row_for(rec, i) for i, rec in enumerate(changes.put_records)]
        placed = [self._event_place(ev) for ev in changes.add_events]
        if any(m.how == "hash" for spec in self._specs() for m in spec.mask.values()):
            self._mask_key = self.key_file(MASK_KEY)

        # table -> record id -> (row index, cells): the cells stay the row's as rows go
        where: dict[str, dict[str, tuple[int, list[str]]]] = {}
        for name, spec in self.mapping.records.items():
            file = snap.files[name]
            where[name] = {
                self._row_id(file, spec, line, cells): (i, cells)
                for i, (line, cells) in enumerate(file.rows)
            }
        puts = zip(changes.put_records, rows, strict=True)
        target = {rec.id: spec.name for rec, (spec, _) in puts}
        gone = set(changes.delete_records)
        doomed: dict[str, set[int]] = defaultdict(set)
        for name, ids in where.items():
            for rid, (i, _) in ids.items():
                if rid in gone or (rid in target and target[rid] != name):
                    doomed[name].add(i)
        for name, indexes in doomed.items():
            self._remove(snap.files[name], self.mapping.records[name], indexes)

        subjects = set(changes.delete_subject_events)
        records = set(changes.delete_record_events)
        if subjects or records:
            for name, event_spec in self.mapping.events.items():
                file = snap.files[name]
                hit = set()
                for i, (line, cells) in enumerate(file.rows):
                    subject = self._subject(snap, file, event_spec, line, cells)
                    column = event_spec.record
                    record = file.cell(cells, column) if column else None
                    if subject in subjects or (record is not None and record in records):
                        hit.add(i)
                self._remove(file, event_spec, hit)

        for rec, (spec, values) in zip(changes.put_records, rows, strict=True):
            file = snap.files[spec.name]
            values = {**values, spec.subject.stored_in: self._subject_cell(snap, spec, rec.subject)}
            held = where[spec.name].get(rec.id)
            if held is not None and held[0] not in doomed.get(spec.name, ()):
                cells = held[1]  # replaced in place
            else:
                cells = [""] * len(file.header)
                file.rows.append((0, cells))
            for column, value in values.items():
                file.set(cells, column, value)
            file.changed = True

        own: list[list[str]] = []
        for ev, place in zip(changes.add_events, placed, strict=True):
            if place is None:
                own.append(self._event_row(ev))
                continue
            event_spec, event_values = place
            file = snap.files[event_spec.name]
            stored_in = event_spec.subject.stored_in
            values = {**event_values, stored_in: self._subject_cell(snap, event_spec, ev.subject)}
            cells = [""] * len(file.header)
            for column, value in values.items():
                file.set(cells, column, value)
            file.rows.append((0, cells))
            file.changed = True

        for file in snap.files.values():
            if file.changed:
                moves.append(self._rewrite(file, token))
        self._prepare_own(changes, own, token, moves)

    def _rewrite(self, file: _File, token: str) -> tuple[str, str]:
        with self._writing(file.name, token) as (_, writer):
            writer.writerow(file.header)
            writer.writerows(cells for _, cells in file.rows)
        return self._temp(file.name, token).name, file.name

    def _remove(self, file: _File, spec: RecordTable | EventTable, indexes: set[int]) -> None:
        """Delete (or mask) the rows at ``indexes``, as the table's erasure says."""
        if not indexes:
            return
        file.changed = True
        if spec.erasure == "delete":
            file.rows = [row for i, row in enumerate(file.rows) if i not in indexes]
            return
        for i in indexes:
            cells = file.rows[i][1]
            for column, mask in spec.mask.items():
                value = masked_value(mask, file.cell(cells, column), self._mask_key)
                file.set(cells, column, None if value is None else str(value))

    def _subject_cell(self, snap: _Snapshot, spec: RecordTable | EventTable, subject: str) -> str:
        """What the row's subject column holds for ``subject``: the id itself, or the subjects
        file's row id for it, the row added when there is none."""
        if spec.subject.column is not None:
            return subject
        assert self.mapping.subjects is not None
        if subject in snap.subject_rows:
            return snap.subject_rows[subject]
        file = snap.files[self.mapping.subjects.table]
        # A new row's id: the next integer when the ids are integers, else the subject id.
        numbers = [int(s) for s in snap.subject_keys if s.lstrip("-").isdigit()]
        integers = len(numbers) == len(snap.subject_keys)
        sid = str(max(numbers, default=0) + 1) if integers else subject
        cells = [""] * len(file.header)
        file.set(cells, self.mapping.subjects.id, sid)
        file.set(cells, self.mapping.subjects.key, subject)
        file.rows.append((0, cells))
        file.changed = True
        snap.subject_keys[sid] = subject
        snap.subject_rows[subject] = sid
        return sid

    def _cell_text(self, spec: RecordTable, column: str, value: Any) -> str | None:
        """The cell that gives ``value`` back as it is, or None when none does."""
        kind = spec.types.get(column, "text")
        if kind == "text":
            return value if isinstance(value, str) and _keepable(value) else None
        if kind == "boolean":
            return ("true" if value else "false") if isinstance(value, bool) else None
        if isinstance(value, bool):
            return None
        if kind == "integer":
            return str(value) if isinstance(value, int) else None
        if isinstance(value, int | float) and math.isfinite(value):
            return repr(float(value)) if isinstance(value, float) else None
        return None

    def _stored_instant(self, spec: RecordTable | EventTable, value: dt.datetime) -> str:
        """An instant as the table's cells hold it: wall time in its declared zone, else UTC
        with its offset."""
        zone = self.mapping.zone_of(spec)
        if zone is None:
            return value.astimezone(UTC).isoformat()
        return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat(sep=" ")

    def _row_for(self, rec: Record, i: int) -> tuple[RecordTable, dict[str, str | None]]:
        path: tuple[str | int, ...] = ("put_records", i)
        spec = table_for(self.mapping, rec, path)
        parts = rec.id.split(ID_SEPARATOR) if len(spec.id) > 1 else [rec.id]
        if len(parts) != len(spec.id) or not all(parts):
            raise InputError.one(
                f"file {self.files[spec.name]!r} keys its rows on {len(spec.id)} column(s): "
                f"expected an id of {len(spec.id)} non-empty parts joined by {ID_SEPARATOR!r}",
                path=(*path, "id"),
            )
        values: dict[str, str | None] = dict(zip(spec.id, parts, strict=True))
        values[spec.collected_at] = self._stored_instant(spec, rec.collected_at)
        if spec.source.column is not None:
            values[spec.source.column] = spec.source.stored(rec.source)
        problems: list[Problem] = []
        extra: dict[str, Any] = {}
        for category, group in spec.categories.items():
            value = rec.data.get(category)
            if len(group) > 1:
                split = split_words(value, len(group)) if value is not None else [None] * len(group)
                fits = split is not None and (value is None or joined_words(split) == value)
                cells = split if split is not None and fits else [None] * len(group)
            else:
                cell = None if value is None else self._cell_text(spec, group[0], value)
                fits = value is None or cell is not None
                cells = [cell]
            if not fits or (value is None and category in rec.data):
                if spec.extra is None:
                    if value is None:
                        cells = [None] * len(group)  # "not held", as the empty cell says
                    else:
                        what = "text" if len(group) > 1 else spec.types.get(group[0], "text")
                        problems.append(
                            Problem(
                                f"a {type(value).__name__} value cannot be kept in "
                                f"{'columns' if len(group) > 1 else 'column'} "
                                f"{', '.join(group)} of {self.files[spec.name]!r} ({what}) "
                                "without changing it",
                                path=(*path, "data", category),
                            )
                        )
                        continue
                else:
                    extra[category] = value
                    cells = [None] * len(group)
            values.update(zip(group, cells, strict=True))
        leftover = leftover_data(spec, rec, extra, values, f"file {self.files[spec.name]!r}", path)
        problems.extend([leftover] if leftover else [])
        if problems:
            raise InputError(problems)
        return spec, values

    def _event_place(self, ev: Event) -> tuple[EventTable, dict[str, str | None]] | None:
        """The host file and row ``ev`` goes to, or None: fairproc's own events file (the
        kind is mapped nowhere, or the event carries a field its file has no column for)."""
        spec = self.mapping.table_for_kind(ev.kind)
        if spec is None:
            return None
        fields = ((ev.record, spec.record), (ev.purpose, spec.purpose), (ev.id, spec.id))
        if any(given is not None and (column is None or given == "") for given, column in fields):
            return None
        values: dict[str, str | None] = {spec.at: self._stored_instant(spec, ev.at)}
        if spec.kind.column is not None:
            values[spec.kind.column] = spec.kind.stored(ev.kind)
        values.update((column, given) for given, column in fields if column is not None)
        return spec, values

    # -- scenarios --

    def holding_rows(self) -> str | None:
        """The first mapped file holding a row, or None when every one is empty."""
        snap = self._read_all()
        return next((f.name for f in snap.files.values() if f.rows), None)

    def clear_rows(self) -> None:
        """Empty every mapped file (headers kept) and fairproc's own events, suppression and
        audit files, in one commit: what a scenario run leaves."""
        with self._lock(WRITE_LOCK, fcntl.LOCK_EX):
            snap = self._read_all()
            token = secrets.token_hex(4)
            moves: list[tuple[str, str]] = []
            try:
                for file in snap.files.values():
                    file.rows = []
                    moves.append(self._rewrite(file, token))
                for name in ("events", "suppression", "audit"):
                    target = self.path(name).name
                    with self._writing(target, token) as (_, writer):
                        writer.writerow(HEADERS[name])
                    moves.append((self._temp(target, token).name, target))
            except BaseException:
                for temp, _ in moves:
                    (self.folder / temp).unlink(missing_ok=True)
                raise
            self._commit(moves, token)


class NaiveInstant(ValueError):
    """A timestamp without an offset in a table whose zone the mapping does not declare."""


def cell_instant(text: str | None, zone: str | None) -> dt.datetime:
    """The instant a timestamp cell holds: with an offset, as it says; without one, wall time
    in ``zone``, and :class:`NaiveInstant` when there is none (never guessed). ValueError
    for an empty cell or text that is not ISO 8601."""
    if text is None:
        raise ValueError("the timestamp is empty")
    try:
        value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if zone is None:
        raise NaiveInstant(
            f'{text!r} has no zone and the mapping declares none: add timezone = "..." '
            "(never guessed)"
        )
    return value.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


_INTEGER = re.compile(r"^-?[0-9]+$")


def typed_cell(text: str, kind: str) -> Any:
    """The value a non-empty cell of a column of type ``kind`` (:data:`CSV_TYPES`) holds;
    ValueError when it holds none."""
    if kind == "text":
        return text
    if kind == "integer" and _INTEGER.match(text):
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    # the cell's text is not repeated: it may be personal data, and errors end up in logs
    raise ValueError(f"is not a{'n' if kind == 'integer' else ''} {kind} value")


def _merged(own: list[Event], host: list[Event]) -> list[Event]:
    return list(heapq.merge(own, host, key=lambda ev: ev.at))


def _keepable(text: str) -> bool:
    """Whether a text cell gives ``text`` back as it is: not empty (an empty cell is a missing
    value), no NUL, nothing UTF-8 cannot write."""
    if not text or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

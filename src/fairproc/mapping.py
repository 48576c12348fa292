"""A mapping file: how a host application's own tables (or CSV files) hold fairproc's records
and events, so fairproc runs on the data where it lives instead of on a copy.

A mapping is TOML::

    [mapping]
    policy = "flexioffices"        # sources, categories and event kinds are checked against it
    timezone = "UTC"               # the zone of every naive timestamp column (optional)

    [state]                        # fairproc's own tables (audit, suppression, its events)
    prefix = "fairproc_"

    [subjects]                     # optional: rows that point at a subject by its row id
    table = "customers"
    id = "customer_id"             # the column other tables point at
    key = "customer_ref"           # the subject id fairproc uses

    [record.enquiries]             # one host table whose rows are records
    source = { column = "channel", values = { qq = "quick_quote", mq = "multiquote" } }
    id = "enquiry_ref"             # or ["a", "b"]: an id over several columns
    subject = { via = "customer_id" }   # or "customer_ref": the subject id in a column
    collected_at = "created_at"
    timezone = "Europe/London"     # this table's naive timestamps
    erasure = "delete"             # or "mask", with [record.enquiries.mask]
    [record.enquiries.categories]
    name = ["first_name", "last_name"]  # one category over several columns
    email = "email"

    [event.lettings]               # one host table whose rows are events
    kind = "office_let"            # or { column = "...", values = { ... } }
    at = "let_on"
    subject = { via = "customer_id" }
    record = "enquiry_ref"         # optional: the record an event names

This module is pure: :func:`load_mapping` reads the one file it is given and checks it
against the policy; nothing here opens a database. Every problem is reported together, each
with its file, line and key path (:class:`MappingError`); no mapping, however malformed, makes
the loader raise anything else.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from fairproc.errors import Problem, ProblemsError, did_you_mean
from fairproc.model import Policy
from fairproc.toml_lines import LineIndex, nearest_line
from fairproc.values import Value

__all__ = [
    "CSV_TYPES",
    "ERASURES",
    "MASKS",
    "Column",
    "EventTable",
    "HostMapping",
    "MappingError",
    "Mask",
    "RecordTable",
    "SubjectRef",
    "Subjects",
    "ValueMap",
    "column_path",
    "load_mapping",
    "named_policy",
    "parse_mapping",
]

ERASURES = ("delete", "mask")
"""What erasure, rectification's removals and sweeps do to a mapped row."""
MASKS = ("null", "fixed", "hash")
"""How a masked column is overwritten: NULL, a fixed value, or a keyed hash of its value
(equal values hash alike, so joins on the column keep working)."""
CSV_TYPES = ("text", "integer", "number", "boolean")
"""What a CSV file's column holds (``types``): a CSV cell is text, and fairproc never guesses
that "10" was a number."""
ID_SEPARATOR = "/"
"""Joins the columns of an id over several columns into one record id."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$ .-]{0,127}$")


class MappingError(ProblemsError):
    """A mapping file that cannot be used, with every problem found and where it is."""

    kind = "mapping"


Column = str


@attrs.frozen(repr=False)
class ValueMap(Value):
    """A value fixed for every row, or read from a column and translated through ``values``
    (stored value -> fairproc's name), or read from a column as it is (``verbatim``: a table
    of any source, such as a generic activity log)."""

    fixed: str | None = None
    column: Column | None = None
    values: Mapping[str, str] = attrs.field(factory=dict)
    verbatim: bool = False  # the column holds the names themselves (no value map)

    def stored(self, name: str) -> str | None:
        """The stored value that means ``name``, or None when no value does."""
        if self.verbatim:
            return name
        for stored, meant in self.values.items():
            if meant == name:
                return stored
        return None

    def names(self) -> tuple[str, ...]:
        """The names this map gives (none listed for a verbatim column: it gives any)."""
        if self.fixed is not None:
            return (self.fixed,)
        return tuple(dict.fromkeys(self.values.values()))

    def meaning(self, stored: Any) -> str | None:
        """The name a stored value means, or None when it means none."""
        if self.fixed is not None:
            return self.fixed
        if self.verbatim:
            return None if stored is None else str(stored)
        return self.values.get(stored) if isinstance(stored, str) else None


@attrs.frozen(repr=False)
class SubjectRef(Value):
    """How a row names its subject: the subject id in ``column``, or a row id in ``via`` that
    the subjects table (:class:`Subjects`) turns into the subject id."""

    column: Column | None = None
    via: Column | None = None

    @property
    def stored_in(self) -> Column:
        """The column of this table the reference is stored in."""
        column = self.column if self.column is not None else self.via
        assert column is not None  # the loader sets exactly one
        return column


@attrs.frozen(repr=False)
class Subjects(Value):
    """The host's table of subjects: ``id`` is what other rows point at, ``key`` the subject
    id fairproc uses."""

    table: str
    id: Column
    key: Column


@attrs.frozen(repr=False)
class Mask(Value):
    """How one column is overwritten when its row is masked."""

    how: str  # one of MASKS
    value: Any = None  # the fixed value


@attrs.frozen(repr=False)
class RecordTable(Value):
    """A host table (or CSV file) whose rows are records."""

    name: str
    source: ValueMap
    id: tuple[Column, ...]
    subject: SubjectRef
    collected_at: Column
    categories: Mapping[str, tuple[Column, ...]]
    timezone: str | None = None
    erasure: str = "delete"
    mask: Mapping[Column, Mask] = attrs.field(factory=dict)
    file: str | None = None  # CSV: the file name in the folder (default: <name>.csv)
    # a JSON text column for the data no other column keeps as it is, if the host has one
    extra: Column | None = None
    # a column whose values rise as rows are added (an autoincrement key): records come in
    # that order; without one, by instant then id
    order: Column | None = None
    # CSV: what a category column holds other than text (a database's columns say it)
    types: Mapping[Column, str] = attrs.field(factory=dict)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column the mapping reads, each once."""
        cols = [*self.id, self.subject.stored_in, self.collected_at]
        if self.source.column is not None:
            cols.append(self.source.column)
        cols += [c for c in (self.extra, self.order) if c is not None]
        cols += [c for group in self.categories.values() for c in group]
        return tuple(dict.fromkeys(cols))


@attrs.frozen(repr=False)
class EventTable(Value):
    """A host table (or CSV file) whose rows are events."""

    name: str
    kind: ValueMap
    at: Column
    subject: SubjectRef
    record: Column | None = None
    purpose: Column | None = None
    id: Column | None = None
    timezone: str | None = None
    erasure: str = "delete"
    mask: Mapping[Column, Mask] = attrs.field(factory=dict)
    file: str | None = None

    @property
    def columns(self) -> tuple[Column, ...]:
        cols = [self.at, self.subject.stored_in]
        cols += [c for c in (self.kind.column, self.record, self.purpose, self.id) if c]
        return tuple(dict.fromkeys(cols))


@attrs.frozen(repr=False)
class HostMapping(Value):
    """A whole mapping file."""

    records: Mapping[str, RecordTable]
    events: Mapping[str, EventTable]
    subjects: Subjects | None = None
    policy: str | None = None
    timezone: str | None = None
    prefix: str = "fairproc_"
    file: str | None = None
    lines: Mapping[tuple[str | int, ...], int] = attrs.field(factory=dict, eq=False, repr=False)

    def zone_of(self, table: RecordTable | EventTable) -> str | None:
        """The zone the table's naive timestamps are in, or None when none is declared."""
        return table.timezone if table.timezone is not None else self.timezone

    def table_for_source(self, source: str) -> RecordTable | None:
        """The table that holds records of ``source``: the one naming it, else a table whose
        source column holds names verbatim."""
        for table in self.records.values():
            if source in table.source.names():
                return table
        for table in self.records.values():
            if table.source.verbatim:
                return table
        return None

    def table_for_kind(self, kind: str) -> EventTable | None:
        for table in self.events.values():
            if kind in table.kind.names():
                return table
        return None

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path`` in the mapping file (or of its nearest enclosing key)."""
        return nearest_line(self.lines, path)

    def where(self, path: Sequence[str | int]) -> Problem:
        """An empty problem located at ``path``: callers evolve its message."""
        return Problem("", file=self.file, path=tuple(path), line=self.line_of(path))


def column_path(table: RecordTable | EventTable, column: Column) -> tuple[str, ...]:
    """The key path of the mapping that names ``column`` of ``table`` (for errors)."""
    if isinstance(table, RecordTable):
        section = ("record", table.name)
        for category, group in table.categories.items():
            if column in group:
                return (*section, "categories", category)
        named = {
            "id": table.id,
            "subject": (table.subject.stored_in,),
            "collected_at": (table.collected_at,),
            "source": (table.source.column,),
        }
    else:
        section = ("event", table.name)
        named = {
            "at": (table.at,),
            "subject": (table.subject.stored_in,),
            "kind": (table.kind.column,),
            "record": (table.record,),
            "purpose": (table.purpose,),
            "id": (table.id,),
        }
    for key, columns in named.items():
        if column in columns:
            return (*section, key)
    if column in table.mask:
        return (*section, "mask", column)
    return section


# --- reading ---------------------------------------------------------------------------------


class _Reader:
    """Collects every problem of one mapping document, each located."""

    def __init__(self, file: str | None, index: LineIndex | None):
        self.file = file
        self.index = index
        self.problems: list[Problem] = []

    def problem(self, message: str, path: Sequence[str | int]) -> None:
        line = self.index.find(path) if self.index is not None else None
        self.problems.append(Problem(message, file=self.file, path=tuple(path), line=line))

    def table(self, value: Any, path: Sequence[str | int]) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(f"expected a table, got {_kind(value)}", path)
        return None

    def keys(
        self, doc: Mapping[str, Any], allowed: Sequence[str], path: Sequence[str | int]
    ) -> None:
        for key in doc:
            if key not in allowed:
                self.problem(
                    f"unknown key {key!r}"
                    + did_you_mean(key, allowed)
                    + f" (expected one of: {', '.join(allowed)})",
                    (*path, key),
                )

    def name(
        self, doc: Mapping[str, Any], key: str, path: Sequence[str | int], required: bool = True
    ) -> str | None:
        """A column or table name."""
        if key not in doc:
            if required:
                self.problem("required key is missing", (*path, key))
            return None
        value = doc[key]
        if not isinstance(value, str) or not _NAME.match(value):
            self.problem(
                f"expected a column or table name (a letter or _, then letters, digits, _ . - $ "
                f"or spaces, up to 128), got {_shown(value)}",
                (*path, key),
            )
            return None
        return value

    def names(self, doc: Mapping[str, Any], key: str, path: Sequence[str | int]) -> tuple[str, ...]:
        """One column name, or a non-empty array of them."""
        if key not in doc:
            self.problem("required key is missing", (*path, key))
            return ()
        value = doc[key]
        if isinstance(value, str):
            one = self.name(doc, key, path)
            return (one,) if one else ()
        if not isinstance(value, list) or not value:
            self.problem(
                f"expected a column name or an array of them, got {_shown(value)}", (*path, key)
            )
            return ()
        out = []
        for i, item in enumerate(value):
            got = self.name({"c": item}, "c", (*path, key, i))
            if got is not None:
                out.append(got)
        if len(set(out)) != len(out):
            self.problem("names a column twice", (*path, key))
        return tuple(out) if len(out) == len(value) else ()

    def zone(self, doc: Mapping[str, Any], path: Sequence[str | int]) -> str | None:
        if "timezone" not in doc:
            return None
        value = doc["timezone"]
        if not isinstance(value, str) or not value:
            self.problem(
                f"expected an IANA zone name such as 'Europe/London', got {_shown(value)}",
                (*path, "timezone"),
            )
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.problem(
                f"unknown time zone {value!r} (expected an IANA name such as "
                "'Europe/London' or 'UTC')",
                (*path, "timezone"),
            )
            return None
        return value

    def value_map(
        self, doc: Mapping[str, Any], key: str, path: Sequence[str | int], what: str
    ) -> ValueMap | None:
        if key not in doc:
            self.problem("required key is missing", (*path, key))
            return None
        value = doc[key]
        where = (*path, key)
        if isinstance(value, str):
            if not value:
                self.problem(f"expected a {what} name, got an empty string", where)
                return None
            return ValueMap(fixed=value)
        spec = self.table(value, where)
        if spec is None:
            return None
        self.keys(spec, ("column", "values"), where)
        column = self.name(spec, "column", where)
        if "values" not in spec:
            # no value map: the column holds fairproc's names as they are
            return None if column is None else ValueMap(column=column, verbatim=True)
        values = spec.get("values")
        if not isinstance(values, dict) or not values:
            self.problem(
                f"expected a table of stored value = {what} name (at least one)", (*where, "values")
            )
            return None
        out: dict[str, str] = {}
        for stored, meant in values.items():
            if not isinstance(meant, str) or not meant:
                self.problem(
                    f"expected a {what} name, got {_shown(meant)}", (*where, "values", stored)
                )
                continue
            if meant in out.values():
                self.problem(
                    f"{what} {meant!r} is given by two stored values", (*where, "values", stored)
                )
                continue
            out[stored] = meant
        if column is None or len(out) != len(values):
            return None
        return ValueMap(column=column, values=out)

    def subject(self, doc: Mapping[str, Any], path: Sequence[str | int]) -> SubjectRef | None:
        if "subject" not in doc:
            self.problem("required key is missing", (*path, "subject"))
            return None
        value = doc["subject"]
        if isinstance(value, str):
            column = self.name(doc, "subject", path)
            return SubjectRef(column=column) if column else None
        spec = self.table(value, (*path, "subject"))
        if spec is None:
            return None
        self.keys(spec, ("via",), (*path, "subject"))
        via = self.name(spec, "via", (*path, "subject"))
        return SubjectRef(via=via) if via else None

    def masks(
        self, doc: Mapping[str, Any], path: Sequence[str | int], erasure: str | None
    ) -> dict[str, Mask]:
        value = doc.get("mask")
        if value is None:
            if erasure == "mask":
                self.problem(
                    "erasure = 'mask' needs a [mask] table naming the columns to overwrite",
                    (*path, "erasure"),
                )
            return {}
        where = (*path, "mask")
        spec = self.table(value, where)
        if spec is None:
            return {}
        if erasure != "mask":
            self.problem("a mask is given but erasure is not 'mask'", where)
        out: dict[str, Mask] = {}
        for column, how in spec.items():
            at = (*where, column)
            if not isinstance(column, str) or not _NAME.match(column):
                self.problem(f"expected a column name, got {column!r}", at)
                continue
            if isinstance(how, str):
                if how not in ("null", "hash"):
                    self.problem(
                        f"unknown mask {how!r}"
                        + did_you_mean(how, MASKS)
                        + " (expected 'null', 'hash' or { fixed = value })",
                        at,
                    )
                    continue
                out[column] = Mask(how)
            elif (
                isinstance(how, dict)
                and set(how) == {"fixed"}
                and isinstance(how["fixed"], str | int | float | bool)
            ):
                out[column] = Mask("fixed", how["fixed"])
            else:
                self.problem(
                    f"expected 'null', 'hash' or {{ fixed = value }}, got {_shown(how)}", at
                )
        return out

    def erasure(self, doc: Mapping[str, Any], path: Sequence[str | int]) -> str | None:
        value = doc.get("erasure", "delete")
        if value not in ERASURES:
            self.problem(
                f"unknown erasure {_shown(value)}"
                + (did_you_mean(value, ERASURES) if isinstance(value, str) else "")
                + " (expected 'delete' or 'mask')",
                (*path, "erasure"),
            )
            return None
        return str(value)


_RECORD_KEYS = (
    "source",
    "id",
    "subject",
    "collected_at",
    "categories",
    "timezone",
    "erasure",
    "mask",
    "file",
    "extra",
    "order",
    "types",
)
_EVENT_KEYS = (
    "kind",
    "at",
    "subject",
    "record",
    "purpose",
    "id",
    "timezone",
    "erasure",
    "mask",
    "file",
)
_SECTIONS = ("mapping", "state", "subjects", "record", "event")


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    return _kind(value)


def named_policy(path: str | Path) -> str | None:
    """The policy the mapping file at ``path`` names (``[mapping] policy``), or None when it
    names none or cannot be read (:func:`load_mapping` then says why)."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    head = doc.get("mapping")
    name = head.get("policy") if isinstance(head, dict) else None
    return name if isinstance(name, str) else None


def load_mapping(path: str | Path, policy: Policy | None = None) -> HostMapping:
    """The mapping in the TOML file at ``path``, checked (against ``policy`` when given).

    Raises :class:`MappingError` naming every problem (file, line, key path, what was
    expected); a file that cannot be read or is not TOML is one such problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError([Problem(f"cannot be read: {error}", file=name)]) from None
    return parse_mapping(text, policy, file=name)


def parse_mapping(
    text: str, policy: Policy | None = None, *, file: str | None = None
) -> HostMapping:
    """The mapping ``text`` holds (see :func:`load_mapping`)."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else max(1, len(text.splitlines()))
        raise MappingError([Problem(f"is not valid TOML: {error}", file=file, line=line)]) from None
    index = LineIndex(text)
    r = _Reader(file, index)
    r.keys(doc, _SECTIONS, ())
    head = r.table(doc.get("mapping", {}), ("mapping",)) or {}
    r.keys(head, ("policy", "timezone"), ("mapping",))
    policy_name = head.get("policy")
    if policy_name is not None and not isinstance(policy_name, str):
        r.problem(f"expected a policy name, got {_shown(policy_name)}", ("mapping", "policy"))
        policy_name = None
    if policy is not None and policy_name is not None and policy_name != policy.id:
        r.problem(
            f"the mapping is for policy {policy_name!r}, not {policy.id!r}", ("mapping", "policy")
        )
    zone = r.zone(head, ("mapping",))

    state = r.table(doc.get("state", {}), ("state",)) or {}
    r.keys(state, ("prefix",), ("state",))
    prefix = state.get("prefix", "fairproc_")
    if not isinstance(prefix, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$", prefix):
        r.problem(
            "expected a table prefix (a letter or _, then up to 30 letters, digits or _), "
            f"got {_shown(prefix)}",
            ("state", "prefix"),
        )
        prefix = "fairproc_"

    subjects = None
    if "subjects" in doc:
        spec = r.table(doc["subjects"], ("subjects",))
        if spec is not None:
            r.keys(spec, ("table", "id", "key"), ("subjects",))
            table = r.name(spec, "table", ("subjects",))
            sid = r.name(spec, "id", ("subjects",))
            key = r.name(spec, "key", ("subjects",))
            if table and sid and key:
                subjects = Subjects(table, sid, key)

    records: dict[str, RecordTable] = {}
    for tname, spec in _sections(r, doc, "record"):
        got = _record_table(r, tname, spec)
        if got is not None:
            records[tname] = got
    events: dict[str, EventTable] = {}
    for tname, spec in _sections(r, doc, "event"):
        ev = _event_table(r, tname, spec)
        if ev is not None:
            events[tname] = ev
    if not records and not events and "record" not in doc and "event" not in doc:
        r.problem("maps no table: expected at least one [record.<table>] or [event.<table>]", ())

    for section, tables in (("record", records), ("event", events)):
        for tname, t in tables.items():
            if t.subject.via is not None and subjects is None:
                r.problem(
                    "subject = { via = ... } needs a [subjects] table (table, id, key)",
                    (section, tname, "subject"),
                )
    _check_names(r, records, events, policy)
    if r.problems:
        raise MappingError(r.problems)
    return HostMapping(
        records=records,
        events=events,
        subjects=subjects,
        policy=policy_name,
        timezone=zone,
        prefix=prefix,
        file=file,
        lines=dict(index.lines),
    )


def _sections(r: _Reader, doc: Mapping[str, Any], section: str) -> list[tuple[str, dict[str, Any]]]:
    if section not in doc:
        return []
    tables = r.table(doc[section], (section,))
    if tables is None:
        return []
    out = []
    for tname, spec in tables.items():
        if not _NAME.match(tname):
            r.problem(f"expected a table name, got {tname!r}", (section, tname))
            continue
        got = r.table(spec, (section, tname))
        if got is not None:
            out.append((tname, got))
    return out


def _record_table(r: _Reader, tname: str, spec: Mapping[str, Any]) -> RecordTable | None:
    path = ("record", tname)
    before = len(r.problems)
    r.keys(spec, _RECORD_KEYS, path)
    source = r.value_map(spec, "source", path, "source")
    ids = r.names(spec, "id", path)
    subject = r.subject(spec, path)
    collected = r.name(spec, "collected_at", path)
    zone = r.zone(spec, path)
    erasure = r.erasure(spec, path)
    mask = r.masks(spec, path, erasure)
    file = r.name(spec, "file", path, required=False)
    extra = r.name(spec, "extra", path, required=False)
    order = r.name(spec, "order", path, required=False)
    categories: dict[str, tuple[str, ...]] = {}
    cats = spec.get("categories")
    if cats is None:
        r.problem(
            "required key is missing (a table of category = column or [columns])",
            (*path, "categories"),
        )
    else:
        table = r.table(cats, (*path, "categories"))
        for cat in table or {}:
            got = r.names(table or {}, cat, (*path, "categories"))
            if got:
                categories[cat] = got
    if len(r.problems) != before:
        return None
    assert source is not None and subject is not None and collected is not None and erasure
    used = [c for group in categories.values() for c in group]
    for c in sorted({c for c in used if used.count(c) > 1}):
        r.problem(f"column {c!r} holds more than one category", (*path, "categories"))
    reserved = {*ids, subject.stored_in, collected, *([source.column] if source.column else [])}
    reserved |= {c for c in (extra, order) if c is not None}
    for cat, group in categories.items():
        for c in group:
            if c in reserved:
                r.problem(
                    f"column {c!r} is the record's id, subject, source, instant, order or extra "
                    "data, not a category",
                    (*path, "categories", cat),
                )
    if erasure == "mask":
        _check_mask(r, path, mask, subject, ids)
    types = _types(r, path, spec.get("types"), used)
    return RecordTable(
        tname,
        source,
        ids,
        subject,
        collected,
        categories,
        zone,
        erasure,
        mask,
        file,
        extra,
        order,
        types,
    )


def _types(
    r: _Reader, path: tuple[str, ...], value: Any, categories: Sequence[str]
) -> dict[str, str]:
    """``types = { column = "integer" }``: what a CSV file's category columns hold."""
    if value is None:
        return {}
    table = r.table(value, (*path, "types"))
    out: dict[str, str] = {}
    for column, kind in (table or {}).items():
        where = (*path, "types", column)
        if column not in categories:
            r.problem(
                f"column {column!r} holds no category of this table"
                + did_you_mean(column, categories),
                where,
            )
        elif kind not in CSV_TYPES:
            r.problem(
                f"unknown column type {_shown(kind)}"
                + (did_you_mean(kind, CSV_TYPES) if isinstance(kind, str) else "")
                + f" (expected one of: {', '.join(CSV_TYPES)})",
                where,
            )
        else:
            out[column] = kind
    return out


def _check_mask(
    r: _Reader,
    path: tuple[str, ...],
    mask: Mapping[str, Mask],
    subject: SubjectRef,
    ids: Sequence[str],
) -> None:
    # A masked row must stop being the subject's: otherwise an erased record is still read.
    held = mask.get(subject.stored_in)
    if held is None or held.how != "null":
        r.problem(
            f"a masked row must leave its subject: mask the subject column {subject.stored_in!r} "
            "with 'null'",
            (*path, "mask"),
        )
    for c in ids:
        if c in mask:
            r.problem(
                f"column {c!r} is the row's id: masking it would break the rows that point at it",
                (*path, "mask", c),
            )


def _event_table(r: _Reader, tname: str, spec: Mapping[str, Any]) -> EventTable | None:
    path = ("event", tname)
    before = len(r.problems)
    r.keys(spec, _EVENT_KEYS, path)
    kind = r.value_map(spec, "kind", path, "event kind")
    at = r.name(spec, "at", path)
    subject = r.subject(spec, path)
    record = r.name(spec, "record", path, required=False)
    purpose = r.name(spec, "purpose", path, required=False)
    eid = r.name(spec, "id", path, required=False)
    zone = r.zone(spec, path)
    erasure = r.erasure(spec, path)
    mask = r.masks(spec, path, erasure)
    file = r.name(spec, "file", path, required=False)
    if len(r.problems) != before:
        return None
    assert kind is not None and at is not None and subject is not None and erasure
    if erasure == "mask":
        _check_mask(r, path, mask, subject, [eid] if eid else [])
    return EventTable(tname, kind, at, subject, record, purpose, eid, zone, erasure, mask, file)


def _check_names(
    r: _Reader,
    records: Mapping[str, RecordTable],
    events: Mapping[str, EventTable],
    policy: Policy | None,
) -> None:
    verbatim = [tname for tname, t in records.items() if t.source.verbatim]
    for tname in verbatim[1:]:
        r.problem(
            f"two tables hold any source verbatim ({verbatim[0]!r} and {tname!r}): a record "
            "of an unlisted source could go to either",
            ("record", tname, "source"),
        )
    seen_sources: dict[str, str] = {}
    for tname, t in records.items():
        for name in t.source.names():
            where = ("record", tname, "source")
            if policy is not None and name not in policy.sources:
                r.problem(f"unknown source {name!r}" + did_you_mean(name, policy.sources), where)
            if name in seen_sources:
                r.problem(
                    f"source {name!r} is mapped to two tables "
                    f"({seen_sources[name]!r} and {tname!r})",
                    where,
                )
            seen_sources.setdefault(name, tname)
        if policy is not None:
            for cat in t.categories:
                if cat not in policy.categories:
                    r.problem(
                        f"unknown category {cat!r}" + did_you_mean(cat, policy.categories),
                        ("record", tname, "categories", cat),
                    )
    seen_kinds: dict[str, str] = {}
    for tname, e in events.items():
        for name in e.kind.names():
            where = ("event", tname, "kind")
            if policy is not None and name not in policy.events:
                r.problem(f"unknown event kind {name!r}" + did_you_mean(name, policy.events), where)
            if name in seen_kinds:
                r.problem(
                    f"event kind {name!r} is mapped to two tables "
                    f"({seen_kinds[name]!r} and {tname!r})",
                    where,
                )
            seen_kinds.setdefault(name, tname)
    for tname in set(records) & set(events):
        r.problem("a table is mapped both as records and as events", ("event", tname))

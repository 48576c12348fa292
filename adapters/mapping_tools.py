"""Checking a mapping against a live database, and drafting one from it.

:func:`check_mapping` reflects the schema a mapping file names and reports every mismatch,
each with the mapping file's line and key path: a table or column that is not there, an
instant in a column that is not a timestamp, a naive timestamp column whose zone the mapping
does not declare, an unknown source, category or event kind (the loader's own checks against
the policy), a mask the column cannot take, and a foreign key an erasure would break (a table
the mapping does not know pointing at rows an erasure deletes).

:func:`draft_mapping` writes a first mapping from the reflected schema for a person to finish:
record ids from primary keys, subjects through foreign keys, instants from the first timestamp
column, and categories guessed from column names; what cannot be guessed (a table's source,
a naive column's zone) is left as a marked blank, never filled in.

Both take a ``csv:`` URL too, for a folder of the host's CSV files
(:mod:`fairproc.adapters.mapped_csv`): the check reads each mapped file's header and cells
(a missing file, a header without a mapped column, a timestamp that does not parse or has no
zone the mapping declares, a cell its declared type cannot read: each named with the CSV
file's line as well as the mapping's); the draft reads the headers as a schema (a column whose
cells are timestamps is one, the first column named like a key is the row's id, a column named
as another file's id points at it).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fairproc.errors import Problem
from fairproc.mapping import (
    EventTable,
    HostMapping,
    MappingError,
    RecordTable,
    column_path,
    load_mapping,
    named_policy,
)
from fairproc.model import Policy
from fairproc.storage import StoreError, hide_password

from .mapped_sql import reflect

__all__ = ["check_mapping", "draft_mapping"]


def _engine(url: str) -> sa.Engine:
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, ValueError, ImportError) as error:
        raise StoreError(f"cannot open {hide_password(url)!r}: {error}") from None


def _reflect(url: str) -> tuple[sa.MetaData, str]:
    engine = _engine(url)
    try:
        md = sa.MetaData()
        try:
            reflect(md, engine)
        except sa.exc.SQLAlchemyError as error:
            first = str(getattr(error, "orig", error)).strip().splitlines()
            raise StoreError(
                f"cannot read the schema of {hide_password(url)!r}: {first[0] if first else error}"
            ) from None
        return md, engine.url.get_backend_name()
    finally:
        engine.dispose()


def check_mapping(path: str | Path, url: str, policy: Policy | None = None) -> list[Problem]:
    """Every mismatch between the mapping file at ``path`` and the database at ``url`` (empty
    when they agree). ``policy``: what sources, categories and kinds are checked against
    (default: the policy the mapping names)."""
    try:
        named = named_policy(path) if policy is None else None
        if named is not None:
            from fairproc.loader import load_policy

            policy = load_policy(named)
        mapping = load_mapping(path, policy)
    except MappingError as error:
        return list(error.problems)
    if url.startswith("csv:"):
        return _check_csv(mapping, _folder(url))
    md, _ = _reflect(url)
    return _check(mapping, md)


def _folder(url: str) -> Path:
    from .csv import folder_of

    folder = Path(folder_of(url))
    if not folder.is_dir():
        raise StoreError(f"no such folder {folder} (the host's CSV files)")
    return folder


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of a CSV file, the header first; StoreError naming the line otherwise."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            for row in reader:
                if row:
                    yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as error:
            raise StoreError(f"{path}:{reader.line_num + 1}: cannot be read: {error}") from None


def _check_csv(mapping: HostMapping, folder: Path) -> list[Problem]:
    from .mapped_csv import NaiveInstant, cell_instant, typed_cell

    out: list[Problem] = []

    def problem(message: str, key: Sequence[str | int]) -> None:
        out.append(Problem(message, file=mapping.file, path=tuple(key), line=mapping.line_of(key)))

    present = sorted(p.name for p in folder.glob("*.csv"))
    wanted: list[tuple[tuple[str, ...], str, RecordTable | EventTable | None]] = [
        *((("record", n), t.file or f"{n}.csv", t) for n, t in mapping.records.items()),
        *((("event", n), t.file or f"{n}.csv", t) for n, t in mapping.events.items()),
    ]
    if mapping.subjects is not None:
        wanted.append((("subjects", "table"), f"{mapping.subjects.table}.csv", None))
    for key, file, spec in wanted:
        path = folder / file
        if not path.is_file():
            problem(
                f"no file {file!r} in {folder}"
                + _near(file, present)
                + f" (files: {', '.join(present) or 'none'})",
                key,
            )
            continue
        try:
            rows = list(_csv_rows(path))
        except (OSError, StoreError) as error:
            problem(str(error), key)
            continue
        if not rows:
            problem(f"{path}: holds no header row", key)
            continue
        header = rows[0][1]
        columns: dict[str, tuple[str | int, ...]] = {}
        if spec is None:
            assert mapping.subjects is not None
            columns = {mapping.subjects.id: ("subjects", "id")}
            columns[mapping.subjects.key] = ("subjects", "key")
        else:
            columns = {c: column_path(spec, c) for c in spec.columns}
            columns.update((c, (*key, "mask", c)) for c in spec.mask)
        for column, where in columns.items():
            if column not in header:
                problem(
                    f"{path}:1: the header has no column {column!r}" + _near(column, header),
                    where,
                )
        if spec is None:
            continue
        at = {c: i for i, c in enumerate(header)}
        instant = spec.collected_at if isinstance(spec, RecordTable) else spec.at
        zone = mapping.zone_of(spec)
        typed = dict(spec.types) if isinstance(spec, RecordTable) else {}
        for line, cells in rows[1:]:
            if len(cells) != len(header):
                problem(f"{path}:{line}: expected {len(header)} fields, got {len(cells)}", key)
                break
            if instant in at:
                try:
                    cell_instant(cells[at[instant]] or None, zone)
                except NaiveInstant as error:
                    problem(f"{path}:{line}: column {instant!r}: {error}", key)
                    instant = ""  # one line is enough to say so
                except ValueError as error:
                    where = column_path(spec, instant)
                    problem(f"{path}:{line}: column {instant!r}: {error}", where)
                    instant = ""
            for column, kind in list(typed.items()):
                if column in at and cells[at[column]]:
                    try:
                        typed_cell(cells[at[column]], kind)
                    except ValueError as error:
                        where = (*key, "types", column)
                        problem(f"{path}:{line}: column {column!r}: {error}", where)
                        del typed[column]
    return out


def _check(mapping: HostMapping, md: sa.MetaData) -> list[Problem]:
    out: list[Problem] = []

    def problem(message: str, key: Sequence[str | int]) -> None:
        out.append(Problem(message, file=mapping.file, path=tuple(key), line=mapping.line_of(key)))

    tables: dict[str, RecordTable | EventTable] = {**mapping.records, **mapping.events}
    if mapping.subjects is not None:
        s = mapping.subjects
        if s.table not in md.tables:
            problem(f"no table {s.table!r} in the database", ("subjects", "table"))
        else:
            for key in ("id", "key"):
                column = getattr(s, key)
                if column not in md.tables[s.table].c:
                    problem(f"table {s.table!r} has no column {column!r}", ("subjects", key))
    for name, spec in tables.items():
        section = "record" if isinstance(spec, RecordTable) else "event"
        if name not in md.tables:
            problem(
                f"no table {name!r} in the database"
                + _near(name, md.tables)
                + f" (tables: {', '.join(sorted(md.tables)) or 'none'})",
                (section, name),
            )
            continue
        table = md.tables[name]
        for column in [*spec.columns, *spec.mask]:
            if column not in table.c:
                problem(
                    f"table {name!r} has no column {column!r}" + _near(column, table.c.keys()),
                    column_path(spec, column),
                )
        instant = spec.collected_at if isinstance(spec, RecordTable) else spec.at
        if instant in table.c:
            kind = table.c[instant].type
            if not isinstance(kind, sa.DateTime):
                problem(
                    f"column {instant!r} of table {name!r} is {kind}, not a timestamp",
                    column_path(spec, instant),
                )
            elif not kind.timezone and mapping.zone_of(spec) is None:
                problem(
                    f"column {instant!r} of table {name!r} keeps timestamps without a zone, and "
                    f'the mapping declares none: add timezone = "..." to [{section}.{name}] or '
                    "[mapping] (never guessed)",
                    column_path(spec, instant),
                )
        for column, mask in spec.mask.items():
            if column in table.c and mask.how == "null" and not table.c[column].nullable:
                problem(
                    f"column {column!r} of table {name!r} is NOT NULL: a null mask cannot be "
                    "written there",
                    (section, name, "mask", column),
                )
        if isinstance(spec, RecordTable) or spec.erasure == "delete":
            out.extend(_breaking_keys(mapping, md, name, spec, section))
    return out


def _breaking_keys(
    mapping: HostMapping,
    md: sa.MetaData,
    name: str,
    spec: RecordTable | EventTable,
    section: str,
) -> list[Problem]:
    """Foreign keys an erasure of ``name``'s rows would break: a key from a table the mapping
    does not map (fairproc never deletes its rows) that neither cascades nor sets null; for a
    masked table, a key pointing at a column the mask overwrites."""
    out = []
    mapped = set(mapping.records) | set(mapping.events)
    target = md.tables[name]
    for child in md.tables.values():
        for fk in child.foreign_key_constraints:
            if fk.referred_table is not target:
                continue
            cols = ", ".join(c.name for c in fk.columns)
            refs = ", ".join(e.column.name for e in fk.elements)
            key = f"{child.name}({cols}) -> {name}({refs})"
            where = (section, name, "erasure")
            if spec.erasure == "mask":
                hit = [e.column.name for e in fk.elements if e.column.name in spec.mask]
                if hit:
                    out.append(
                        Problem(
                            f"masking {', '.join(hit)} would break foreign key {key}",
                            file=mapping.file,
                            path=(section, name, "mask"),
                            line=mapping.line_of((section, name, "mask")),
                        )
                    )
                continue
            if child.name in mapped or (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                continue
            out.append(
                Problem(
                    f"erasing a row of {name!r} would break foreign key {key}: {child.name!r} is "
                    "not mapped, so its rows are never erased with their parent (map it, make "
                    "the key ON DELETE SET NULL or CASCADE, or erase by mask)",
                    file=mapping.file,
                    path=where,
                    line=mapping.line_of(where) or mapping.line_of((section, name)),
                )
            )
    return out


def _near(word: str, known: Any) -> str:
    from fairproc.errors import did_you_mean

    return did_you_mean(word, list(known))


# --- drafting --------------------------------------------------------------------------------

_GUESSES: tuple[tuple[str, str], ...] = (
    (r"e_?mail", "email"),
    (r"phone|mobile|tel(ephone)?\b|tel_", "phone"),
    (r"^(first_?name|last_?name|surname|given_?name|family_?name|full_?name|name)$", "name"),
    (r"company|organi[sz]ation|employer", "company_name"),
    (r"ip(_?addr(ess)?)?$", "ip_address"),
    (r"mac(_?addr(ess)?)?$", "mac_address"),
    (r"address|street|postcode", "current_office_address"),
    (r"budget", "budget"),
    (r"recording", "call_recording"),
    (r"office_?size|desks|headcount", "office_size"),
    (r"location|city|area", "office_location"),
    (r"message|enquiry|inquiry|comment|notes?$", "enquiry_nature"),
    (r"business_?type|industry|sector", "business_type"),
    (r"start_?date", "start_date"),
)


def _guess(column: sa.Column[Any], policy: Policy | None) -> str | None:
    name = column.name.lower()
    if isinstance(column.type, sa.DateTime):
        return None
    for pattern, category in _GUESSES:
        if re.search(pattern, name) and (policy is None or category in policy.categories):
            return category
    if policy is not None and name in policy.categories:
        return name
    return None


def _toml_list(items: Sequence[str]) -> str:
    return (
        items[0].join('""') if len(items) == 1 else "[" + ", ".join(f'"{i}"' for i in items) + "]"
    )


def draft_mapping(url: str, policy: Policy | None = None) -> str:
    """A first mapping for the database (or ``csv:`` folder) at ``url``, as TOML text, for a
    person to finish."""
    md = _csv_schema(_folder(url)) if url.startswith("csv:") else _reflect(url)[0]
    tables = [t for t in md.sorted_tables if not t.name.startswith("fairproc_")]
    subjects = _subjects_table(tables)
    lines = ["# A draft mapping from `fairproc map init`: check every line, fill every FILL_IN."]
    lines.append("[mapping]")
    if policy is not None:
        lines.append(f'policy = "{policy.id}"')
    naive = any(
        isinstance(c.type, sa.DateTime) and not c.type.timezone for t in tables for c in t.columns
    )
    if naive:
        lines.append(
            '# Some timestamp columns keep no zone: declare theirs (never guessed), e.g. "UTC".'
        )
        lines.append('# timezone = "FILL_IN"')
    lines.append("")
    if subjects is not None:
        sname, sid, key = subjects
        lines += ["[subjects]", f'table = "{sname}"', f'id = "{sid}"', f'key = "{key}"', ""]
    sources = ", ".join(sorted(policy.sources)) if policy is not None else "your policy's sources"
    for table in tables:
        if subjects is not None and table.name == subjects[0]:
            continue
        instants = [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]
        keys = [c.name for c in table.primary_key.columns]
        cats: dict[str, list[str]] = {}
        for column in table.columns:
            category = _guess(column, policy)
            if category is not None and column.name not in keys and not column.foreign_keys:
                cats.setdefault(category, []).append(column.name)
        if not instants or not keys:
            lines.append(f"# {table.name}: no timestamp column or no primary key: not drafted")
            lines.append("")
            continue
        subject = _subject_ref(table, subjects)
        if not cats:
            lines.append(f"# {table.name}: no column looks like personal data; an event table?")
            lines.append(f"# [event.{table.name}]")
            lines.append('# kind = "FILL_IN"')
            lines.append(f'# at = "{instants[0]}"')
            lines.append(f"# subject = {subject}")
            lines.append("")
            continue
        lines.append(f"[record.{table.name}]")
        lines.append(f'source = "FILL_IN"  # one of: {sources}')
        lines.append(f"id = {_toml_list(keys)}")
        lines.append(f"subject = {subject}")
        lines.append(f'collected_at = "{instants[0]}"')
        lines.append("")
        lines.append(f"[record.{table.name}.categories]")
        for category, columns in cats.items():
            lines.append(f"{category} = {_toml_list(columns)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_KEY = re.compile(r"(^id$|_id$|^ref$|_ref$|uuid$|_key$)", re.IGNORECASE)


def _csv_schema(folder: Path) -> sa.MetaData:
    """A folder's CSV files read as a schema (see the module's docstring): what
    :func:`draft_mapping` drafts from."""
    md = sa.MetaData()
    headers: dict[str, tuple[list[str], list[list[str]]]] = {}
    for path in sorted(folder.glob("*.csv")):
        if path.name.startswith("fairproc_"):
            continue
        rows = _csv_rows(path)
        first = next(rows, None)
        if first is None:
            continue
        sample = [cells for _, cells in itertools.islice(rows, 100)]
        headers[path.stem] = (first[1], sample)
    keys = {name: header[0] for name, (header, _) in headers.items() if _KEY.search(header[0])}
    for name, (header, sample) in headers.items():
        columns = []
        for i, column in enumerate(header):
            kind = _cell_kind(column, [cells[i] for cells in sample if i < len(cells) and cells[i]])
            args: list[Any] = [
                sa.ForeignKey(f"{other}.{key}")
                for other, key in keys.items()
                if other != name and key == column
            ]
            columns.append(sa.Column(column, kind, *args, primary_key=keys.get(name) == column))
        sa.Table(name, md, *columns)
    return md


def _cell_kind(name: str, values: Sequence[str]) -> sa.types.TypeEngine[Any]:
    """A column's type from its cells: a timestamp when each holds a date and a time (with an
    offset on every one: one that keeps its zone), text otherwise; a column with no cells, by
    its name (``..._at``, ``..._on``: a timestamp without a zone)."""
    if not values:
        return sa.DateTime() if re.search(r"_(at|on)$", name) else sa.String()
    aware = True
    for value in values:
        if not re.match(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d", value):
            return sa.String()
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return sa.String()
        aware = aware and parsed.tzinfo is not None
    return sa.DateTime(timezone=aware)


def _subjects_table(tables: Sequence[sa.Table]) -> tuple[str, str, str] | None:
    """The table most others point at, with its key and a unique text column (the id)."""
    pointed: dict[str, int] = {}
    for table in tables:
        for fk in table.foreign_keys:
            pointed[fk.column.table.name] = pointed.get(fk.column.table.name, 0) + 1
    for name, _ in sorted(pointed.items(), key=lambda kv: -kv[1]):
        table = next(t for t in tables if t.name == name)
        keys = list(table.primary_key.columns)
        if len(keys) != 1:
            continue
        unique: set[str] = set()
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint) and len(constraint.columns) == 1:
                unique.update(constraint.columns.keys())
        for index in table.indexes:
            if index.unique and len(index.columns) == 1:
                unique.update(index.columns.keys())
        texts = [
            c.name for c in table.columns if c.name in unique and isinstance(c.type, sa.String)
        ]
        # SQLite reflects no inline UNIQUE: a text column named like a public reference
        texts += [
            c.name
            for c in table.columns
            if isinstance(c.type, sa.String) and re.search(r"(ref|uuid|code|key)$", c.name)
        ]
        if texts:
            return name, keys[0].name, texts[0]
        return name, keys[0].name, keys[0].name
    return None


def _subject_ref(table: sa.Table, subjects: tuple[str, str, str] | None) -> str:
    if subjects is not None:
        for fk in table.foreign_keys:
            if fk.column.table.name == subjects[0] and fk.column.name == subjects[1]:
                return f'{{ via = "{fk.parent.name}" }}'
    return '"FILL_IN"'

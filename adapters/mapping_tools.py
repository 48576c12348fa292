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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
            md.reflect(engine)
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
    md, _ = _reflect(url)
    return _check(mapping, md)


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
    """A first mapping for the database at ``url``, as TOML text, for a person to finish."""
    md, _ = _reflect(url)
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

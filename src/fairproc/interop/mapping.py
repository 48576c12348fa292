"""What a policy says about itself in outside vocabularies: its ``interop/`` mapping files.

The rule files name no data subjects and no Fides keys, so a policy that travels says them in
a folder of its own beside the rule files (the loader reads only the folder's top-level
``*.toml``, as it leaves ``scenarios/`` alone):

- ``interop/subjects.toml``: who the data subjects are, ``[subject.<id>]`` with ``title``,
  ``sources`` (a list of source ids, or ``"*"``), ``dpv`` (a W3C DPV term), ``fides`` (a
  fideslang data-subject key), ``clause`` (the notice's words) and an optional ``note``;
- ``interop/fides.toml``: ``[category]`` and ``[purpose]`` tables from each fairproc id to its
  fideslang default-taxonomy key (a data category, a data use), or to ``{ unmapped = "why" }``
  where fideslang has no key for it. An id the table leaves out is a gap lint reports; an
  unmapped id is listed by lint with its reason; the export never guesses either.

Reading checks structure and that every id exists in the policy (a :class:`PolicyError`
naming file, line and key otherwise). Whether the terms and keys exist in their vocabularies
is for lint to report (:mod:`fairproc.lint`), with suggestions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from fairproc.convert import converter, problems_from
from fairproc.errors import PolicyError, Problem
from fairproc.model import Policy
from fairproc.toml_lines import LineIndex
from fairproc.values import Value

FOLDER = "interop"
SUBJECTS_FILE = "subjects.toml"
FIDES_FILE = "fides.toml"
# the fides.toml tables: which policy ids each maps, and to which fideslang kind
FIDES_TABLES = {"category": "data_category", "purpose": "data_use"}


@attrs.frozen(repr=False)
class Subject(Value):
    """A kind of data subject the policy's records are about, and the sources that hold them."""

    id: str
    title: str
    clause: str
    sources: tuple[str, ...] | None = None  # None ("*", or not given): every source
    dpv: str | None = None
    fides: str | None = None
    note: str | None = None


@attrs.frozen(repr=False)
class FidesEntry(Value):
    """One fairproc id in the Fides table: its key, or why fideslang has none."""

    key: str | None
    unmapped: str | None = None
    line: int | None = None


@attrs.frozen(repr=False)
class Interop(Value):
    """A policy's mapping files, read. ``None`` where the policy has no such file."""

    subjects: Mapping[str, Subject] | None
    fides: Mapping[str, Mapping[str, FidesEntry]] | None  # table -> fairproc id -> entry
    subjects_file: str | None = None
    fides_file: str | None = None

    def subjects_of(self, source: str) -> list[Subject]:
        return [
            s for s in (self.subjects or {}).values() if s.sources is None or source in s.sources
        ]


def interop_folder(policy: Policy) -> Path | None:
    return None if policy.path is None else Path(policy.path) / FOLDER


def load_interop(policy: Policy) -> Interop:
    """Read ``policy``'s ``interop/`` files; every problem in them is reported at once."""
    folder = interop_folder(policy)
    if folder is None:
        return Interop(None, None)
    problems: list[Problem] = []
    subjects_path = folder / SUBJECTS_FILE
    fides_path = folder / FIDES_FILE
    subjects = None
    fides = None
    if subjects_path.is_file():
        doc, index = _read(subjects_path, problems)
        if doc is not None:
            subjects = _subjects(policy, doc, str(subjects_path), index, problems)
    if fides_path.is_file():
        doc, index = _read(fides_path, problems)
        if doc is not None:
            fides = _fides(policy, doc, str(fides_path), index, problems)
    if problems:
        raise PolicyError(problems)
    return Interop(
        subjects,
        fides,
        str(subjects_path) if subjects is not None else None,
        str(fides_path) if fides is not None else None,
    )


def _read(path: Path, problems: list[Problem]) -> tuple[dict[str, Any] | None, LineIndex]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(f"cannot be read: {exc}", file=str(path)))
        return None, LineIndex("")
    index = LineIndex(text)
    try:
        return tomllib.loads(text), index
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(f"is not valid TOML: {exc}", file=str(path)))
        return None, index


def _problem(
    problems: list[Problem], message: str, file: str, index: LineIndex, path: tuple[str, ...]
) -> None:
    problems.append(Problem(message, file=file, path=path, line=index.find(path)))


def _subjects(
    policy: Policy, doc: Mapping[str, Any], file: str, index: LineIndex, problems: list[Problem]
) -> dict[str, Subject]:
    out: dict[str, Subject] = {}
    for section in doc:
        if section != "subject":
            _problem(
                problems,
                f"unknown section {section!r} (expected [subject.<id>])",
                file,
                index,
                (section,),
            )
    tables = doc.get("subject", {})
    if not isinstance(tables, dict):
        _problem(problems, "expected [subject.<id>] tables", file, index, ("subject",))
        return out
    for ident, table in tables.items():
        path = ("subject", ident)
        if not isinstance(table, dict):
            _problem(problems, "expected a table", file, index, path)
            continue
        # sources are checked against the policy even when the entry has other problems
        named = table.get("sources")
        unknown = [x for x in (named if isinstance(named, list) else []) if x not in policy.sources]
        for x in unknown:
            _problem(
                problems,
                f"unknown source {x!r} (sources: {', '.join(policy.sources)})",
                file,
                index,
                (*path, "sources"),
            )
        try:
            subject = converter.structure({"id": ident, **table}, Subject)
        except Exception as exc:  # cattrs gathers every failure of the entry
            for p in problems_from(exc, path, file):
                message = p.message
                if p.path[-1:] == ("clause",) and message == "required key is missing":
                    message = "every subject needs clause: the words of the notice it encodes"
                _problem(problems, message, file, index, tuple(str(k) for k in p.path))
            continue
        if not unknown:
            out[ident] = subject
    return out


def _fides(
    policy: Policy, doc: Mapping[str, Any], file: str, index: LineIndex, problems: list[Problem]
) -> dict[str, dict[str, FidesEntry]]:
    known: dict[str, Mapping[str, Any]] = {
        "category": policy.categories,
        "purpose": policy.purposes,
    }
    out: dict[str, dict[str, FidesEntry]] = {table: {} for table in FIDES_TABLES}
    for section, entries in doc.items():
        if section not in FIDES_TABLES:
            _problem(
                problems,
                f"unknown table {section!r} (tables: {', '.join(FIDES_TABLES)})",
                file,
                index,
                (section,),
            )
            continue
        if not isinstance(entries, dict):
            _problem(problems, f"expected a [{section}] table", file, index, (section,))
            continue
        for ident, value in entries.items():
            path = (section, ident)
            if ident not in known[section]:
                _problem(
                    problems,
                    f"unknown {section} {ident!r} ({section} ids: {', '.join(known[section])})",
                    file,
                    index,
                    path,
                )
                continue
            line = index.find(path)
            if isinstance(value, str) and value:
                out[section][ident] = FidesEntry(value, line=line)
            elif (
                isinstance(value, dict)
                and set(value) == {"unmapped"}
                and isinstance(value["unmapped"], str)
                and value["unmapped"].strip()
            ):
                out[section][ident] = FidesEntry(None, value["unmapped"], line)
            else:
                _problem(
                    problems,
                    "expected a fideslang key (a string) or "
                    '{ unmapped = "why fideslang has no key for it" }',
                    file,
                    index,
                    path,
                )
    return out

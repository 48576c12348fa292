"""Load a policy folder of TOML rule files: structure, cross-check, compile.

Every problem in the folder is collected and reported at once as one :class:`PolicyError`,
each naming the file, the key path, the line where it can be found, and what was expected.
A policy that loads is internally consistent: every id it refers to exists, every condition
type-checks, every rule carries the notice's words (``clause``).
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import re
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import attrs

from fairproc.clock import WEEKDAYS, OfficeHours, zone
from fairproc.conditions import Condition, ConditionError, Kind, Vocabulary
from fairproc.conditions.vocabulary import vocabularies
from fairproc.errors import PolicyError, Problem, did_you_mean
from fairproc.model import (
    BASES,
    EVENT_EFFECTS,
    REACTIONS,
    BasisGrant,
    Category,
    Contact,
    EventKind,
    Fact,
    Policy,
    PolicyInfo,
    ProcessingRule,
    Purpose,
    Reaction,
    Recipient,
    RetentionRule,
    Right,
    RoutingRule,
    Rule,
    Safeguard,
    SharingRule,
    Source,
)
from fairproc.values import Value

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from cattrs import Converter

T = TypeVar("T")

# top-level TOML tables: keyed tables ([purpose.<id>]) and arrays of tables ([[retention]])
KEYED: dict[str, type] = {
    "category": Category,
    "source": Source,
    "purpose": Purpose,
    "recipient": Recipient,
    "safeguard": Safeguard,
    "right": Right,
    "event": EventKind,
    "fact": Fact,
}
ARRAYS: dict[str, type] = {
    "processing": ProcessingRule,
    "sharing": SharingRule,
    "routing": RoutingRule,
    "retention": RetentionRule,
    "reaction": Reaction,
}
# names of the record built into the condition language: a record fact may not take one
RECORD_NAMES = (
    "id",
    "subject",
    "source",
    "collected_at",
    "categories",
    "resolved_at",
    "erased_at",
    "suppressed",
)
SINGLE = ("policy", "controller", "dpo", "supervisory_authority", "office_hours")


@attrs.frozen(repr=False)
class _PolicyDoc(Value):
    id: str
    title: str
    timezone: str
    marketing_purpose: str | None = None
    email_category: str | None = None
    notice: str | None = None
    adequate_locations: tuple[str, ...] = ()
    version: str | None = None


@attrs.frozen(repr=False)
class _OfficeHoursDoc(Value):
    id: str
    clause: str
    days: tuple[str, ...]
    opens: dt.time
    closes: dt.time
    closed_dates: tuple[dt.date, ...] = ()
    note: str | None = None


def _condition_hook(value: Any, _: Any) -> Condition:
    if not isinstance(value, str):
        raise ValueError(f"expected a condition (a string), got {type(value).__name__} {value!r}")
    try:
        return Condition.pending(value)
    except ConditionError as exc:
        raise ValueError(exc.problems[0].message) from None


_hooked = False


def _converter() -> Converter:
    """fairproc's cattrs converter with the rule files' hooks: cattrs is imported on the first
    load that reads TOML (a policy found in the cache never needs it)."""
    global _hooked
    from fairproc.convert import converter

    if not _hooked:
        from cattrs.gen import make_dict_structure_fn, override

        converter.register_structure_hook(Condition, _condition_hook)
        converter.register_structure_hook(
            Condition | None, lambda v, _: None if v is None else _condition_hook(v, _)
        )
        converter.register_structure_hook(
            RetentionRule,
            make_dict_structure_fn(
                RetentionRule,
                converter,
                from_=override(rename="from"),
                _cattrs_forbid_extra_keys=True,
            ),
        )
        _hooked = True
    return converter


# --- finding lines ---------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', text)
    return tuple(p.strip("\"'") for p in parts)


class LineIndex:
    """Where each key path of a TOML file stands, found by reading its headers and keys."""

    def __init__(self, text: str):
        self.lines: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                name = _split_key(header.group(2))
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    table = (*name, index)
                else:
                    table = name
                # [a.b] also stands for a, which no header of its own may name
                for end in range(1, len(table) + 1):
                    self.lines.setdefault(table[:end], number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault((*table, *_split_key(key.group(1))), number)

    def find(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of the nearest enclosing key or table that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            # arrays of tables nested in keyed tables: [[purpose.x.bases]] indexes under its name
            path = path[:-1]
        return None


# --- loading ---------------------------------------------------------------------------------


def _rules() -> Traversable:
    """The folder of shipped policies: the package's own folder when installed as files (no
    need to import importlib.resources for it), else through importlib.resources."""
    import importlib

    for folder in importlib.import_module("fairproc.rules").__path__:
        if Path(folder).is_dir():  # not so inside a zip archive
            return Path(folder)
    from importlib import resources

    return resources.files("fairproc.rules")


def shipped_policies() -> list[str]:
    """Names of the policies that ship with fairproc."""
    root = _rules()
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith("_")
        and not (p / "law.toml").is_file()  # a law layer (fairproc.law), not a notice
        and any(c.name.endswith(".toml") for c in p.iterdir())
    )


def shipped_scenarios(name: str) -> Path | None:
    """The folder of scenarios that ships with the policy ``name`` (installed with the
    package, so they run outside a checkout), or None when no shipped policy has one."""
    if name not in shipped_policies():
        return None
    folder = _rules() / name / "scenarios"
    return Path(str(folder)) if folder.is_dir() else None


def resolve_policy_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    text = str(name_or_path)
    if "/" not in text and "\\" not in text:
        shipped = _rules() / text
        if shipped.is_dir():
            return Path(str(shipped))
        names = shipped_policies()
        raise PolicyError(
            [
                Problem(
                    f"no policy named {text!r}"
                    + did_you_mean(text, names)
                    + f" (shipped: {', '.join(names) or 'none'}; or give a path to a policy folder)"
                )
            ]
        )
    if candidate.exists():
        raise PolicyError([Problem("expected a folder of TOML rule files", file=str(candidate))])
    raise PolicyError([Problem("no such policy folder", file=str(candidate))])


_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], Policy] = {}


def load_policy(name_or_path: str | Path) -> Policy:
    """Load a shipped policy by name (``"flexioffices"``) or a policy folder by path.

    Loading the same unchanged folder again returns the same compiled policy.
    """
    folder = resolve_policy_path(name_or_path)
    files = sorted(p for p in folder.glob("*.toml") if p.is_file())
    # the notice too: the policy's digest covers it
    watched = [*files, *sorted(p for p in folder.glob("*.txt") if p.is_file())]
    signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in watched)
    key = (str(folder.resolve()), signature)
    cached = _cache.get(key)
    if cached is None:
        cached = _load_with_disk_cache(folder, files, watched)
        _cache[key] = cached
    return cached


# --- the compiled-policy cache ---------------------------------------------------------------
# Reading the TOML and structuring it (tomllib, cattrs) is most of a cold start's load. A policy
# that loaded without a problem is kept in the user's cache folder as its structured rules,
# with the exact bytes of the files it was read from; a later process whose files are byte for
# byte the same (and whose fairproc code is the same) takes the rules from there and only
# builds their conditions again. The cache holds a policy's own words, never personal data;
# FAIRPROC_CACHE_DIR names another folder, or turns the cache off when set empty.

CACHE_ENV = "FAIRPROC_CACHE_DIR"
_CACHE_FORMAT = 1  # raised whenever what an entry holds changes
_CACHE_LIMIT = 64  # entries kept; the oldest are removed past it


def policy_cache_dir() -> Path | None:
    """The folder loaded policies are cached in, or None when caching is off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    try:
        home = Path.home()
    except RuntimeError:  # no home folder to find: no cache
        return None
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        root = Path(local) if local else home / "AppData" / "Local"
    elif sys.platform == "darwin":
        root = home / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = Path(xdg) if xdg else home / ".cache"
    return root / "fairproc" / "policies"


class _Unbuilt(NamedTuple):
    """A condition as the cache keeps it: its text, built again against the policy when read
    (a built condition holds closures, which do not pickle)."""

    text: str


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Condition):
            return _Unbuilt, (obj.text,)
        if isinstance(obj, MappingProxyType):
            return MappingProxyType, (dict(obj),)
        return NotImplemented


def _code_stamp() -> tuple[Any, ...]:
    """What the cached rules depend on besides their files: this Python and fairproc's own
    modules (as installed, or as edited in a checkout)."""
    package = Path(__file__).parent
    with os.scandir(package) as entries:
        modules = sorted(
            (e.name, e.stat().st_mtime_ns, e.stat().st_size)
            for e in entries
            if e.name.endswith(".py")
        )
    return (_CACHE_FORMAT, sys.version, tuple(modules))


def _entry_path(folder: Path) -> Path | None:
    root = policy_cache_dir()
    if root is None:
        return None
    name = f"{zlib.crc32(str(folder.resolve()).encode()):08x}-{sys.implementation.cache_tag}"
    return root / f"{name}.pickle"


def _private(path: Path) -> bool:
    """Whether ``path`` (an entry, or the cache folder) is this user's and no one else can
    write it: a cache entry is unpickled, so only the user's own files are read."""
    if os.name != "posix":
        return True
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _file_bytes(folder: Path, names: Iterable[str]) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}


def _load_with_disk_cache(folder: Path, files: Sequence[Path], watched: Sequence[Path]) -> Policy:
    entry_path = _entry_path(folder)
    if entry_path is not None:
        try:
            policy = _from_cache(entry_path, folder, files, watched)
        except Exception:  # an unreadable or stale entry is a miss; loading decides
            policy = None
        if policy is not None:
            return policy
    loader = _Loader(folder, files)
    policy = loader.load()
    if entry_path is not None and loader.structured is not None:
        notice = policy.info.notice
        names = [*(p.name for p in watched), *([notice] if notice else [])]
        _store(
            entry_path,
            {
                "code": _code_stamp(),
                "files": _file_bytes(folder, names),
                "policy": loader.structured,
            },
        )
    return policy


def _from_cache(
    entry_path: Path, folder: Path, files: Sequence[Path], watched: Sequence[Path]
) -> Policy | None:
    if not entry_path.is_file() or not (_private(entry_path) and _private(entry_path.parent)):
        return None
    with entry_path.open("rb") as stream:
        entry = pickle.load(stream)
    structured: Policy = entry["policy"]
    notice = structured.info.notice
    names = [*(p.name for p in watched), *([notice] if notice else [])]
    if entry["code"] != _code_stamp() or entry["files"] != _file_bytes(folder, names):
        return None
    loader = _Loader(folder, files)
    structured = attrs.evolve(structured, path=str(folder))
    loader.sharing = [(r, "", ()) for r in structured.sharing]
    loader.reactions = [(r, "", ()) for r in structured.reactions]
    policy = loader.compile(
        structured,
        [(r, "", ()) for r in structured.processing],
        [(r, "", ()) for r in structured.routing],
        [(r, "", ()) for r in structured.retention],
    )
    return None if loader.problems else policy


def _store(entry_path: Path, entry: dict[str, Any]) -> None:
    """Write ``entry`` atomically; a cache that cannot be written is left alone (it only
    saves time)."""
    writer = f"{os.getpid()}.{threading.get_ident()}"  # two writers never share a file
    temporary = entry_path.with_name(f".{entry_path.name}.{writer}.tmp")
    try:
        entry_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(entry_path.parent):
            return
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as stream:
            _Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL).dump(entry)
        os.replace(temporary, entry_path)
        entries = sorted(entry_path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
        for stale in entries[:-_CACHE_LIMIT]:
            stale.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        temporary.unlink(missing_ok=True)


class _Loader:
    def __init__(self, folder: Path, files: Sequence[Path]):
        self.folder = folder
        self.files = files
        self.problems: list[Problem] = []
        self.reactions: list[tuple[Reaction, str, tuple[str | int, ...]]] = []
        self.sharing: list[tuple[SharingRule, str, tuple[str | int, ...]]] = []
        self.index: dict[str, LineIndex] = {}
        self.origin: dict[tuple[str, ...], str] = {}  # (section[, id]) -> file it came from
        # the policy as structured, before its conditions are built: what the cache keeps
        self.structured: Policy | None = None

    # -- reporting --

    def problem(self, message: str, file: str | None, path: Sequence[str | int]) -> None:
        line = self.index[file].find(path) if file in self.index else None
        self.problems.append(Problem(message, file=file, path=tuple(path), line=line))

    def add(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            message = p.message
            if p.path and p.path[-1] == "clause" and message == "required key is missing":
                message = "every rule needs clause: the words of the notice it encodes"
            self.problem(message, p.file, p.path)

    def digest(self, notice: str | None) -> str:
        """sha256 over the rule files and the notice, each by name and bytes, in name order."""
        files = list(self.files)
        if notice is not None and (self.folder / notice).is_file():
            files.append(self.folder / notice)
        import hashlib  # only when the rule files are read, not when the cache answers

        sha = hashlib.sha256()
        for path in sorted(files, key=lambda p: p.name):
            content = path.read_bytes()
            sha.update(f"{path.name}\0{len(content)}\0".encode())
            sha.update(content)
        return "sha256:" + sha.hexdigest()

    def file_of(self, *key: str) -> str | None:
        return self.origin.get(key) or self.origin.get(key[:1])

    # -- passes --

    def read(self) -> dict[str, Any]:
        import tomllib  # only when the rule files are read, not when the cache answers

        merged: dict[str, Any] = {}
        if not self.files:
            self.problems.append(
                Problem("no *.toml rule files in the policy folder", file=str(self.folder))
            )
        for path in self.files:
            name = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.problems.append(Problem(f"cannot be read: {exc}", file=name))
                continue
            self.index[name] = LineIndex(text)
            try:
                doc = tomllib.loads(text)
            except (tomllib.TOMLDecodeError, RecursionError) as exc:
                # RecursionError: arrays or tables nested deeper than the parser can go.
                # tomllib says "(at line N, column M)", or "(at end of document)": the last line.
                match = re.search(r"line (\d+)", str(exc))
                line = int(match.group(1)) if match else max(1, len(text.splitlines()))
                self.problems.append(Problem(f"is not valid TOML: {exc}", file=name, line=line))
                continue
            for section, value in doc.items():
                if section not in KEYED and section not in ARRAYS and section not in SINGLE:
                    known = sorted([*KEYED, *ARRAYS, *SINGLE])
                    self.problem(
                        f"unknown section {section!r}"
                        + did_you_mean(section, known)
                        + f" (sections: {', '.join(known)})",
                        name,
                        (section,),
                    )
                    continue
                if section in ARRAYS:
                    if not isinstance(value, list):
                        self.problem(f"expected [[{section}]] tables", name, (section,))
                        continue
                    merged.setdefault(section, [])
                    for i, item in enumerate(value):
                        merged[section].append((name, i, item))
                    continue
                if section in SINGLE:
                    if section in merged:
                        self.problem(
                            f"[{section}] is also given in {self.origin[(section,)]}",
                            name,
                            (section,),
                        )
                        continue
                    merged[section] = value
                    self.origin[(section,)] = name
                    continue
                if not isinstance(value, dict):
                    self.problem(f"expected [{section}.<id>] tables", name, (section,))
                    continue
                bucket = merged.setdefault(section, {})
                for ident, table in value.items():
                    if ident in bucket:
                        self.problem(
                            f"duplicate {section} id {ident!r} (first given in "
                            f"{self.origin[(section, ident)]})",
                            name,
                            (section, ident),
                        )
                        continue
                    bucket[ident] = table
                    self.origin[(section, ident)] = name
        return merged

    def structure(
        self, data: Any, cl: type[T], file: str | None, path: tuple[str | int, ...]
    ) -> T | None:
        try:
            return _converter().structure(data, cl)
        except Exception as exc:  # cattrs gathers every failure of the entry
            from fairproc.convert import problems_from

            self.add(problems_from(exc, path, file))
            return None

    def keyed(self, merged: Mapping[str, Any], section: str, cl: type[T]) -> dict[str, T]:
        out: dict[str, T] = {}
        for ident, table in merged.get(section, {}).items():
            file = self.file_of(section, ident)
            if not isinstance(table, dict):
                self.problem("expected a table", file, (section, ident))
                continue
            if "id" in table:
                self.problem(
                    "the id is the table's name; remove the id key", file, (section, ident, "id")
                )
                continue
            if not re.fullmatch(r"[a-z][a-z0-9_]*", ident):
                self.problem(
                    "ids are lower-case words joined by _ (such as quick_quote)",
                    file,
                    (section, ident),
                )
            value = self.structure({"id": ident, **table}, cl, file, (section, ident))
            if value is not None:
                out[ident] = value
        return out

    def arrays(
        self, merged: Mapping[str, Any], section: str, cl: type[T]
    ) -> list[tuple[T, str, tuple[str | int, ...]]]:
        out: list[tuple[T, str, tuple[str | int, ...]]] = []
        seen: dict[str, str] = {}
        for file, i, table in merged.get(section, []):
            path: tuple[str | int, ...] = (section, i)
            value = self.structure(table, cl, file, path)
            if value is None:
                continue
            ident = value.id  # type: ignore[attr-defined]
            if ident in seen:
                self.problem(
                    f"duplicate rule id {ident!r} (first given in {seen[ident]})",
                    file,
                    (*path, "id"),
                )
                continue
            seen[ident] = file
            out.append((value, file, path))
        return out

    def load(self) -> Policy:
        merged = self.read()
        info_doc = None
        policy_file = self.file_of("policy")
        if "policy" not in merged:
            self.problems.append(
                Problem(
                    "no [policy] table (id, title, timezone) in any rule file",
                    file=str(self.folder),
                )
            )
        else:
            info_doc = self.structure(merged["policy"], _PolicyDoc, policy_file, ("policy",))
        contacts: dict[str, Contact | None] = {}
        for section in ("controller", "dpo", "supervisory_authority"):
            table = merged.get(section)
            contacts[section] = (
                None
                if table is None
                else self.structure(table, Contact, self.file_of(section), (section,))
            )
        hours_doc = None
        if "office_hours" in merged:
            hours_doc = self.structure(
                merged["office_hours"],
                _OfficeHoursDoc,
                self.file_of("office_hours"),
                ("office_hours",),
            )

        categories = self.keyed(merged, "category", Category)
        sources = self.keyed(merged, "source", Source)
        purposes = self.keyed(merged, "purpose", Purpose)
        recipients = self.keyed(merged, "recipient", Recipient)
        safeguards = self.keyed(merged, "safeguard", Safeguard)
        rights = self.keyed(merged, "right", Right)
        events = self.keyed(merged, "event", EventKind)
        facts = self.keyed(merged, "fact", Fact)
        processing = self.arrays(merged, "processing", ProcessingRule)
        self.sharing = self.arrays(merged, "sharing", SharingRule)
        routing = self.arrays(merged, "routing", RoutingRule)
        retention = self.arrays(merged, "retention", RetentionRule)
        self.reactions = self.arrays(merged, "reaction", Reaction)

        tz_name = info_doc.timezone if info_doc else "UTC"
        try:
            zone(tz_name)
        except ValueError as exc:
            self.problem(str(exc), policy_file, ("policy", "timezone"))
            tz_name = "UTC"

        hours = hours_rule = None
        if hours_doc is not None:
            file = self.file_of("office_hours")
            days = set()
            for i, day in enumerate(hours_doc.days):
                if day.lower() not in WEEKDAYS:
                    self.problem(
                        f"expected a weekday name ({', '.join(WEEKDAYS)}), got {day!r}",
                        file,
                        ("office_hours", "days", i),
                    )
                else:
                    days.add(WEEKDAYS.index(day.lower()))
            if hours_doc.opens >= hours_doc.closes:
                self.problem("opens must be before closes", file, ("office_hours", "closes"))
            hours = OfficeHours(
                frozenset(days),
                hours_doc.opens,
                hours_doc.closes,
                frozenset(hours_doc.closed_dates),
            )
            hours_rule = Rule(hours_doc.id, hours_doc.clause, hours_doc.note)

        controller = contacts["controller"]
        if controller is None and "controller" not in merged:
            self.problems.append(
                Problem("no [controller] table: who the controller is", file=str(self.folder))
            )
        info = PolicyInfo(
            id=info_doc.id if info_doc else self.folder.name,
            title=info_doc.title if info_doc else self.folder.name,
            timezone=tz_name,
            controller=controller or Contact(name="?"),
            dpo=contacts["dpo"],
            supervisory_authority=contacts["supervisory_authority"],
            office_hours=hours,
            office_hours_rule=hours_rule,
            marketing_purpose=info_doc.marketing_purpose if info_doc else None,
            email_category=info_doc.email_category if info_doc else None,
            notice=info_doc.notice if info_doc else None,
            version=info_doc.version if info_doc else None,
        )
        policy = Policy(
            info=info,
            categories=categories,
            sources=sources,
            purposes=purposes,
            processing=tuple(r for r, _, _ in processing),
            recipients=recipients,
            safeguards=safeguards,
            routing=tuple(r for r, _, _ in routing),
            retention=tuple(r for r, _, _ in retention),
            reactions=tuple(r for r, _, _ in self.reactions),
            sharing=tuple(r for r, _, _ in self.sharing),
            rights=rights,
            events=events,
            facts=facts,
            adequate_locations=info_doc.adequate_locations if info_doc else (),
            path=str(self.folder),
            digest=self.digest(info_doc.notice if info_doc else None),
        )
        self.cross_check(policy, processing, routing, retention)
        structured = policy
        # Compile even when problems were found, so condition errors are reported with them.
        policy = self.compile(policy, processing, routing, retention)
        if self.problems:
            raise PolicyError(self.problems)
        self.structured = structured
        return policy

    # -- cross references --

    def ids(
        self,
        known: Iterable[str],
        what: str,
        values: Iterable[str] | str | None,
        file: str | None,
        path: tuple[str | int, ...],
    ) -> None:
        """Report each of ``values`` not in ``known``: a list's items at ``path[i]``, a single
        id (a string) at ``path`` itself."""
        if values is None:
            return
        known = list(known)
        items = (
            [(path, values)]
            if isinstance(values, str)
            else [((*path, i), value) for i, value in enumerate(values)]
        )
        for at, value in items:
            if value not in known:
                self.problem(
                    f"unknown {what} {value!r}"
                    + did_you_mean(value, known)
                    + f" (known: {', '.join(sorted(known)) or 'none'})",
                    file,
                    at,
                )

    def cross_check(
        self,
        policy: Policy,
        processing: Sequence[tuple[ProcessingRule, str, Any]],
        routing: Sequence[tuple[RoutingRule, str, Any]],
        retention: Sequence[tuple[RetentionRule, str, Any]],
    ) -> None:
        cats, srcs = list(policy.categories), list(policy.sources)
        for reaction, rfile, rpath in self.reactions:
            if reaction.on not in ("record", "event"):
                self.problem(
                    f"on is 'record' (a record collected) or 'event' (an event posted), "
                    f"got {reaction.on!r}",
                    rfile,
                    (*rpath, "on"),
                )
            if reaction.do not in REACTIONS:
                self.problem(
                    f"unknown reaction {reaction.do!r}{did_you_mean(reaction.do, REACTIONS)} "
                    f"(known: {', '.join(REACTIONS)})",
                    rfile,
                    (*rpath, "do"),
                )
            if reaction.do in ("record_objection", "record_restriction") and reaction.on != "event":
                self.problem(
                    f"do = {reaction.do!r} reacts to an event: on = 'event'",
                    rfile,
                    (*rpath, "on"),
                )
            if reaction.do == "route" and reaction.on != "record":
                self.problem(
                    "do = 'route' reacts to a record: on = 'record'", rfile, (*rpath, "on")
                )
        for s in policy.sources.values():
            self.ids(
                cats,
                "category",
                s.categories,
                self.file_of("source", s.id),
                ("source", s.id, "categories"),
            )
        for p in policy.purposes.values():
            file = self.file_of("purpose", p.id)
            self.ids(cats, "category", p.categories, file, ("purpose", p.id, "categories"))
            if not p.bases:
                self.problem(
                    "a purpose needs at least one [[purpose.<id>.bases]] entry: "
                    "its lawful basis and the sources it covers",
                    file,
                    ("purpose", p.id),
                )
            for i, g in enumerate(p.bases):
                self.ids(
                    BASES, "lawful basis", g.basis, file, ("purpose", p.id, "bases", i, "basis")
                )
                self.ids(srcs, "source", g.sources, file, ("purpose", p.id, "bases", i, "sources"))
        for rule, file, path in processing:
            self.ids(policy.purposes, "purpose", rule.purposes, file, (*path, "purposes"))
            self.ids(BASES, "lawful basis", rule.bases, file, (*path, "bases"))
        for share, file, path in self.sharing:
            self.ids(policy.recipients, "recipient", share.recipients, file, (*path, "recipients"))
        for r in policy.recipients.values():
            file = self.file_of("recipient", r.id)
            self.ids(cats, "category", r.categories, file, ("recipient", r.id, "categories"))
            if r.requires_purpose is not None:
                self.ids(
                    policy.purposes,
                    "purpose",
                    r.requires_purpose,
                    file,
                    ("recipient", r.id, "requires_purpose"),
                )
            self.ids(
                policy.safeguards,
                "safeguard",
                r.safeguards,
                file,
                ("recipient", r.id, "safeguards"),
            )
        for route, file, path in routing:
            self.ids(srcs, "source", route.sources, file, (*path, "sources"))
        retention_ids = [r.id for r, _, _ in retention]
        for keep, file, path in retention:
            self.ids(srcs, "source", keep.sources, file, (*path, "sources"))
            if keep.applies_to not in ("records", "suppression"):
                self.problem(
                    f"applies_to is 'records' or 'suppression', got {keep.applies_to!r}",
                    file,
                    (*path, "applies_to"),
                )
            modes = [keep.keep is not None, keep.review, keep.forever]
            if sum(modes) != 1:
                self.problem(
                    "a retention rule gives exactly one of keep (a period), "
                    "review = true (no period declared) or forever = true",
                    file,
                    path,
                )
            if keep.keep is not None and keep.from_ is None:
                self.problem(
                    "keep needs from: the instant the period counts from "
                    "(such as record.collected_at)",
                    file,
                    (*path, "keep"),
                )
            if keep.action not in ("delete", "anonymise"):
                self.problem(
                    f"action is 'delete' or 'anonymise', got {keep.action!r}",
                    file,
                    (*path, "action"),
                )
        for right in policy.rights.values():
            file = self.file_of("right", right.id)
            at = ("right", right.id)
            self.ids(BASES, "lawful basis", right.bases, file, (*at, "bases"))
            self.ids(BASES, "lawful basis", right.refers_to_bases, file, (*at, "refers_to_bases"))
            self.ids(srcs, "source", right.erase_sources, file, (*at, "erase_sources"))
            self.ids(retention_ids, "retention rule", right.kept_by, file, (*at, "kept_by"))
        for e in policy.events.values():
            self.ids(
                EVENT_EFFECTS,
                "event effect",
                e.effects,
                self.file_of("event", e.id),
                ("event", e.id, "effects"),
            )
        for f in policy.facts.values():
            file = self.file_of("fact", f.id)
            if (f.latest is None) == (f.latest_of is None):
                self.problem(
                    "a fact gives exactly one of latest = [kinds] (when it last "
                    "happened) or latest_of = [kinds] (which happened last)",
                    file,
                    ("fact", f.id),
                )
            self.ids(policy.events, "event kind", f.latest, file, ("fact", f.id, "latest"))
            self.ids(policy.events, "event kind", f.latest_of, file, ("fact", f.id, "latest_of"))
            built_in = RECORD_NAMES if f.of_record else ("id", "suppressed", "restricted")
            if f.id in built_in:
                self.problem(f"{f.name} is built in; choose another fact id", file, ("fact", f.id))
            if f.of_record and (f.latest is None or f.collections):
                self.problem(
                    "a fact of the record (of_record = true) gives latest = [kinds] of events "
                    "that name a record, and no collections",
                    file,
                    ("fact", f.id),
                )
        pfile = self.file_of("policy")
        if policy.info.marketing_purpose is not None:
            self.ids(
                policy.purposes,
                "purpose",
                policy.info.marketing_purpose,
                pfile,
                ("policy", "marketing_purpose"),
            )
        if policy.info.email_category is not None:
            self.ids(
                cats, "category", policy.info.email_category, pfile, ("policy", "email_category")
            )
        seen: dict[str, str] = {}
        for rule_id in [
            *(p.rule_id for p in policy.purposes.values()),
            *(r.id for r in policy.processing),
            *(r.id for r in policy.sharing),
            *(r.id for r in policy.routing),
            *retention_ids,
            *(r.rule_id for r in policy.recipients.values()),
            *(s.rule_id for s in policy.safeguards.values()),
            *(r.rule_id for r in policy.rights.values()),
            *([hours.id] if (hours := policy.info.office_hours_rule) else []),
        ]:
            if rule_id in seen:
                self.problems.append(Problem(f"rule id {rule_id!r} is used twice"))
            seen[rule_id] = rule_id
        for rule in self.all_rules(policy):
            clause = getattr(rule, "clause", None)
            if isinstance(clause, str) and not clause.strip():
                self.problems.append(
                    Problem(
                        f"rule {getattr(rule, 'id', '?')!r}: clause is empty; give the notice's "
                        "words it encodes"
                    )
                )

    @staticmethod
    def all_rules(policy: Policy) -> Iterable[Any]:
        yield from policy.categories.values()
        yield from policy.sources.values()
        yield from policy.purposes.values()
        yield from policy.processing
        yield from policy.sharing
        yield from policy.recipients.values()
        yield from policy.safeguards.values()
        yield from policy.routing
        yield from policy.retention
        yield from policy.rights.values()
        yield from policy.events.values()
        yield from policy.facts.values()

    # -- compiling conditions --

    def compile(
        self,
        policy: Policy,
        processing: Sequence[tuple[ProcessingRule, str, Any]],
        routing: Sequence[tuple[RoutingRule, str, Any]],
        retention: Sequence[tuple[RetentionRule, str, Any]],
    ) -> Policy:
        vocabs = vocabularies(policy)
        tz = policy.tz

        def build(
            cond: Condition | None,
            context: str,
            file: str | None,
            path: tuple[str | int, ...],
            expect: Kind = Kind.BOOL,
        ) -> Condition | None:
            if cond is None:
                return None
            vocab: Vocabulary = vocabs[context]
            try:
                return Condition.build(cond.text, vocab, tz, expect)
            except ConditionError as exc:
                self.problem(exc.problems[0].message, file, path)
                return cond

        def evolve_all(
            items: Sequence[tuple[T, str, Any]], fn: Callable[[T, str, tuple[str | int, ...]], T]
        ) -> tuple[T, ...]:
            return tuple(fn(item, file, path) for item, file, path in items)

        purposes = {}
        for p in policy.purposes.values():
            file = self.file_of("purpose", p.id)
            bases = tuple(
                attrs.evolve(
                    g, when=build(g.when, "grant", file, ("purpose", p.id, "bases", i, "when"))
                )
                for i, g in enumerate(p.bases)
            )
            purposes[p.id] = attrs.evolve(p, bases=bases)
        recipients = {
            r.id: attrs.evolve(
                r,
                when=build(
                    r.when, "sharing", self.file_of("recipient", r.id), ("recipient", r.id, "when")
                ),
            )
            for r in policy.recipients.values()
        }
        return attrs.evolve(
            policy,
            purposes=purposes,
            recipients=recipients,
            processing=evolve_all(
                processing,
                lambda r, f, p: attrs.evolve(
                    r, require=build(r.require, "processing", f, (*p, "require")) or r.require
                ),
            ),
            sharing=evolve_all(
                self.sharing,
                lambda r, f, p: attrs.evolve(
                    r, require=build(r.require, "sharing", f, (*p, "require")) or r.require
                ),
            ),
            routing=evolve_all(
                routing,
                lambda r, f, p: attrs.evolve(
                    r,
                    when=build(r.when, "routing", f, (*p, "when")),
                    due=build(r.due, "routing", f, (*p, "due"), Kind.INSTANT),
                ),
            ),
            retention=evolve_all(
                retention,
                lambda r, f, p: attrs.evolve(
                    r,
                    when=build(r.when, "retention", f, (*p, "when")),
                    from_=build(r.from_, "retention", f, (*p, "from"), Kind.INSTANT),
                ),
            ),
            reactions=evolve_all(
                self.reactions,
                lambda r, f, p: attrs.evolve(
                    r,
                    when=build(
                        r.when,
                        "reaction_event" if r.on == "event" else "reaction_record",
                        f,
                        (*p, "when"),
                    ),
                ),
            ),
        )


# BasisGrant is structured as part of Purpose; keep the import used for type checkers.
_ = BasisGrant

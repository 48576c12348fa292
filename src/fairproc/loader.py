"""Load a policy folder of TOML rule files: find it, take it from the compiled-policy cache or
read it (:mod:`fairproc.rule_files`: structure, cross-check), and build its conditions.

Every problem in the folder is collected and reported at once as one :class:`PolicyError`,
each naming the file, the key path, the line where it can be found, and what was expected.
A policy that loads is internally consistent: every id it refers to exists, every condition
type-checks, every rule carries the notice's words (``clause``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import attrs

from fairproc.conditions import Condition, ConditionError, Kind, Vocabulary
from fairproc.conditions.vocabulary import vocabularies
from fairproc.errors import PolicyError, Problem, did_you_mean
from fairproc.model import (
    Policy,
    ProcessingRule,
    Reaction,
    RetentionRule,
    RoutingRule,
    SharingRule,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path

    from fairproc.toml_lines import LineIndex

T = TypeVar("T")


# --- loading ---------------------------------------------------------------------------------
# The path from ``import fairproc`` to a loaded policy works on plain strings (os.path): pathlib
# and its imports are a sixteenth of a cold start, and the functions that hand a Path out import
# it when called.


def _rules_folder() -> str | None:
    """The folder of shipped policies when the package is installed as files, or None
    (inside a zip archive)."""
    import importlib

    for folder in importlib.import_module("fairproc.rules").__path__:
        if os.path.isdir(folder):
            return str(folder)
    return None


def _rules() -> Traversable:
    """The folder of shipped policies: the package's own folder when installed as files, else
    through importlib.resources."""
    folder = _rules_folder()
    if folder is not None:
        from pathlib import Path

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
    from pathlib import Path

    if name not in shipped_policies():
        return None
    folder = _rules() / name / "scenarios"
    return Path(str(folder)) if folder.is_dir() else None


def resolve_policy_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The policy folder a name (a shipped policy) or a path names; PolicyError if none."""
    from pathlib import Path

    return Path(_policy_folder(name_or_path))


def _policy_folder(name_or_path: str | os.PathLike[str]) -> str:
    """:func:`resolve_policy_path` as a string (what loading works on)."""
    text = os.fspath(name_or_path)
    candidate = os.path.normpath(text or ".")
    if os.path.isdir(candidate):
        return candidate
    if "/" not in text and "\\" not in text:
        rules = _rules_folder()
        if rules is not None:
            shipped = os.path.join(rules, text)
            found = os.path.isdir(shipped)
        else:  # inside a zip archive
            inside = _rules() / text
            shipped, found = str(inside), inside.is_dir()
        if found:
            return shipped
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
    if os.path.exists(candidate):
        raise PolicyError([Problem("expected a folder of TOML rule files", file=candidate)])
    raise PolicyError([Problem("no such policy folder", file=candidate)])


def _files_named(folder: str, *suffixes: str) -> list[str]:
    """The files in ``folder`` whose names end in one of ``suffixes``, in name order, as
    ``Path.glob("*.toml")`` finds them (hidden ones too; letter case as the platform has it)."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if os.path.normcase(e.name).endswith(suffixes)]
    paths = [os.path.join(folder, n) for n in sorted(names)]
    return [p for p in paths if os.path.isfile(p)]


_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], Policy] = {}


def load_policy(name_or_path: str | os.PathLike[str]) -> Policy:
    """Load a shipped policy by name (``"flexioffices"``) or a policy folder by path.

    Loading the same unchanged folder again returns the same compiled policy.
    """
    folder = _policy_folder(name_or_path)
    files = _files_named(folder, ".toml")
    # the notice too: the policy's digest covers it
    watched = [*files, *_files_named(folder, ".txt")]
    signature = tuple(
        (os.path.basename(p), st.st_mtime_ns, st.st_size) for p in watched for st in [os.stat(p)]
    )
    key = (os.path.realpath(folder), signature)
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

    from pathlib import Path

    folder = _cache_folder()
    return None if folder is None else Path(folder)


def _cache_folder() -> str | None:
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return configured or None
    home = os.path.expanduser("~")
    if home == "~":  # no home folder to find: no cache
        return None
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        root = os.path.join(home, "Library", "Caches")
    else:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(root, "fairproc", "policies")


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
    with os.scandir(os.path.dirname(os.path.abspath(__file__))) as entries:
        modules = sorted(
            (e.name, e.stat().st_mtime_ns, e.stat().st_size)
            for e in entries
            if e.name.endswith(".py")
        )
    return (_CACHE_FORMAT, sys.version, tuple(modules))


def _entry_path(folder: str) -> str | None:
    root = _cache_folder()
    if root is None:
        return None
    name = f"{zlib.crc32(os.path.realpath(folder).encode()):08x}-{sys.implementation.cache_tag}"
    return os.path.join(root, f"{name}.pickle")


def _private(path: str) -> bool:
    """Whether ``path`` (an entry, or the cache folder) is this user's and no one else can
    write it: a cache entry is unpickled, so only the user's own files are read."""
    if os.name != "posix":
        return True
    st = os.stat(path)
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def file_bytes(folder: str, names: Iterable[str]) -> dict[str, bytes]:
    found = {}
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as stream:
                found[name] = stream.read()
    return found


def _load_with_disk_cache(folder: str, files: Sequence[str], watched: Sequence[str]) -> Policy:
    entry_path = _entry_path(folder)
    if entry_path is not None:
        try:
            policy = _from_cache(entry_path, folder, files, watched)
        except Exception:  # an unreadable or stale entry is a miss; loading decides
            policy = None
        if policy is not None:
            return policy
    from fairproc.rule_files import PolicyReader

    loader = PolicyReader(folder, files)
    policy = loader.load()
    if entry_path is not None and loader.structured is not None:
        notice = policy.info.notice
        names = [*map(os.path.basename, watched), *([notice] if notice else [])]
        _store(
            entry_path,
            {
                "code": _code_stamp(),
                "files": file_bytes(folder, names),
                "policy": loader.structured,
            },
        )
    return policy


def _from_cache(
    entry_path: str, folder: str, files: Sequence[str], watched: Sequence[str]
) -> Policy | None:
    if not os.path.isfile(entry_path):
        return None
    if not (_private(entry_path) and _private(os.path.dirname(entry_path))):
        return None
    with open(entry_path, "rb") as stream:
        entry = pickle.load(stream)
    structured: Policy = entry["policy"]
    notice = structured.info.notice
    names = [*map(os.path.basename, watched), *([notice] if notice else [])]
    if entry["code"] != _code_stamp() or entry["files"] != file_bytes(folder, names):
        return None
    loader = PolicyCompiler(folder, files)
    structured = attrs.evolve(structured, path=folder)
    loader.sharing = [(r, "", ()) for r in structured.sharing]
    loader.reactions = [(r, "", ()) for r in structured.reactions]
    policy = loader.compile(
        structured,
        [(r, "", ()) for r in structured.processing],
        [(r, "", ()) for r in structured.routing],
        [(r, "", ()) for r in structured.retention],
    )
    return None if loader.problems else policy


def _store(entry_path: str, entry: dict[str, Any]) -> None:
    """Write ``entry`` atomically; a cache that cannot be written is left alone (it only
    saves time)."""
    writer = f"{os.getpid()}.{threading.get_ident()}"  # two writers never share a file
    folder = os.path.dirname(entry_path)
    temporary = os.path.join(folder, f".{os.path.basename(entry_path)}.{writer}.tmp")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _private(folder):
            return
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as stream:
            _Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL).dump(entry)
        os.replace(temporary, entry_path)
        entries = sorted(
            (os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".pickle")),
            key=os.path.getmtime,
        )
        for stale in entries[:-_CACHE_LIMIT]:
            _unlink(stale)
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        _unlink(temporary)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class PolicyCompiler:
    """Builds a structured policy's conditions against its vocabularies, collecting each
    problem with its file, key path and line. The loader uses it alone on a policy from the
    cache; :class:`fairproc.rule_files.PolicyReader` extends it to read the rule files."""

    def __init__(self, folder: str, files: Sequence[str]):
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

    def file_of(self, *key: str) -> str | None:
        return self.origin.get(key) or self.origin.get(key[:1])

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

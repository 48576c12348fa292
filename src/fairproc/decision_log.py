"""A decision log: one JSON line per decision an engine takes, to show months later why.

``Engine(policy, store, log=DecisionLog("decisions.jsonl"))`` writes, for every question asked
of that engine (``may_process``, ``route``, ``may_share``, ``transfer``, ``may_email``,
``retention``) and every data-subject request planned with it, one line holding: an id, the
decision's instant, the policy's id, version and content hash, the question and what was asked
(ids only), the outcome, the rules that took part, and the inputs the decision read, masked:
the subject's records by id, source, collection instant and the categories they hold, and the
subject's events by kind and instant. Never a value of a category: no name, no address, no
email address; the suppression list (email addresses) is not logged at all.

Only the question asked from outside is logged: the questions a request or another question
asks on the way are part of it. Each line carries the sha256 of the line before it (``prev``),
so a line edited, inserted or removed later breaks the chain, and :func:`verify` says where.

:func:`verify` also checks each line against the policy it is given (its version and content
hash must be those logged) and, given a store, re-runs each logged question whose inputs the
store still holds as logged, and compares the outcome, rules, reasons and dates.

Lines are appended and flushed one at a time under a lock; ``sync=True`` also fsyncs each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs

from fairproc.convert import converter
from fairproc.decisions import Decision
from fairproc.engine import Engine
from fairproc.errors import FairprocError, PolicyError, Problem, ProblemsError
from fairproc.model import Policy, Record
from fairproc.scenarios.asks import ASKS, explainable
from fairproc.values import Value

QUESTIONS = tuple(explainable())  # the engine's own questions: one decision each
FORMAT = "fairproc-decision-log/1"

_T = TypeVar("_T")


class LogError(ProblemsError):
    kind = "decision log"


def _instant(value: dt.datetime) -> str:
    return str(converter.unstructure(value))


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _masked(value: Any) -> Any:
    """What was asked, with anything but an id or a flag reduced to its shape: a mapping keeps
    its keys (record ids, category names), never its values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _masked_keys(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_masked(v) for v in value]
    return "(masked)"


def _masked_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return sorted(str(k) for k in value)
    return "(masked)"


def record_inputs(record: Record) -> dict[str, Any]:
    """A record as a decision log holds it: what it is, never what it says."""
    return {
        "id": record.id,
        "source": record.source,
        "collected_at": _instant(record.collected_at),
        "categories": sorted(record.categories),
    }


def inputs(
    engine: Engine, asked: Mapping[str, Any], given: Sequence[Record] = ()
) -> dict[str, Any]:
    """The masked inputs of a question: for each subject it is about, the subject's records
    and events as the engine's store holds them (and a record passed in, not in the store)."""
    subjects: list[str] = []
    out: dict[str, Any] = {}
    record_id = asked.get("record")
    if isinstance(record_id, str):
        passed = next((r for r in given if r.id == record_id), None)
        held = engine.store.get_record(record_id)
        if passed is not None and passed != held:
            out["record_given"] = record_inputs(passed)
        found = passed or held
        if found is not None:
            subjects.append(found.subject)
    subject = asked.get("subject")
    if isinstance(subject, str):
        subjects.append(subject)
    about: dict[str, Any] = {}
    for name in dict.fromkeys(subjects):
        history = engine.history(name)
        about[name] = {
            "records": [record_inputs(r) for r in sorted(history.records, key=lambda r: r.id)],
            "events": [
                {
                    k: v
                    for k, v in (
                        ("kind", e.kind),
                        ("at", _instant(e.at)),
                        ("record", e.record),
                        ("purpose", e.purpose),
                    )
                    if v is not None
                }
                for e in history.events
            ],
        }
    if about:
        out["subjects"] = about
    return out


def entry(engine: Engine, decision: Decision, given: Sequence[Record] = ()) -> dict[str, Any]:
    """The log line for ``decision``, taken by ``engine``, as a dict."""
    policy = engine.policy
    out: dict[str, Any] = {
        "format": FORMAT,
        "id": uuid.uuid4().hex,
        "at": _instant(decision.at),
        "policy": {"id": policy.id, "version": policy.info.version, "digest": policy.digest},
        **({"law": engine.law.law.id} if engine.law is not None else {}),
        "question": decision.question,
        "asked": {k: _masked(v) for k, v in decision.asked.items()},
        "outcome": decision.outcome,
        "rules": list(decision.rules),
    }
    if decision.reasons:
        out["reasons"] = list(decision.reasons)
    for key in ("until", "due"):
        value = getattr(decision, key)
        if value is not None:
            out[key] = _instant(value)
    if decision.basis is not None:
        out["basis"] = decision.basis
    if decision.categories is not None:
        out["categories"] = list(decision.categories)
    if decision.per_record:
        out["records"] = dict(decision.per_record)
    out["inputs"] = inputs(engine, decision.asked, given)
    return out


class DecisionLog:
    """Appends one JSON line per decision to a file (created if missing, else continued)."""

    def __init__(self, path: str | Path, *, sync: bool = False):
        self.path = Path(path)
        self.sync = sync
        self._lock = threading.Lock()
        self._local = threading.local()
        self._prev = _last_line_hash(self.path)
        self._file: IO[str] | None = None
        self.written = 0

    def attach(self, engine: Engine) -> None:
        """Wrap ``engine``'s questions (on that engine only) so each decision is logged."""
        for name in QUESTIONS:
            setattr(engine, name, self._logged_question(engine, getattr(engine, name)))

    def _logged_question(
        self, engine: Engine, question: Callable[..., Decision]
    ) -> Callable[..., Decision]:
        def logged(*args: Any, **kwargs: Any) -> Decision:
            given = [a for a in (*args, *kwargs.values()) if isinstance(a, Record)]
            return self._around(engine, lambda: question(*args, **kwargs), lambda d: d, given)

        return logged

    def around(
        self, engine: Engine, ask: Callable[[], _T], decision_of: Callable[[_T], Decision]
    ) -> _T:
        """Run ``ask``; log the decision it gives unless it runs inside another logged one."""
        return self._around(engine, ask, decision_of, ())

    def _around(
        self,
        engine: Engine,
        ask: Callable[[], _T],
        decision_of: Callable[[_T], Decision],
        given: Sequence[Record],
    ) -> _T:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            result = ask()
        finally:
            self._local.depth = depth
        if depth == 0:
            self.write(entry(engine, decision_of(result), given))
        return result

    def write(self, line: Mapping[str, Any]) -> None:
        with self._lock:
            text = json.dumps({**line, "prev": self._prev}, ensure_ascii=False, sort_keys=True)
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text + "\n")
            self._file.flush()
            if self.sync:
                os.fsync(self._file.fileno())
            self._prev = _line_hash(text)
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_line_hash(path: Path) -> str | None:
    """The hash of the file's last line, read from its end; None for a new or empty file."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            chunk = b""
            position = end
            while position > 0:
                step = min(65536, position)
                position -= step
                f.seek(position)
                chunk = f.read(step) + chunk
                lines = chunk.rstrip(b"\n").split(b"\n")
                if len(lines) > 1 or position == 0:
                    last = lines[-1]
                    return _line_hash(last.decode("utf-8")) if last else None
    except FileNotFoundError:
        return None
    return None


# --- reading and verifying -------------------------------------------------------------------


@attrs.frozen(repr=False)
class LogLine(Value):
    line: int
    text: str
    data: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.data.get("id"))


_REQUIRED = ("format", "id", "at", "policy", "question", "asked", "outcome", "rules", "inputs")


def read_log(path: str | Path) -> list[LogLine]:
    """Every line of the log at ``path``; raises :class:`LogError` naming each bad line."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError([Problem(f"cannot be read: {exc}", file=file)]) from None
    out: list[LogLine] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"is not JSON: {exc.msg}", file=file, line=number))
            continue
        if not isinstance(data, dict):
            problems.append(Problem("expected a JSON object", file=file, line=number))
            continue
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            problems.append(
                Problem(f"missing key(s): {', '.join(missing)}", file=file, line=number)
            )
            continue
        if data["format"] != FORMAT:
            problems.append(
                Problem(
                    f"unknown format {data['format']!r} (expected {FORMAT})",
                    file=file,
                    line=number,
                )
            )
            continue
        out.append(LogLine(number, raw, data))
    if problems:
        raise LogError(problems)
    return out


@attrs.frozen(repr=False)
class Verdict(Value):
    line: int
    id: str
    status: str  # confirmed, differs, inputs_changed, not_rerun, error
    detail: str = ""


@attrs.frozen(repr=False)
class Verification(Value):
    lines: int
    problems: tuple[str, ...]  # the chain or the policy do not match: the log fails
    verdicts: tuple[Verdict, ...]

    @property
    def ok(self) -> bool:
        return not self.problems and not any(
            v.status in ("differs", "error") for v in self.verdicts
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.status] = out.get(v.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "ok": self.ok,
            "problems": list(self.problems),
            "counts": self.counts(),
            "verdicts": [attrs.asdict(v) for v in self.verdicts],
        }


def _policy_problems(line: LogLine, policy: Policy) -> list[str]:
    logged = line.data["policy"]
    if not isinstance(logged, Mapping):
        return [f"line {line.line}: policy is not an object"]
    out = []
    if logged.get("id") != policy.id:
        out.append(f"line {line.line}: logged under policy {logged.get('id')!r}, not {policy.id!r}")
    if logged.get("version") != policy.info.version:
        out.append(
            f"line {line.line}: logged under version {logged.get('version')!r}; the policy "
            f"given is version {policy.info.version!r}"
        )
    if logged.get("digest") != policy.digest:
        out.append(
            f"line {line.line}: the policy's content hash differs from the one logged "
            f"({logged.get('digest')} logged, {policy.digest} now): its rules or notice changed"
        )
    return out


def _rerun(engine: Engine, line: LogLine) -> Verdict:
    data = line.data
    question = data["question"]
    if question not in QUESTIONS:
        return Verdict(
            line.line,
            line.id,
            "not_rerun",
            f"a {question} is not re-run: its options are not all logged, and carrying it out "
            "changes the store",
        )
    asked = dict(data["asked"])
    if inputs(engine, asked) != data["inputs"]:
        return Verdict(
            line.line,
            line.id,
            "inputs_changed",
            "the store no longer holds the decision's inputs as logged",
        )
    try:
        at = converter.structure(data["at"], dt.datetime)
        decision, _ = ASKS[question].ask(engine, asked, at)
        assert decision is not None  # an engine question decides
    except (FairprocError, TypeError, ValueError) as exc:
        return Verdict(line.line, line.id, "error", f"could not be re-run: {exc}")
    now = entry(engine, decision)
    keys = ("outcome", "rules", "reasons", "until", "due", "basis", "categories", "records")
    changed = [k for k in keys if now.get(k) != data.get(k)]
    if changed:
        what = "; ".join(f"{k}: logged {data.get(k)!r}, now {now.get(k)!r}" for k in changed)
        return Verdict(line.line, line.id, "differs", what)
    return Verdict(line.line, line.id, "confirmed", f"{question}: {decision.outcome}")


def verify(lines: Sequence[LogLine], policy: Policy, store: Any | None = None) -> Verification:
    """Check the chain of ``lines``, each line's policy against ``policy``, and, with a store,
    re-run each logged question whose inputs it still holds."""
    problems: list[str] = []
    prev: str | None = None
    for n, line in enumerate(lines):
        logged_prev = line.data.get("prev")
        if n > 0 and logged_prev != prev:
            problems.append(
                f"line {line.line}: the chain is broken (the line before it was changed, "
                "removed or inserted)"
            )
        if json.dumps(line.data, ensure_ascii=False, sort_keys=True) != line.text:
            problems.append(f"line {line.line}: not as the log wrote it (edited?)")
        prev = _line_hash(line.text)
        problems.extend(_policy_problems(line, policy))
    verdicts: list[Verdict] = []
    if store is None:
        verdicts = [Verdict(line.line, line.id, "not_rerun", "no store given") for line in lines]
    elif not problems:
        # each line re-run beneath the law it was decided under, if any (fairproc.law)
        engines: dict[str | None, Engine | None] = {}
        for line in lines:
            law = line.data.get("law")
            law = law if isinstance(law, str) else None
            if law not in engines:
                try:
                    engines[law] = Engine(policy, store, law=law)
                except PolicyError:
                    engines[law] = None
            engine = engines[law]
            verdicts.append(
                _rerun(engine, line)
                if engine is not None
                else Verdict(line.line, line.id, "not_rerun", f"no law layer named {law!r}")
            )
    else:
        verdicts = [
            Verdict(line.line, line.id, "not_rerun", "the log does not match the policy")
            for line in lines
        ]
    return Verification(len(lines), tuple(problems), tuple(verdicts))


def show(lines: Sequence[LogLine]) -> Iterator[str]:
    """The log for a person: one line per decision."""
    for line in lines:
        d = line.data
        asked = ", ".join(f"{k}={v}" for k, v in d["asked"].items())
        policy = d["policy"]
        yield (
            f"{line.line}: {d['at']} {d['question']}({asked}) -> {d['outcome']} "
            f"[{', '.join(d['rules'])}] policy {policy.get('id')} {policy.get('version')} "
            f"{str(policy.get('digest'))[:15]}"
        )


__all__ = [
    "FORMAT",
    "QUESTIONS",
    "DecisionLog",
    "LogError",
    "LogLine",
    "Verdict",
    "Verification",
    "entry",
    "inputs",
    "read_log",
    "record_inputs",
    "show",
    "verify",
]

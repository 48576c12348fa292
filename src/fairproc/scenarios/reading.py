"""Reading scenario files: a file (TOML, the format fixed in ``shared/spec/scenarios.md``) to a
checked :class:`Scenario`. A file that cannot be read (bad TOML, an unknown id, a naive
datetime, an unknown ``ask``) raises :class:`ScenarioError` naming its file, key path and line.

Imports the policy loader, the model and :mod:`fairproc.scenarios.asks`; never a store.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.errors import FairprocError, Problem, ProblemsError, did_you_mean
from fairproc.loader import load_policy
from fairproc.model import BASES, Event, Policy, Record, SuppressionEntry
from fairproc.scenarios.asks import ASKS, COMMON
from fairproc.toml_lines import LineIndex
from fairproc.values import Value
from fairproc.world import World


class ScenarioError(ProblemsError):
    kind = "scenario"


@attrs.frozen(repr=False)
class Expectation(Value):
    index: int
    ask: str
    at: dt.datetime
    params: Mapping[str, Any]
    outcome: str | None
    checks: Mapping[str, Any]
    title: str | None = None
    line: int | None = None

    @property
    def name(self) -> str:
        label = self.title or " ".join(
            [
                self.ask,
                *(
                    str(v)
                    for k, v in self.params.items()
                    if v is not None and k not in ("verified", "complex", "court_order")
                ),
            ]
        )
        return f"expect[{self.index}] {label}"

    def expected(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.outcome is not None:
            out["outcome"] = self.outcome
        out.update({k: plain_value(v) for k, v in self.checks.items()})
        return out


@attrs.frozen(repr=False)
class Scenario(Value):
    file: str
    title: str
    policy: Policy
    now: dt.datetime
    records: tuple[Record, ...]
    events: tuple[Event, ...]
    suppression: tuple[SuppressionEntry, ...]
    expectations: tuple[Expectation, ...]
    documents: str | None = None
    law: str | None = None  # the law layer the scenario asks for (fairproc.law), or none

    def world(self) -> World:
        return World(self.records, self.events, self.suppression)


def is_scenario_file(path: Path) -> bool:
    """A TOML file holding a [scenario] table (other TOML files are left alone)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.strip().startswith("[scenario]") for line in text.splitlines())


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and ``*.toml`` files under folders named, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(p for p in sorted(path.rglob("*.toml")) if is_scenario_file(p))
        else:
            out.append(path)
    return out


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.file = str(path)
        self.problems: list[Problem] = []
        self.law_rules: set[str] = set()  # the rule ids a scenario's law layer adds
        self.lines: LineIndex | None = None

    def problem(self, message: str, *path: str | int) -> None:
        line = self.lines.find(path) if self.lines else None
        self.problems.append(Problem(message, file=self.file, path=tuple(path), line=line))

    def fail(self) -> ScenarioError:
        return ScenarioError(self.problems)

    # -- typed readers: each records a problem and returns None on bad input --

    def instant(self, value: Any, *path: str | int) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                self.problem(
                    f"naive date-time {value.isoformat()} has no offset; write it with "
                    "one, such as 2026-11-21T10:00:00Z",
                    *path,
                )
                return None
            return value
        self.problem(
            f"expected an offset date-time such as 2026-11-21T10:00:00Z, got {value!r}", *path
        )
        return None

    def string(self, value: Any, *path: str | int) -> str | None:
        if isinstance(value, str) and value:
            return value
        self.problem(f"expected a non-empty string, got {value!r}", *path)
        return None

    def known(self, value: Any, known: Iterable[str], what: str, *path: str | int) -> str | None:
        text = self.string(value, *path)
        if text is None:
            return None
        known = sorted(known)
        if text not in known:
            self.problem(
                f"unknown {what} {text!r}"
                + did_you_mean(text, known)
                + (f" (known: {', '.join(known)})" if len(known) <= 40 else ""),
                *path,
            )
            return None
        return text

    def table(
        self, value: Any, allowed: Sequence[str], required: Sequence[str], *path: str | int
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(f"expected a table, got {value!r}", *path)
            return None
        ok = True
        for key in value:
            if key not in allowed:
                self.problem(
                    f"unknown key {key!r}"
                    + did_you_mean(str(key), allowed)
                    + f" (expected: {', '.join(allowed)})",
                    *path,
                    key,
                )
                ok = False
        for key in required:
            if key not in value:
                self.problem(f"required key {key!r} is missing", *path)
                ok = False
        return value if ok else None

    # -- the file --

    def read(self, policy_override: Policy | None = None) -> Scenario:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(Problem(f"cannot be read: {exc}", file=self.file))
            raise self.fail() from None
        self.lines = LineIndex(text)
        try:
            doc = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            # RecursionError: arrays or tables nested deeper than the parser can go.
            import re

            match = re.search(r"line (\d+)", str(exc))
            self.problems.append(
                Problem(
                    f"is not valid TOML: {exc}",
                    file=self.file,
                    line=int(match.group(1)) if match else None,
                )
            )
            raise self.fail() from None
        top = self.table(
            doc, ["scenario", "record", "event", "suppression", "expect"], ["scenario"]
        )
        if top is None:
            raise self.fail()
        head = self.table(
            doc["scenario"],
            ["title", "policy", "now", "documents", "description", "law"],
            ["title", "policy", "now"],
            "scenario",
        )
        if head is None:
            raise self.fail()
        title = self.string(head["title"], "scenario", "title") or "?"
        now = self.instant(head["now"], "scenario", "now")
        policy = policy_override
        if policy is None:
            policy_name = self.string(head["policy"], "scenario", "policy")
            if policy_name is not None:
                target: str | Path = policy_name
                if "/" in policy_name or policy_name.startswith("."):
                    target = (self.path.parent / policy_name).resolve()
                try:
                    policy = load_policy(target)
                except FairprocError as exc:
                    self.problem(
                        f"policy {policy_name!r} could not be loaded: {exc}", "scenario", "policy"
                    )
        if policy is None or now is None:
            raise self.fail()

        law_name = None
        law_rules: set[str] = set()
        if "law" in head:
            law_name = self.string(head["law"], "scenario", "law")
            if law_name is not None:
                from fairproc.law import load_law

                try:
                    law_rules = set(load_law(law_name).rule_index())
                except FairprocError as exc:
                    self.problem(f"law {law_name!r} could not be loaded: {exc}", "scenario", "law")
        self.law_rules = law_rules
        records = self.records(doc.get("record", []), policy)
        record_ids = {r.id for r in records}
        events = self.events(doc.get("event", []), policy, record_ids)
        suppression = self.suppression(doc.get("suppression", []))
        subjects = {r.subject for r in records} | {e.subject for e in events}
        expectations = self.expectations(doc.get("expect", []), policy, record_ids, subjects, now)
        if self.problems:
            raise self.fail()
        return Scenario(
            self.file,
            title,
            policy,
            now,
            tuple(records),
            tuple(events),
            tuple(suppression),
            tuple(expectations),
            head.get("documents") if isinstance(head.get("documents"), str) else None,
            law_name,
        )

    def array(self, value: Any, name: str) -> list[Any]:
        if not isinstance(value, list):
            self.problem(f"expected [[{name}]] tables", name)
            return []
        return value

    def records(self, items: Any, policy: Policy) -> list[Record]:
        out: list[Record] = []
        seen: set[str] = set()
        others = {c.id for c in policy.categories.values() if c.about_others}
        for i, item in enumerate(self.array(items, "record")):
            t = self.table(
                item,
                ["id", "subject", "source", "collected_at", "data"],
                ["id", "subject", "source", "collected_at"],
                "record",
                i,
            )
            if t is None:
                continue
            rid = self.string(t["id"], "record", i, "id")
            subject = self.string(t["subject"], "record", i, "subject")
            source = self.known(t["source"], policy.sources, "source", "record", i, "source")
            at = self.instant(t["collected_at"], "record", i, "collected_at")
            data = t.get("data", {})
            if not isinstance(data, dict):
                self.problem(
                    f"expected a table of category = value, got {data!r}", "record", i, "data"
                )
                continue
            if source is not None:
                allowed = set(policy.sources[source].categories) | others
                for key in data:
                    if key not in allowed:
                        self.problem(
                            f"{source} records do not collect {key!r} (they collect: "
                            f"{', '.join(policy.sources[source].categories) or 'nothing'})",
                            "record",
                            i,
                            "data",
                            key,
                        )
            if rid is not None and rid in seen:
                self.problem(f"record id {rid!r} is given twice", "record", i, "id")
                continue
            if rid is None or subject is None or source is None or at is None:
                continue
            seen.add(rid)
            out.append(Record(rid, subject, source, at, data))
        return out

    def events(self, items: Any, policy: Policy, record_ids: set[str]) -> list[Event]:
        out: list[Event] = []
        for i, item in enumerate(self.array(items, "event")):
            t = self.table(
                item,
                ["subject", "kind", "at", "record", "purpose", "id"],
                ["subject", "kind", "at"],
                "event",
                i,
            )
            if t is None:
                continue
            subject = self.string(t["subject"], "event", i, "subject")
            kind = self.known(t["kind"], policy.events, "event kind", "event", i, "kind")
            at = self.instant(t["at"], "event", i, "at")
            record = purpose = None
            if "record" in t:
                record = self.known(t["record"], record_ids, "record", "event", i, "record")
            if "purpose" in t:
                purpose = self.known(
                    t["purpose"], policy.purposes, "purpose", "event", i, "purpose"
                )
            if kind is not None and policy.events[kind].names_record and "record" not in t:
                self.problem(f'a {kind} event names its record (record = "...")', "event", i)
                continue
            if subject is None or kind is None or at is None:
                continue
            event_id = t.get("id")
            out.append(
                Event(
                    subject,
                    kind,
                    at,
                    record,
                    purpose,
                    event_id if isinstance(event_id, str) else None,
                )
            )
        return out

    def suppression(self, items: Any) -> list[SuppressionEntry]:
        out = []
        for i, item in enumerate(self.array(items, "suppression")):
            t = self.table(item, ["email", "at", "reason"], ["email", "at"], "suppression", i)
            if t is None:
                continue
            email = self.string(t["email"], "suppression", i, "email")
            at = self.instant(t["at"], "suppression", i, "at")
            reason = self.string(t.get("reason", "unsubscribed"), "suppression", i, "reason")
            if email and at and reason:
                out.append(SuppressionEntry(email, at, reason))
        return out

    def expectations(
        self, items: Any, policy: Policy, record_ids: set[str], subjects: set[str], now: dt.datetime
    ) -> list[Expectation]:
        out = []
        rule_ids = set(policy.rule_index()) | self.law_rules
        for i, item in enumerate(self.array(items, "expect")):
            path = ("expect", i)
            if not isinstance(item, dict) or "ask" not in item:
                self.problem(
                    'every [[expect]] names what it asks: ask = "may_process", "route", ...', *path
                )
                continue
            ask_name = self.known(item["ask"], ASKS, "ask", *path, "ask")
            if ask_name is None:
                continue
            ask = ASKS[ask_name]
            required = [k for k in ask.params if k not in ask.optional]
            t = self.table(item, [*COMMON, *ask.params, *ask.checks], required, *path)
            if t is None:
                continue
            at = self.instant(t["at"], *path, "at") if "at" in t else now
            outcome = None
            if "outcome" in t:
                outcome = self.known(
                    t["outcome"],
                    ask.outcomes_under(policy),
                    f"{ask.name} outcome",
                    *path,
                    "outcome",
                )
            params = {
                k: self.value(
                    kind,
                    t.get(k, ask.optional.get(k)),
                    policy,
                    record_ids,
                    subjects,
                    rule_ids,
                    *path,
                    k,
                    present=k in t,
                )
                for k, kind in ask.params.items()
            }
            checks = {
                k: self.value(kind, t[k], policy, record_ids, subjects, rule_ids, *path, k)
                for k, kind in ask.checks.items()
                if k in t
            }
            if at is None:
                continue
            out.append(
                Expectation(
                    i,
                    ask.name,
                    at,
                    params,
                    outcome,
                    checks,
                    t.get("title") if isinstance(t.get("title"), str) else None,
                    self.lines.find(path) if self.lines else None,
                )
            )
        return out

    def value(
        self,
        kind: str,
        value: Any,
        policy: Policy,
        record_ids: set[str],
        subjects: set[str],
        rule_ids: set[str],
        *path: str | int,
        present: bool = True,
    ) -> Any:
        if not present:
            return value
        if kind == "record":
            return self.known(value, record_ids, "record", *path)
        if kind == "subject":
            return self.string(value, *path)
        if kind == "purpose":
            return self.known(value, policy.purposes, "purpose", *path)
        if kind == "recipient":
            return self.known(value, policy.recipients, "recipient", *path)
        if kind == "right":
            return self.known(value, policy.rights, "right", *path)
        if kind == "basis":
            return self.known(value, BASES, "lawful basis", *path)
        if kind == "text":
            return self.string(value, *path)
        if kind == "bool":
            if not isinstance(value, bool):
                self.problem(f"expected true or false, got {value!r}", *path)
            return value
        if kind == "instant":
            return self.instant(value, *path)
        if kind in ("rules", "categories", "records", "purposes", "codes"):
            if value is None and kind == "purposes":
                return None
            if not isinstance(value, list):
                self.problem(f"expected a list, got {value!r}", *path)
                return value
            known: Iterable[str] | None = {
                "rules": rule_ids,
                "categories": policy.categories,
                "records": record_ids,
                "purposes": policy.purposes,
                "codes": None,
            }[kind]
            what = {
                "rules": "rule id",
                "categories": "category",
                "records": "record",
                "purposes": "purpose",
                "codes": "code",
            }[kind]
            for j, item in enumerate(value):
                if known is None:
                    self.string(item, *path, j)
                else:
                    self.known(item, known, what, *path, j)
            return tuple(value)
        if kind == "corrections":
            if value is None:
                return None
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                self.problem("expected corrections = { record_id = { category = value } }", *path)
                return value
            for rid, fields in value.items():
                self.known(rid, record_ids, "record", *path, rid)
                for cat in fields:
                    self.known(cat, policy.categories, "category", *path, rid, cat)
            return value
        raise AssertionError(kind)  # pragma: no cover


def load_scenario(path: str | Path, policy: Policy | None = None) -> Scenario:
    """Read and check one scenario file; raises :class:`ScenarioError` with every problem."""
    return _Reader(Path(path)).read(policy)


def plain_value(value: Any) -> Any:
    """A value as reports and comparisons show it: sets sorted, tables and lists plain."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple | list | frozenset | set):
        items = [plain_value(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    return value

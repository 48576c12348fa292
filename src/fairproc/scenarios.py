"""Documented rule scenarios: a small world, a clock and the outcomes the policy must give.

The file format and the CLI contract are fixed in ``shared/spec/scenarios.md``. A scenario file
that cannot be read (bad TOML, an unknown id, a naive datetime, an unknown ``ask``) is reported
with its file, key path and line, and never stops the other files from running.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.decisions import Decision
from fairproc.engine import DecisionLogger, Engine
from fairproc.errors import FairprocError, InputError, Problem, ProblemsError, did_you_mean
from fairproc.loader import LineIndex, load_policy
from fairproc.model import BASES, Event, Policy, Reaction, Record, SuppressionEntry
from fairproc.world import HistorySource, World


class ScenarioError(ProblemsError):
    kind = "scenario"


# --- what an expectation can ask -----------------------------------------------------------

# parameter and check kinds: how a value is read from the file and checked against the policy
ID_KINDS = ("record", "subject", "purpose", "recipient", "right", "category", "rule")


@attrs.frozen
class Ask:
    name: str
    params: Mapping[str, str]  # key -> kind; required unless in ``optional``
    outcomes: frozenset[str]
    checks: Mapping[str, str]  # key -> kind
    optional: Mapping[str, Any] = attrs.field(factory=dict)  # key -> default
    # outcomes the policy itself names (routing's), read from the scenario's policy
    policy_outcomes: Callable[[Policy], frozenset[str]] | None = None

    def outcomes_under(self, policy: Policy) -> frozenset[str]:
        if self.policy_outcomes is None:
            return self.outcomes
        return self.outcomes | self.policy_outcomes(policy)


ASKS: dict[str, Ask] = {
    a.name: a
    for a in [
        Ask(
            "may_process",
            {"record": "record", "purpose": "purpose"},
            frozenset({"allowed", "denied"}),
            {"basis": "basis", "rules": "rules", "reasons": "codes"},
        ),
        Ask(
            "route",
            {"record": "record"},
            frozenset(),
            {"due": "instant", "rules": "rules"},
            policy_outcomes=Policy.route_outcomes,
        ),
        Ask(
            "may_share",
            {"record": "record", "recipient": "recipient", "court_order": "bool"},
            frozenset({"allowed", "denied"}),
            {"categories": "categories", "rules": "rules", "reasons": "codes", "findings": "codes"},
            optional={"court_order": False},
        ),
        Ask(
            "transfer",
            {"recipient": "recipient"},
            frozenset({"allowed", "denied"}),
            {"findings": "codes", "rules": "rules"},
        ),
        Ask(
            "may_email",
            {"subject": "subject"},
            frozenset({"allowed", "denied"}),
            {"reasons": "codes", "rules": "rules"},
        ),
        Ask(
            "retention",
            {"record": "record"},
            frozenset({"keep", "delete", "review"}),
            {"until": "instant", "rules": "rules", "due": "instant"},
        ),
        Ask(
            "request",
            {
                "subject": "subject",
                "right": "right",
                "verified": "bool",
                "complex": "bool",
                "purposes": "purposes",
                "corrections": "corrections",
                # read only beneath a law layer (fairproc.law_rights)
                "identity_confirmed_at": "instant",
                "fee_received_at": "instant",
                "clarification_requested_at": "instant",
                "clarification_received_at": "instant",
                "manifestly": "text",
                "manifest_action": "text",
                "ground": "text",
                "compelling_grounds": "text",
            },
            frozenset(
                {
                    "granted",
                    "partially_granted",
                    "refused",
                    "awaiting_identity",
                    "awaiting_fee",
                    "awaiting_clarification",
                }
            ),
            {
                "due": "instant",
                "kept": "records",
                "erased": "records",
                "redacted": "categories",
                "rules": "rules",
                "reasons": "codes",
            },
            optional={
                "verified": True,
                "complex": False,
                "purposes": None,
                "corrections": None,
                "identity_confirmed_at": None,
                "fee_received_at": None,
                "clarification_requested_at": None,
                "clarification_received_at": None,
                "manifestly": None,
                "manifest_action": "refuse",
                "ground": None,
                "compelling_grounds": None,
            },
        ),
        Ask("sweep", {}, frozenset(), {"due": "records"}),
    ]
}

COMMON = ("ask", "at", "outcome", "title")


# --- the file ------------------------------------------------------------------------------


@attrs.frozen
class Expectation:
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
        out.update({k: _plain(v) for k, v in self.checks.items()})
        return out


@attrs.frozen
class Scenario:
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


# --- running -------------------------------------------------------------------------------


@attrs.frozen
class ExpectationResult:
    expectation: Expectation
    passed: bool
    expected: Mapping[str, Any]
    actual: Mapping[str, Any]
    decision: Decision | None = None
    error: str | None = None

    @property
    def explanation(self) -> str:
        if self.decision is not None:
            return self.decision.explain()
        return self.error or ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ask": self.expectation.ask,
            "name": self.expectation.name,
            "line": self.expectation.line,
            "passed": self.passed,
            "expected": dict(self.expected),
            "actual": dict(self.actual),
            "explanation": self.decision.to_dict()["explanation"] if self.decision else [],
        }
        if self.error:
            out["error"] = self.error
        return out


@attrs.frozen
class ScenarioResult:
    file: str
    title: str
    expectations: tuple[ExpectationResult, ...] = ()
    problems: tuple[Problem, ...] = ()  # the file could not be read
    policy: Policy | None = attrs.field(default=None, eq=False, repr=False)
    # the scenario as read (its world before any expectation ran), for reports that show it
    scenario: Scenario | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def passed(self) -> bool:
        return not self.problems and all(e.passed for e in self.expectations)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "title": self.title,
            "passed": self.passed,
            "expectations": [e.to_dict() for e in self.expectations],
        }
        if self.problems:
            out["errors"] = [str(p) for p in self.problems]
        return out


StoreFactory = Callable[[Scenario], HistorySource]


def memory_store(scenario: Scenario) -> HistorySource:
    return scenario.world()


class UrlStores:
    """A fresh store per scenario on the storage a URL names, loaded with the scenario's world
    and removed after it: a table prefix of its own on SQL, a subfolder of its own for CSV."""

    def __init__(self, url: str):

        self.url = url
        self.scheme = url.split(":", 1)[0].lower()
        self._cleanup: dict[int, Callable[[], None]] = {}
        # A bad URL or an unreachable server fails here, once, before any scenario runs.
        self.release(self._open(self._url_for("check")))

    def _url_for(self, token: str) -> str:
        if self.scheme == "memory":
            return self.url
        if self.scheme == "csv":
            folder = self.url[len("csv://") :]
            return f"csv://{folder.rstrip('/')}/scenario-{token}"
        base, _, query = self.url.partition("?")
        params = [p for p in query.split("&") if p and not p.startswith("prefix=")]
        params.append(f"prefix=fpscn_{token}_")
        return base + "?" + "&".join(params)

    def _open(self, url: str) -> Any:
        import shutil

        from fairproc.store import open_store

        store = open_store(url)

        def cleanup() -> None:
            drop = getattr(store, "drop_tables", None)
            if callable(drop):
                drop()
            store.close()
            if self.scheme == "csv":
                shutil.rmtree(url[len("csv://") :], ignore_errors=True)

        self._cleanup[id(store)] = cleanup
        return store

    def __call__(self, scenario: Scenario) -> HistorySource:
        import secrets

        from fairproc.store import ChangeSet

        store = self._open(self._url_for(secrets.token_hex(4)))
        try:
            store.apply(
                ChangeSet(
                    put_records=scenario.records,
                    add_events=scenario.events,
                    add_suppression=scenario.suppression,
                )
            )
        except BaseException:
            self.release(store)
            raise
        return store  # type: ignore[no-any-return]

    def release(self, store: HistorySource) -> None:
        cleanup = self._cleanup.pop(id(store), None)
        if cleanup is not None:
            cleanup()


def run_scenario(
    scenario: Scenario,
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
) -> ScenarioResult:
    return ScenarioResult(
        scenario.file,
        scenario.title,
        tuple(iter_results(scenario, store_factory, log)),
        policy=scenario.policy,
        scenario=scenario,
    )


def iter_results(
    scenario: Scenario,
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
) -> Iterator[ExpectationResult]:
    """Run the expectations in file order (a request changes the world for those after it);
    ``log``: where the engine logs its decisions (:mod:`fairproc.decision_log`)."""
    store = store_factory(scenario)
    engine = Engine(scenario.policy, store, log=log, law=scenario.law)
    try:
        for exp in scenario.expectations:
            yield run_expectation(engine, engine.store, exp)
    finally:
        release = getattr(store_factory, "release", None)
        if callable(release):
            release(store)


def run_expectation(engine: Engine, store: HistorySource, exp: Expectation) -> ExpectationResult:
    expected = exp.expected()
    try:
        decision, actual_extra = _ask(engine, store, exp)
    except FairprocError as exc:
        return ExpectationResult(exp, False, expected, {}, None, str(exc))
    actual: dict[str, Any] = {}
    passed = True
    if exp.outcome is not None:
        actual["outcome"] = decision.outcome if decision else None
        passed = passed and actual["outcome"] == exp.outcome
    for key, want in exp.checks.items():
        got = actual_extra[key] if key in actual_extra else _actual(decision, key)
        actual[key] = _plain(got)
        passed = passed and _matches(key, want, got)
    return ExpectationResult(exp, passed, expected, actual, decision)


def _ask(
    engine: Engine, store: HistorySource, exp: Expectation
) -> tuple[Decision | None, dict[str, Any]]:
    p, at = exp.params, exp.at
    if exp.ask == "may_process":
        return engine.may_process(p["record"], p["purpose"], at), {}
    if exp.ask == "route":
        return engine.route(p["record"], at), {}
    if exp.ask == "may_share":
        return engine.may_share(
            p["record"], p["recipient"], at, court_order=bool(p.get("court_order"))
        ), {}
    if exp.ask == "transfer":
        return engine.transfer(p["recipient"], at), {}
    if exp.ask == "may_email":
        return engine.may_email(p["subject"], at), {}
    if exp.ask == "retention":
        return engine.retention(p["record"], at), {}
    if exp.ask == "sweep":
        from fairproc.sweep import plan_sweep

        plan = plan_sweep(engine, at)
        return None, {"due": tuple(item.record for item in plan.items)}
    if exp.ask == "request":
        return _request(engine, store, exp)
    raise InputError.one(f"unknown ask {exp.ask!r}")  # pragma: no cover - checked on read


def _request(
    engine: Engine, store: HistorySource, exp: Expectation
) -> tuple[Decision | None, dict[str, Any]]:
    from fairproc.rights import LawTerms, apply_changes, plan_request

    p = exp.params
    result = plan_request(
        engine,
        p["subject"],
        p["right"],
        exp.at,
        verified=bool(p.get("verified", True)),
        complex=bool(p.get("complex")),
        purposes=p.get("purposes"),
        corrections=p.get("corrections"),
        law=LawTerms(
            identity_confirmed_at=p.get("identity_confirmed_at"),
            fee_received_at=p.get("fee_received_at"),
            clarification_requested_at=p.get("clarification_requested_at"),
            clarification_received_at=p.get("clarification_received_at"),
            manifestly=p.get("manifestly"),
            manifest_action=p.get("manifest_action") or "refuse",
            ground=p.get("ground"),
            compelling_grounds=p.get("compelling_grounds"),
        ),
    )
    apply_changes(engine, result.changes)
    return result.decision, {}


def _actual(decision: Decision | None, key: str) -> Any:
    if decision is None:
        return None
    if key == "rules":
        return decision.rules
    if key == "findings":
        return tuple(f.code for f in decision.findings)
    return getattr(decision, key, None)


def _matches(key: str, want: Any, got: Any) -> bool:
    if key in ("rules", "reasons", "findings"):
        return got is not None and set(want) <= set(got)
    if isinstance(want, tuple):
        return got is not None and set(want) == set(got)
    if isinstance(want, dt.datetime):
        return isinstance(got, dt.datetime) and got == want
    return bool(want == got)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple | list | frozenset | set):
        items = [_plain(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def run_paths(
    paths: Iterable[str | Path],
    store_factory: StoreFactory = memory_store,
    log: DecisionLogger | None = None,
    law: str | None = None,
) -> list[ScenarioResult]:
    """Run every scenario file under ``paths``; unreadable files become results with problems.

    ``law``: run every scenario beneath this law layer, whatever its file says."""
    results = []
    for path in find_files(paths):
        try:
            scenario = load_scenario(path)
        except ProblemsError as exc:
            results.append(ScenarioResult(str(path), "(not run)", problems=exc.problems))
            continue
        except FairprocError as exc:
            results.append(
                ScenarioResult(
                    str(path), "(not run)", problems=(Problem(str(exc), file=str(path)),)
                )
            )
            continue
        if law is not None:
            scenario = attrs.evolve(scenario, law=law)
        try:
            results.append(run_scenario(scenario, store_factory, log))
        except ProblemsError as exc:
            # Data the store cannot keep (NaN or infinity on a SQL or CSV store): this file
            # fails, named, and the run goes on to the next.
            results.append(
                ScenarioResult(
                    str(path),
                    scenario.title,
                    problems=tuple(
                        attrs.evolve(
                            p, file=str(path), message=f"cannot be put in the store: {p.message}"
                        )
                        if p.file is None
                        else p
                        for p in exc.problems
                    ),
                )
            )
    return results


def exit_status(results: Sequence[ScenarioResult]) -> int:
    """0 every expectation passed; 1 some failed; 2 a file could not be read."""
    if any(r.problems for r in results):
        return 2
    return 0 if all(r.passed for r in results) else 1


def coverage(results: Sequence[ScenarioResult]) -> dict[str, dict[str, bool]]:
    """For each policy run: every rule id, and whether some passing expectation cited it."""
    out: dict[str, dict[str, bool]] = {}
    for result in results:
        if result.policy is None:
            continue
        # Reactions answer arrivals, not questions: the reactive engine's tests cover them.
        questions = [
            r for r, rule in result.policy.rule_index().items() if not isinstance(rule, Reaction)
        ]
        table = out.setdefault(result.policy.id, dict.fromkeys(questions, False))
        for e in result.expectations:
            if e.passed and e.decision is not None:
                for rule in e.decision.rules:
                    if rule in table:
                        table[rule] = True
    return out

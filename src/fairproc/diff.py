"""What a change to a policy does: the decisions two versions of a policy take differently.

:func:`diff_policies` asks both versions the same questions and lists each decision whose
answer changes (outcome, basis, categories, dates, reasons, findings, per-record outcomes; not
the wording of the explanation), grouped by the rule the change turns on, each group with a
minimal example world.

The questions come from two places:

* generated worlds: the testing kit's hypothesis strategies (:mod:`fairproc.testing.
  strategies`), seeded so a run is repeatable: half the worlds from the old policy, half from
  the new, each asked every question it allows (every record with every purpose, recipient,
  retention and routing; every recipient's transfer; every subject's marketing email) at
  instants drawn from :func:`~fairproc.testing.strategies.instants_for` (the world's own
  instants and their due dates, a microsecond either side);
* scenario files: each run under both policies (:func:`fairproc.scenarios.load_scenario` with
  the policy given), its expectations' decisions compared one by one; a file that no longer
  loads under one of them is listed as such.

A question one version cannot answer (a purpose it does not declare) is an answer too: the
error. The rule a change turns on: the rules whose part in the decision differs between the
two explanations (passed or failed, reason, detail); for an error, the rule of the id it names
that one version lacks. The example world for a group is the smallest world showing one of its
changes, then shrunk record by record and event by event while that decision still changes.

hypothesis is needed for the generated worlds (fairproc's ``dev`` extra); without it only the
scenarios are compared, and the result says so.

Repeatable: the same seed gives the same worlds for the same fairproc and hypothesis, in a
fresh process (``fairproc diff``). Within one process, hypothesis also draws from constants it
finds in the modules loaded so far, so a module imported between two runs can change what is
generated; the modules a diff itself needs are imported here, before any world is drawn.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.convert import converter
from fairproc.decisions import Decision
from fairproc.engine import Engine
from fairproc.errors import FairprocError, ProblemsError
from fairproc.model import Policy
from fairproc.scenarios import (
    ExpectationResult,
    Scenario,
    find_files,
    load_scenario,
    run_scenario,
)
from fairproc.scenarios.asks import ASKS, explainable
from fairproc.values import Value
from fairproc.world import World

# Imported before any world is drawn (see above): running scenarios needs them.
importlib.import_module("fairproc.rights")
importlib.import_module("fairproc.sweep")

Answer = Mapping[str, Any]
# The questions an engine answers by itself (a request and a sweep are asked of a store).
ENGINE_QUESTIONS = frozenset(explainable())


@attrs.frozen(repr=False)
class Ask(Value):
    """One question: which, about what (ids), and when."""

    question: str
    params: Mapping[str, Any] = attrs.field(hash=False)  # a dict: equal asks still hash alike
    at: dt.datetime

    def __call__(self, engine: Engine) -> Decision:
        decision, _ = ASKS[self.question].ask(engine, self.params, self.at)
        assert decision is not None  # an engine question decides
        return decision

    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.question}({args}) at {_instant(self.at)}"

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "asked": dict(self.params), "at": _instant(self.at)}


@attrs.frozen(repr=False)
class Change(Value):
    """One decision answered differently: where it was asked and the two answers."""

    origin: str  # "generated world 12" or a scenario file and expectation
    ask: Ask | None  # None for a scenario file that no longer loads
    old: Answer
    new: Answer
    rules: tuple[str, ...]  # the rules the change turns on
    world: World | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origin": self.origin}
        if self.ask is not None:
            out.update(self.ask.to_dict())
        out.update({"old": dict(self.old), "new": dict(self.new), "rules": list(self.rules)})
        return out


@attrs.frozen(repr=False)
class Group(Value):
    rule: str
    changes: tuple[Change, ...]
    example: Change | None  # the minimal example (generated worlds), if any

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "count": len(self.changes),
            "changes": [c.to_dict() for c in self.changes],
        }
        if self.example is not None and self.example.world is not None:
            out["example"] = {**self.example.to_dict(), "world": world_dict(self.example.world)}
        return out


@attrs.frozen(repr=False)
class PolicyDiff(Value):
    old: Policy
    new: Policy
    groups: tuple[Group, ...]
    checked: Mapping[str, Any]  # what was asked: worlds, seed, questions, scenario files
    # the generated worlds and the instants each was asked at, in order
    cases: tuple[tuple[World, tuple[dt.datetime, ...]], ...] = attrs.field(
        default=(), eq=False, repr=False
    )

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for g in self.groups for c in g.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": _policy_dict(self.old),
            "new": _policy_dict(self.new),
            "checked": dict(self.checked),
            "changed": len(self.changes),
            "groups": [g.to_dict() for g in self.groups],
        }


def _policy_dict(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "version": policy.info.version,
        "digest": policy.digest,
        "path": policy.path,
    }


def _instant(value: dt.datetime) -> str:
    return str(converter.unstructure(value))


# --- asking both ------------------------------------------------------------------------------


def answer(decision: Decision) -> dict[str, Any]:
    """What a decision says, without its explanation."""
    out: dict[str, Any] = {"outcome": decision.outcome}
    for key in ("basis", "until", "due"):
        value = getattr(decision, key)
        if value is not None:
            out[key] = converter.unstructure(value)
    if decision.categories is not None:
        out["categories"] = list(decision.categories)
    if decision.reasons:
        out["reasons"] = list(decision.reasons)
    if decision.findings:
        out["findings"] = [f.code for f in decision.findings]
    if decision.per_record:
        out["records"] = dict(decision.per_record)
    return out


def _ask(engine: Engine, ask: Ask) -> tuple[Answer, Decision | None]:
    try:
        decision = ask(engine)
    except FairprocError as exc:
        return {"error": _first_line(exc)}, None
    return answer(decision), decision


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ProblemsError) and exc.problems:
        return exc.problems[0].message
    return str(exc).splitlines()[0]


def _parts(decision: Decision) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    for check in decision.checks:
        out.setdefault(check.rule, set()).add(
            (check.passed, check.reason, check.detail, check.scope)
        )
    return out


def _turns_on(
    ask: Ask | None,
    old: Decision | None,
    new: Decision | None,
    old_policy: Policy,
    new_policy: Policy,
) -> tuple[str, ...]:
    """The rules whose part differs between the two explanations; for an error, the rules of
    the ids asked about that one policy lacks."""
    if old is not None and new is not None:
        a, b = _parts(old), _parts(new)
        differing = [r for r in dict.fromkeys([*a, *b]) if a.get(r) != b.get(r)]
        if differing:
            return tuple(differing)
        return tuple(dict.fromkeys([*old.rules, *new.rules]))  # pragma: no cover - defensive
    missing: list[str] = []
    if ask is not None:
        kinds = {"purpose": "purposes", "recipient": "recipients"}
        for key, attr in kinds.items():
            value = ask.params.get(key)
            if value is None:
                continue
            for policy in (old_policy, new_policy):
                if value not in getattr(policy, attr):
                    missing.append(f"{key}.{value}")
    if missing:
        return tuple(dict.fromkeys(missing))
    known = set(old_policy.rule_index()) ^ set(new_policy.rule_index())
    cited = [*(old.rules if old else ()), *(new.rules if new else ())]
    return tuple(dict.fromkeys(r for r in cited if r in known)) or ("(error)",)


def compare(
    old: Engine, new: Engine, asks: Iterable[Ask], origin: str, world: World | None = None
) -> list[Change]:
    """Ask ``old`` and ``new`` each of ``asks``; the changes, in order."""
    out: list[Change] = []
    for ask in asks:
        a, da = _ask(old, ask)
        b, db = _ask(new, ask)
        if a != b:
            rules = _turns_on(ask, da, db, old.policy, new.policy)
            out.append(Change(origin, ask, a, b, rules, world))
    return out


def questions(old: Policy, new: Policy, world: World, at: dt.datetime) -> list[Ask]:
    """Every question ``world`` allows at ``at``, over the ids of either policy."""
    purposes = sorted({*old.purposes, *new.purposes})
    recipients = sorted({*old.recipients, *new.recipients})
    out: list[Ask] = []
    for record in sorted(world.records, key=lambda r: r.id):
        rid = record.id
        out.append(Ask("route", {"record": rid}, at))
        out.append(Ask("retention", {"record": rid}, at))
        out.extend(Ask("may_process", {"record": rid, "purpose": p}, at) for p in purposes)
        out.extend(
            Ask("may_share", {"record": rid, "recipient": r, "court_order": False}, at)
            for r in recipients
        )
    out.extend(Ask("transfer", {"recipient": r}, at) for r in recipients)
    if old.info.marketing_purpose or new.info.marketing_purpose:
        out.extend(Ask("may_email", {"subject": s}, at) for s in sorted(world.subjects))
    return out


# --- generated worlds ------------------------------------------------------------------------


def generated_cases(
    policy: Policy, seed: int, count: int, instants: int = 3
) -> list[tuple[World, tuple[dt.datetime, ...]]]:
    """``count`` worlds from the testing kit's strategies for ``policy``, each with
    ``instants`` instants that matter to it; the same for the same seed."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from fairproc.testing import strategies as fst

    cases: list[tuple[World, tuple[dt.datetime, ...]]] = []
    strategy = fst.worlds(policy).flatmap(
        lambda w: st.tuples(
            st.just(w),
            st.lists(fst.instants_for(policy, w), min_size=instants, max_size=instants),
        )
    )

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: tuple[World, list[dt.datetime]]) -> None:
        cases.append((case[0], tuple(case[1])))

    collect()
    return cases


def _smaller_worlds(world: World, keep_record: Any) -> Iterator[World]:
    """``world`` less one suppression entry, one event, or one record (with its events), in
    that order; the record asked about stays."""
    records, events, suppression = list(world.records), list(world.events), list(world.suppression)
    for i in range(len(suppression)):
        yield World(records, events, suppression[:i] + suppression[i + 1 :])
    for i in range(len(events)):
        yield World(records, events[:i] + events[i + 1 :], suppression)
    for i, record in enumerate(records):
        if record.id != keep_record:
            rest = records[:i] + records[i + 1 :]
            yield World(rest, [e for e in events if e.record != record.id], suppression)


def shrink(change: Change, old: Policy, new: Policy) -> Change:
    """A smaller world on which the same question still changes, turning on the same rules:
    suppression entries, events and records taken away one at a time while it does."""
    assert change.world is not None and change.ask is not None
    ask = change.ask
    best = change
    while True:
        assert best.world is not None
        for candidate in _smaller_worlds(best.world, ask.params.get("record")):
            found = compare(Engine(old, candidate), Engine(new, candidate), [ask], change.origin)
            if found and found[0].rules == change.rules:
                best = attrs.evolve(found[0], world=candidate)
                break
        else:
            return best


def world_dict(world: World) -> dict[str, Any]:
    """A world as plain data (records with their data: generated worlds hold made-up values)."""
    return {
        "records": [
            {
                "id": r.id,
                "subject": r.subject,
                "source": r.source,
                "collected_at": _instant(r.collected_at),
                "data": converter.unstructure(dict(r.data)),
            }
            for r in world.records
        ],
        "events": [
            {
                k: v
                for k, v in (
                    ("subject", e.subject),
                    ("kind", e.kind),
                    ("at", _instant(e.at)),
                    ("record", e.record),
                    ("purpose", e.purpose),
                )
                if v is not None
            }
            for e in world.events
        ],
        "suppression": [
            {"email": s.email, "at": _instant(s.at), "reason": s.reason} for s in world.suppression
        ],
    }


# --- scenarios -------------------------------------------------------------------------------


def _sweep_rules(
    scenario: Scenario, at: dt.datetime, records: Iterable[str], old: Policy, new: Policy
) -> tuple[str, ...]:
    """The rules a sweep's change turns on: those of the retention decisions, about the
    records due under one policy only, that differ."""
    world = scenario.world()
    e_old, e_new = Engine(old, world), Engine(new, world)
    rules: list[str] = []
    for record in records:
        ask = Ask("retention", {"record": record}, at)
        rules.extend(r for c in compare(e_old, e_new, [ask], "") for r in c.rules)
    return tuple(dict.fromkeys(rules)) or ("(sweep)",)


def _scenario_changes(path: Path, old: Policy, new: Policy) -> list[Change]:
    runs: list[list[ExpectationResult] | str] = []
    scenario: Scenario | None = None
    for policy in (old, new):
        try:
            loaded = load_scenario(path, policy)
        except ProblemsError as exc:
            runs.append(_first_line(exc))
            continue
        runs.append(list(run_scenario(loaded).expectations))
        scenario = loaded
    before, after = runs
    origin = str(path)
    if isinstance(before, str) or isinstance(after, str):
        if before == after:
            return []
        old_text = before if isinstance(before, str) else "loads"
        new_text = after if isinstance(after, str) else "loads"
        rules = _unknown_ids(old_text if isinstance(before, str) else new_text)
        return [Change(origin, None, {"file": old_text}, {"file": new_text}, rules)]
    out = []
    # Until a request changes it, the scenario's own world is where an expectation is asked: a
    # world an example may start from (checked again before it is used).
    world = scenario.world() if scenario is not None else None
    for a, b in zip(before, after, strict=True):
        da, db = a.decision, b.decision
        old_answer = answer(da) if da is not None else dict(a.actual) or {"error": a.error}
        new_answer = answer(db) if db is not None else dict(b.actual) or {"error": b.error}
        if old_answer != new_answer:
            exp = a.expectation
            ask = Ask(exp.ask, {k: v for k, v in exp.params.items() if v is not None}, exp.at)
            if exp.ask == "sweep" and scenario is not None:
                due = set(a.actual.get("due") or ()) ^ set(b.actual.get("due") or ())
                rules = _sweep_rules(scenario, exp.at, sorted(due), old, new)
            else:
                rules = _turns_on(ask, da, db, old, new)
            asked_of = world if exp.ask in ENGINE_QUESTIONS else None
            change = Change(f"{origin}: {exp.name}", ask, old_answer, new_answer, rules, asked_of)
            out.append(change)
        if a.expectation.ask == "request":
            world = None
    return out


def _unknown_ids(message: str) -> tuple[str, ...]:
    import re

    found = re.search(r"unknown (purpose|recipient|source) '([^']+)'", message)
    if found:
        return (f"{found.group(1)}.{found.group(2)}",)
    return ("(scenario file)",)


# --- the whole -------------------------------------------------------------------------------


def diff_policies(
    old: Policy,
    new: Policy,
    *,
    scenarios: Iterable[str | Path] = (),
    worlds: int = 100,
    seed: int = 0,
    instants: int = 3,
) -> PolicyDiff:
    """The decisions ``old`` and ``new`` take differently (see the module's docstring)."""
    changes: list[Change] = []
    cases: list[tuple[World, tuple[dt.datetime, ...]]] = []
    checked: dict[str, Any] = {"seed": seed, "worlds": 0, "questions": 0, "scenario_files": 0}
    if worlds > 0:
        try:
            import hypothesis  # noqa: F401
        except ImportError:
            checked["generated"] = "skipped: hypothesis is not installed (fairproc[dev])"
        else:
            half = (worlds + 1) // 2
            cases = generated_cases(old, seed, half, instants)
            cases += generated_cases(new, seed, worlds - half, instants)
            for n, (world, times) in enumerate(cases):
                e_old, e_new = Engine(old, world), Engine(new, world)
                for at in times:
                    asks = questions(old, new, world, at)
                    checked["questions"] += len(asks)
                    changes.extend(compare(e_old, e_new, asks, f"generated world {n}", world))
            checked["worlds"] = len(cases)
    files = find_files(scenarios)
    checked["scenario_files"] = len(files)
    for path in files:
        changes.extend(_scenario_changes(path, old, new))
    by_rule: dict[str, list[Change]] = {}
    for change in changes:
        by_rule.setdefault(", ".join(change.rules), []).append(change)
    groups = []
    for rule in sorted(by_rule):
        members = by_rule[rule]
        example = _example(members, old, new)
        groups.append(Group(rule, tuple(members), example))
    return PolicyDiff(old, new, tuple(groups), checked, tuple(cases))


def _example(members: Sequence[Change], old: Policy, new: Policy) -> Change | None:
    """The minimal example of a group: from its smallest generated world, or else from a
    scenario's world on which the same question changes again, turning on the same rules."""
    generated = [c for c in members if c.world is not None and c.origin.startswith("generated")]
    if generated:
        return shrink(min(generated, key=lambda c: _size(c.world)), old, new)
    for change in sorted(
        (c for c in members if c.world is not None and c.ask is not None),
        key=lambda c: _size(c.world),
    ):
        assert change.world is not None and change.ask is not None
        again = compare(
            Engine(old, change.world), Engine(new, change.world), [change.ask], change.origin
        )
        if again and again[0].rules == change.rules:
            return shrink(attrs.evolve(again[0], world=change.world), old, new)
    return None


def _size(world: World | None) -> int:
    if world is None:
        return 0
    return len(world.records) + len(world.events) + len(world.suppression)


# --- rendering -------------------------------------------------------------------------------


def _answer_text(value: Answer) -> str:
    return "; ".join(
        f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items()
    )


def render_markdown(result: PolicyDiff, limit: int = 20) -> str:
    old, new = result.old, result.new
    checked = result.checked
    out = [
        f"# Policy diff: {old.id} {old.info.version or '(no version)'} → "
        f"{new.id} {new.info.version or '(no version)'}",
        "",
        f"- old: `{old.path}` ({old.digest})",
        f"- new: `{new.path}` ({new.digest})",
        f"- asked: {checked['worlds']} generated worlds (seed {checked['seed']}), "
        f"{checked['questions']} questions of each policy; "
        f"{checked['scenario_files']} scenario files",
    ]
    if "generated" in checked:
        out.append(f"- generated worlds {checked['generated']}")
    changed = result.to_dict()["changed"]
    out += ["", f"**{changed} decisions change**" if changed else "**No decision changes.**", ""]
    for group in result.groups:
        out += [f"## `{group.rule}`: {len(group.changes)} decisions change", ""]
        out += ["| where | question | old | new |", "|---|---|---|---|"]
        for change in group.changes[:limit]:
            question = change.ask.label() if change.ask else "(the file)"
            out.append(
                f"| {change.origin} | {question} | {_answer_text(change.old)} | "
                f"{_answer_text(change.new)} |".replace("\n", " ")
            )
        if len(group.changes) > limit:
            out.append(f"| … | {len(group.changes) - limit} more | | |")
        example = group.example
        if example is not None and example.world is not None and example.ask is not None:
            out += [
                "",
                f"Minimal example: `{example.ask.label()}`: "
                f"old {_answer_text(example.old)}; new {_answer_text(example.new)}",
                "",
                "```json",
                json.dumps(world_dict(example.world), indent=2, ensure_ascii=False),
                "```",
            ]
        out.append("")
    return "\n".join(out)


def render_json(result: PolicyDiff) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)

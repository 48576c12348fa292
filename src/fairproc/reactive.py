"""The reactive engine: a policy's reactions compiled to durable-rules and fired as things
arrive.

durable-rules (a Rete engine with a C core) is an optional extra::

    pip install "fairproc[durable]"

and is imported only when a :class:`ReactiveEngine` is made; without it the rest of fairproc
works, and making one raises :class:`DurableUnavailable` saying what to install.

How it works. Each reaction's ``when`` is compiled from the same condition AST as the Python
evaluator to a durable-rules JSON condition, one rule per reaction, in one ruleset per engine
(several for hundreds of reactions: durable-rules hangs on 512 rules testing one field).
An arrival is normalised to a flat message (strings only: the arrival type, the record's id,
subject and source, or the event's kind, purpose and record; a flag per category a rule tests)
and asserted as a fact, so that every matching rule fires (an event fires only the first), then
retracted, so working memory stays empty. The rules' actions only note which reactions matched;
what a reaction decides and changes is then done by the same Python code as the reference
(:func:`fairproc.reactions.carry_out`), so both backends give the same decisions and changes.

What compiles to durable-rules, exactly: ``==`` and ``!=`` between an arrival's string field
and a literal, ``in`` / ``not in`` a list (an ``$or`` of equalities, an ``$and`` of ``$neq``),
``'<category>' in record.categories``, ``is None`` / ``is not None``, ``true`` / ``false``, and
``and`` / ``or`` / ``not`` of those (``not`` is pushed down to the leaves; where a field may be
missing, the negation of a comparison also matches its absence, since a comparison with a
missing operand is false in both backends).

What does not, and is evaluated in Python (a guard, run when durable-rules matches): calls
(``in_office_hours``, ``weekday``, ``objected``...), ``subject.*`` facts other than
``subject.id`` (they need the subject's timeline), instants and periods (no instant literal can
be written, and Python compares two instants of the same zone by wall clock while epoch
integers would compare them as instants), ordering of strings (durable-rules orders
their JSON text), and comparisons between two names. The part of a condition durable-rules can
test is still compiled, as a necessary condition, and the whole ``when`` is then checked in
Python. An arrival holding a string of 64 KiB or more (which durable-rules would compare by a
prefix) is matched in Python altogether. A rule file means the same on both backends:
correctness first.

durable-rules keeps global state in its C core and, by default, two timer threads per host
that never stop. Here each engine has its own :class:`durable.engine.Host` subclass instance
with no timer threads (actions run inline, in the caller's thread), rulesets named with a
fresh uuid, one session (every message goes to durable-rules' default ``sid``, whose limit of
1,024 sessions is never reached), definitions deep-copied before durable-rules mutates them,
and :meth:`close` (also a context manager, and run when the engine is garbage collected)
deletes the rulesets from the C core. An exception raised in an action, which durable-rules
would swallow into the session state, is raised again from :meth:`ReactiveEngine.post`.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import re
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType, TracebackType
from typing import Any

import attrs

from fairproc.conditions import And, Compare, Const, In, Kind, ListOf, Node, Not, Or, Present, Ref
from fairproc.conditions.vocabulary import Ctx
from fairproc.engine import Engine
from fairproc.errors import FairprocError
from fairproc.model import Policy, Reaction, Record
from fairproc.reactions import Arrival, ReactionSession, matching
from fairproc.values import Value
from fairproc.world import HistorySource

__all__ = [
    "INSTALL",
    "CompiledReaction",
    "DurableUnavailable",
    "ReactiveEngine",
    "available",
    "compile_reaction",
    "compile_when",
    "load_durable",
    "message",
]

INSTALL = 'pip install "fairproc[durable]"'


class DurableUnavailable(FairprocError):
    """durable-rules cannot be imported: the message says what to install."""


@attrs.frozen(repr=False)
class _Durable(Value):
    engine: ModuleType  # durable.engine
    core: ModuleType  # durable_rules_engine, the C extension


@functools.cache
def load_durable() -> _Durable:
    """durable-rules' modules, imported on first use; :class:`DurableUnavailable` if they
    cannot be."""
    try:
        engine = importlib.import_module("durable.engine")
        core = importlib.import_module("durable_rules_engine")
    except ImportError as exc:
        raise DurableUnavailable(
            "the reactive engine needs durable-rules, which could not be imported "
            f"({exc}). Install it with: {INSTALL}. durable-rules 2.0.28 builds a C extension "
            "(it needs a C compiler and the Python headers) and does not import on Python "
            "3.13 or later; there, use the pure-Python fairproc.reactions.ReactionSession, "
            "which gives the same answers."
        ) from exc
    return _Durable(engine, core)


def available() -> bool:
    """Whether durable-rules can be imported here."""
    try:
        load_durable()
    except DurableUnavailable:
        return False
    return True


# --- compiling a condition -------------------------------------------------------------------

# A compiled condition: a durable-rules JSON test, or True (no test: always) or False (never).
Cond = Mapping[str, Any] | bool

# The arrival's string fields a rule can test, and the message key each is posted under.
_FIELDS = {
    "record": {
        "subject.id": "subject_id",
        "record.id": "record_id",
        "record.subject": "record_subject",
        "record.source": "record_source",
    },
    "event": {
        "subject.id": "subject_id",
        "event.kind": "event_kind",
        "event.purpose": "event_purpose",
        "event.record": "event_record",
    },
}
_OPTIONAL = frozenset({"event.purpose", "event.record"})  # may be missing (None)
# Names that always have a value for an arrival of that type: ``is not None`` is true.
_ALWAYS = {
    "record": frozenset(
        {"at", "subject.id", "record.id", "record.subject", "record.source"}
        | {"record.collected_at", "record.categories"}
    ),
    "event": frozenset({"at", "subject.id", "event.kind", "event.at"}),
}
_CATEGORY_KEY = re.compile(r"[A-Za-z0-9_-]{1,200}")
_NEGATED_OP = {"==": "!=", "!=": "=="}


def _all(parts: Sequence[Cond]) -> Cond:
    if any(p is False for p in parts):
        return False
    tests = [p for p in parts if not isinstance(p, bool)]
    if not tests:
        return True
    return tests[0] if len(tests) == 1 else {"$and": tests}


def _any(parts: Sequence[Cond]) -> Cond:
    if any(p is True for p in parts):
        return True
    tests = [p for p in parts if not isinstance(p, bool)]
    if not tests:
        return False
    return tests[0] if len(tests) == 1 else {"$or": tests}


class _Compiler:
    """Compile one ``when`` for arrivals of one type (``record`` or ``event``).

    ``cond(node, negated)`` gives ``(test, exact)``: ``test`` holds whenever the node (or, with
    ``negated``, its negation) holds; ``exact`` when it holds only then. A part that cannot be
    compiled gives ``(True, False)``: no test, and the guard in Python decides.
    """

    def __init__(self, on: str):
        self.on = on
        self.fields = _FIELDS[on]
        self.keys: set[str] = {"t"}

    def key(self, name: str) -> str:
        key = self.fields[name]
        self.keys.add(key)
        return key

    def missing_or(self, name: str, test: Cond) -> Cond:
        """``test``, or the field is missing: what a negated comparison also matches."""
        if name not in _OPTIONAL:
            return test
        return _any([test, {"$nex": {self.key(name): 1}}])

    def cond(self, node: Node, negated: bool) -> tuple[Cond, bool]:
        if isinstance(node, Not):
            return self.cond(node.item, not negated)
        if isinstance(node, And | Or):
            parts = [self.cond(item, negated) for item in node.items]
            exact = all(e for _, e in parts)
            # De Morgan: a negated 'and' is an 'or' of the negations, and the other way round.
            if isinstance(node, And) != negated:
                if any(c is False and e for c, e in parts):
                    return False, True
                return _all([c for c, _ in parts]), exact
            if any(c is True and e for c, e in parts):
                return True, True
            return _any([c for c, _ in parts]), exact
        if isinstance(node, Const) and node.type.kind is Kind.BOOL:
            return bool(node.value) != negated, True
        if isinstance(node, Compare):
            return self.compare(node, negated)
        if isinstance(node, In):
            return self.membership(node, negated)
        if isinstance(node, Present) and isinstance(node.item, Ref):
            name = node.item.name
            if name in _ALWAYS[self.on]:
                return not negated, True
            if name in _OPTIONAL and name in self.fields:
                return {"$nex" if negated else "$ex": {self.key(name): 1}}, True
        return True, False

    def compare(self, node: Compare, negated: bool) -> tuple[Cond, bool]:
        ref, const = node.left, node.right
        if isinstance(ref, Const):
            ref, const = const, ref
        if not (
            node.op in _NEGATED_OP
            and isinstance(ref, Ref)
            and ref.name in self.fields
            and isinstance(const, Const)
            and isinstance(const.value, str)
        ):
            return True, False
        op = _NEGATED_OP[node.op] if negated else node.op
        key = self.key(ref.name)
        test: Cond = {key: const.value} if op == "==" else {"$neq": {key: const.value}}
        return (self.missing_or(ref.name, test) if negated else test), True

    def membership(self, node: In, negated: bool) -> tuple[Cond, bool]:
        item, container = node.item, node.container
        if isinstance(container, ListOf):
            if not (isinstance(item, Ref) and item.name in self.fields):
                return True, False
            values = [c.value for c in container.items]
            if not all(isinstance(v, str) for v in values):
                return True, False
            key = self.key(item.name)
            equal = [{key: v} for v in values]
            differ = [{"$neq": {key: v}} for v in values]
            if not negated:  # present, and in (or, with 'not in', not in) the list
                return (_all(differ) if node.negated else _any(equal)), True
            # not (x in L): x missing, or not in L; not (x not in L): x missing, or in L
            return self.missing_or(item.name, _any(equal) if node.negated else _all(differ)), True
        if (
            self.on == "record"
            and isinstance(container, Ref)
            and container.name == "record.categories"
            and isinstance(item, Const)
            and isinstance(item.value, str)
            and _CATEGORY_KEY.fullmatch(item.value)
        ):
            key = f"record_has_{item.value}"
            self.keys.add(key)
            absent = node.negated != negated
            return {"$nex" if absent else "$ex": {key: 1}}, True
        return True, False


def compile_when(node: Node | None, on: str) -> tuple[Cond, bool, frozenset[str]]:
    """``(test, exact, keys)``: the durable-rules test for a ``when`` (None: always), whether
    it decides alone (otherwise the ``when`` is also checked in Python), and the message keys
    it reads. The arrival-type test ``t`` is always part of the test: a rule that only tests
    for absence would match durable-rules' own state document, and loop."""
    compiler = _Compiler(on)
    test, exact = (True, True) if node is None else compiler.cond(node, False)
    return _all([{"t": on}, test]), exact, frozenset(compiler.keys)


@attrs.frozen(repr=False)
class CompiledReaction(Value):
    """One reaction as a durable-rules rule (None: it can never fire)."""

    reaction: Reaction
    rule: Mapping[str, Any] | None
    exact: bool  # False: the ``when`` is checked in Python when the rule fires
    keys: frozenset[str]


def compile_reaction(reaction: Reaction, action: str) -> CompiledReaction:
    """Compile ``reaction`` to a rule whose action is named ``action``."""
    node = None if reaction.when is None else reaction.when.node
    test, exact, keys = compile_when(node, reaction.on)
    rule = None if test is False else {"all": [{"m": test}], "run": action}
    return CompiledReaction(reaction, rule, exact, keys)


# --- the message an arrival is posted as -----------------------------------------------------


def message(arrival: Arrival, keys: frozenset[str]) -> dict[str, Any]:
    """``arrival`` as the flat message the rules read: only the ``keys`` some rule tests,
    strings as they are (an id, a source, a kind), missing values left out (durable-rules
    counts ``null`` as present), a category as the flag ``record_has_<id>: 1``."""
    if isinstance(arrival, Record):
        msg: dict[str, Any] = {"t": "record"}
        values: Mapping[str, Any] = {
            "subject_id": arrival.subject,
            "record_id": arrival.id,
            "record_subject": arrival.subject,
            "record_source": arrival.source,
        }
        for category in arrival.categories:
            key = f"record_has_{category}"
            if key in keys:
                msg[key] = 1
    else:
        msg = {"t": "event"}
        values = {
            "subject_id": arrival.subject,
            "event_kind": arrival.kind,
            "event_purpose": arrival.purpose,
            "event_record": arrival.record,
        }
    for key, value in values.items():
        if value is not None and key in keys:
            msg[key] = value
    return msg


def _fits(msg: Mapping[str, Any]) -> bool:
    """Whether durable-rules compares every string of ``msg`` whole: it holds a string's
    length (as JSON text) in 16 bits, so one of 64 KiB or more is compared by a prefix (a
    record id of 65,546 'x's equals 'xxxxxxxxxx'). Such an arrival is matched in Python.
    (A condition's literals are far shorter: a condition is at most 4,000 characters.)"""
    return all(
        not isinstance(value, str)
        or len(value) < 10_000  # even escaped, 6 bytes a character at most: under 64 KiB
        or len(json.dumps(value, ensure_ascii=False).encode()) < 65_000
        for value in msg.values()
    )


# --- the engine ------------------------------------------------------------------------------


class _Matches:
    """What the rules' actions report for one post: the reactions matched, and any error."""

    def __init__(self) -> None:
        self.hits: list[int] = []
        self.errors: list[BaseException] = []

    def hit(self, index: int) -> None:
        self.hits.append(index)

    def action(self, index: int) -> Callable[[Any], None]:
        def run(closure: Any) -> None:
            try:
                self.hit(index)
            except BaseException as exc:  # durable-rules would swallow it into the state
                self.errors.append(exc)

        return run


@functools.cache
def _host_class() -> type[Any]:
    base = load_durable().engine.Host

    class Host(base):  # type: ignore[misc, valid-type]
        """One engine's host: no timer threads, actions looked up in the engine's table."""

        def __init__(
            self, actions: Mapping[str, Callable[[Any], None]], definitions: dict[str, Any]
        ):
            self._fairproc_actions = actions
            super().__init__(definitions)

        def _run(self) -> None:
            # No dispatch threads (they never stop, and run actions on another thread): every
            # action runs inline, in the thread that posts. This engine starts no timers.
            return None

        def get_action(self, action_name: str) -> Callable[[Any], None]:
            return self._fairproc_actions[action_name]

        def load_ruleset(self, ruleset_name: str) -> Any:
            raise FairprocError(f"no ruleset {ruleset_name!r} in this reactive engine")

    return Host


def _delete_rulesets(core: ModuleType, handles: list[int]) -> None:
    while handles:
        core.delete_ruleset(handles.pop())


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_SID_NOT_FOUND = 309  # durable-rules' ERR_SID_NOT_FOUND
_MAX_RULES = 256


class ReactiveEngine(ReactionSession):
    """Post arrivals; durable-rules chooses the reactions that fire, and fairproc carries them
    out exactly as :class:`fairproc.reactions.ReactionSession` does.

    ::

        with ReactiveEngine(load_policy("flexioffices")) as reactive:
            reacted = reactive.post(Record("r1", "ada", "quick_quote", at, data))
            reacted.decision.outcome   # 'pass_to_providers' on a Saturday

    Engines share nothing: each has its own host and uniquely named rulesets, so two engines
    (of different policies, or of the same one) live side by side in one process. Use it as a
    context manager, or call :meth:`close`, to free the rulesets in durable-rules' C core.
    """

    def __init__(self, policy: Policy | Engine, store: HistorySource | None = None):
        durable = load_durable()  # first: without durable-rules, say what to install
        super().__init__(policy, store)
        self._core = durable.core
        self._not_handled: type[BaseException] = durable.engine.MessageNotHandledException
        self.name = f"fairproc_{_UNSAFE.sub('_', self.policy.id)[:60]}_{uuid.uuid4().hex}"
        self.compiled: tuple[CompiledReaction, ...] = tuple(
            compile_reaction(r, f"r{i}") for i, r in enumerate(self.policy.reactions)
        )
        self._keys = {
            on: frozenset().union(*(c.keys for c in self.compiled if c.reaction.on == on))
            for on in ("record", "event")
        }
        # Rulesets of at most _MAX_RULES rules: durable-rules hangs on 512 rules testing one
        # field. A policy of a few dozen reactions has one ruleset.
        names = [f"r{i}" for i, c in enumerate(self.compiled) if c.rule is not None]
        chunks = [names[k : k + _MAX_RULES] for k in range(0, len(names), _MAX_RULES)] or [[]]
        self.definition: Mapping[str, Mapping[str, Any]] = {
            f"{self.name}_{n}": {name: self.compiled[int(name[1:])].rule for name in chunk}
            for n, chunk in enumerate(chunks)
        }
        self.rulesets = tuple(self.definition)
        self._targets = {
            on: tuple(
                ruleset
                for ruleset, rules in self.definition.items()
                if any(self.compiled[int(name[1:])].reaction.on == on for name in rules)
            )
            for on in self._keys
        }
        self._matches = _Matches()
        actions = {name: self._matches.action(int(name[1:])) for name in names}
        # durable-rules deletes each rule's 'run' from the definition it is given: a copy.
        self._host: Any = _host_class()(actions, copy.deepcopy(dict(self.definition)))
        self._handles: list[int] = [r._handle for r in self._host._ruleset_list]
        self._finalizer = weakref.finalize(self, _delete_rulesets, self._core, self._handles)

    # -- lifetime --

    @property
    def closed(self) -> bool:
        return self._host is None

    def close(self) -> None:
        """Delete the rulesets from durable-rules; posting afterwards is an error."""
        self._host = None
        self._finalizer()

    def __enter__(self) -> ReactiveEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- matching --

    def _open(self) -> Any:
        if self._host is None:
            raise FairprocError(f"reactive engine {self.name} is closed")
        return self._host

    def _matching(self, arrival: Arrival, ctx: Ctx) -> tuple[Reaction, ...]:
        host = self._open()
        on = "record" if isinstance(arrival, Record) else "event"
        targets = self._targets[on]
        if not targets:
            return ()
        msg = message(arrival, self._keys[on])
        if not _fits(msg):
            return matching(self.policy, arrival, ctx)
        matches = self._matches
        matches.hits.clear()
        matches.errors.clear()
        for ruleset in targets:
            try:
                host.assert_fact(ruleset, msg)
            except self._not_handled:
                continue  # no rule matched (and durable-rules kept nothing)
            host.retract_fact(ruleset, msg)
        if matches.errors:
            raise matches.errors[0]
        fired = []
        for index in sorted(set(matches.hits)):
            compiled = self.compiled[index]
            when = compiled.reaction.when
            if compiled.exact or when is None or bool(when.evaluate(ctx)):
                fired.append(compiled.reaction)
        return tuple(fired)

    def facts(self) -> list[Any]:
        """What durable-rules holds in working memory (empty between posts)."""
        host = self._open()
        facts: list[Any] = []
        for ruleset in self.rulesets:
            try:
                facts += host.get_facts(ruleset)
            except self._core.error as exc:
                if not str(exc).endswith(f"error code: {_SID_NOT_FOUND}"):
                    raise
                # nothing was ever asserted there: there is no session state yet
        return facts

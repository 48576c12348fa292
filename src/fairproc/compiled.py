"""The policy's questions compiled: one specialised function per question and source (and
purpose, or recipient), made once per engine.

The engine's questions (:class:`fairproc.engine.Engine`) are the reference: they find the
rules that apply in the engine's indexes at every call. Compiled, each ``may_process`` for a
(source, purpose), each ``route`` and ``retention`` for a source and each ``may_share`` for a
recipient is a closure holding exactly the rules that can apply, their conditions' compiled
closures, reasons and outcomes bound in, so nothing is looked up in the policy while it
decides. While deciding it
records a compact trace as plain data (which grant held, the erasure instant, the retention
verdict, which rule passed); the explanation is built from that trace the first time anyone
reads it, by the engine's own check builders, so a compiled decision says word for word what
the engine's says (``tests/test_compiled.py`` holds them to it on generated worlds).

``may_process`` and ``route`` also remember what they decided, in the subject's history, with
the stretch of time it holds for (see "how long an answer holds" below): at another instant of
the stretch the trace is given again with the new instant, and a route whose facts never read
``at`` gives a copy of the first decision, its explanation's text written once.

>>> from fairproc.compiled import compile_questions
>>> questions = compile_questions(engine)          # doctest: +SKIP
>>> questions.may_process(record, "marketing_updates", at).explain()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fairproc.clock import require_aware
from fairproc.conditions import (
    And,
    Call,
    Compare,
    Compiled,
    Condition,
    Const,
    In,
    ListOf,
    Node,
    Not,
    Or,
    Present,
    Ref,
    Shift,
    reads,
    remember,
)
from fairproc.conditions.to_python import compile_python
from fairproc.conditions.vocabulary import Ctx, vocabulary
from fairproc.decisions import Check, Decision, Finding, LazyChecks
from fairproc.engine import (
    Engine,
    Routed,
    marketing,
    process_outcome,
    route_outcome,
    share_checks,
)
from fairproc.errors import InputError
from fairproc.model import Policy, Purpose, Recipient, Record
from fairproc.retention import (
    TIMELINE_FUNCTIONS,
    Kept,
    Verdict,
    choose,
    collection_facts,
    rules_for,
    timeline_only,
)
from fairproc.world import SubjectHistory

__all__ = ["CompiledQuestions", "compile_questions"]

# (allowed, the reasons a denial gives, the trace an explanation is built from)
Process = Callable[[Record, Ctx], tuple[bool, tuple[str, ...], tuple[Any, ...]]]
Weigh = Callable[[Record, Ctx], Kept]
Route = Callable[[Record, dt.datetime, SubjectHistory], Decision]
Share = Callable[[Record, Ctx, bool], Decision]


def compile_questions(engine: Engine) -> CompiledQuestions:
    """The engine's questions compiled for its policy: make it once and keep it beside the
    engine (it asks the engine's store, through the engine's cache of histories)."""
    return CompiledQuestions(engine)


class CompiledQuestions:
    """``may_process``, ``may_email``, ``route``, ``retention`` and ``may_share`` of an engine,
    compiled per source, purpose and recipient; each gives the decision the engine gives."""

    def __init__(self, engine: Engine):
        self.engine = engine
        policy = engine.policy
        self._weigh: dict[str, Weigh] = {s: self._compile_weigh(s) for s in policy.sources}
        self._process: dict[tuple[str, str], Process] = {
            (source, purpose.id): self._compile_process(source, purpose)
            for source in policy.sources
            for purpose in policy.purposes.values()
        }
        self._route: dict[str, Route] = {s: self._compile_route(s) for s in policy.sources}
        self._share: dict[str, Share] = {
            r.id: self._compile_share(r) for r in policy.recipients.values()
        }

    # -- retention --

    def _compile_weigh(self, source: str) -> Weigh:
        """``retention.weigh`` for records of ``source``: its rules, their conditions and
        periods bound in, in policy order."""
        tz = self.engine.tz
        steps: list[tuple[Any, Compiled | None, str, Compiled | None, Any]] = []
        for rule in rules_for(self.engine.policy, source):
            when = rule.when.evaluate if rule.when is not None else None
            if rule.review:
                steps.append((rule, when, "review", None, None))
            elif rule.forever or rule.keep is None or rule.from_ is None:
                steps.append((rule, when, "keep", None, None))
            else:
                steps.append((rule, when, "dated", rule.from_.evaluate, rule.keep))
        plan = tuple(steps)

        def weigh(record: Record, ctx: Ctx) -> Kept:
            verdicts: list[Verdict] = []
            ts = ctx.ts
            for rule, when, kind, anchor_of, keep in plan:
                if when is not None and not when(ctx):
                    continue
                if kind != "dated":
                    verdicts.append(Verdict(rule, kind, None))
                    continue
                anchor = anchor_of(ctx)  # type: ignore[misc]
                if anchor is None:
                    verdicts.append(Verdict(rule, "keep", None))
                else:
                    until = keep.add_to(anchor, tz)
                    verdicts.append(
                        Verdict(rule, "keep" if ts < until.timestamp() else "delete", until)
                    )
            return choose(verdicts)

        return weigh

    def _retain(self, rec: Record, ctx: Ctx) -> Kept:
        """The record's retention at the context's instant, remembered as the engine does
        (the same memo key: the engine's questions and these share what is worked out)."""
        return self.engine._retain(rec, ctx, self._weigh[rec.source])

    # -- may_process --

    def _compile_process(self, source: str, purpose: Purpose) -> Process:
        engine = self.engine
        grants = engine._grants.get((purpose.id, source), ())
        # per grant: its condition, and the processing rules its basis binds
        plans = tuple(
            (
                grant,
                grant.when.evaluate if grant.when is not None else None,
                tuple(
                    (p, p.require.evaluate, p.reason)
                    for p in engine._processing.get((purpose.id, grant.basis), ())
                ),
            )
            for grant in grants
        )
        unbased = tuple(
            (p, p.require.evaluate, p.reason) for p in engine._any_basis.get(purpose.id, ())
        )
        retain = self._retain
        stretch = _stretch(
            engine.policy,
            [
                *((g.when, "grant") for g in grants),
                *((p.require, "processing") for _, _, bound in plans for p, _, _ in bound),
                *((p.require, "processing") for p, _, _ in unbased),
                *_retention_conditions(engine.policy, source),
            ],
        )
        token = object()  # this closure's key in a history's memo

        def decide(rec: Record, ctx: Ctx) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
            if stretch is not None:
                held = ctx.history.memo.get((token, rec.id))
                if (
                    held is not None
                    and held.start <= ctx.ts < held.end
                    and (held.record is rec or held.record == rec)
                ):
                    # what was decided holds at this instant: only the instant is new
                    was: _ProcessHeld = held.decided
                    grant = was.grant
                    if grant is not None:
                        ctx.basis = grant.basis
                    state = (rec, purpose, ctx, grants, grant, was.erased, was.kept, was.prules)
                    return was.ok, was.why, (*state, was.passed)
            grant = None
            rules = unbased
            for g, when, bound in plans:
                if when is None or when(ctx):
                    grant, rules = g, bound
                    break
            erased = ctx.history.record_event_at(rec.id, "erase", ctx.ts)
            kept = retain(rec, ctx)
            if grant is not None:
                ctx.basis = grant.basis
            passed = [bool(require(ctx)) for _, require, _ in rules]
            prules = tuple(p for p, _, _ in rules)
            ok, why, state = process_outcome(
                (rec, purpose, ctx, grants, grant, erased, kept, prules, passed)
            )
            if stretch is not None:
                start, end = stretch.about(ctx, [v.until for v in kept.verdicts])
                was = _ProcessHeld(ok, why, grant, erased, kept, prules, passed)
                remember(ctx.history.memo, (token, rec.id), Held(start, end, rec, was))
            return ok, why, state

        return decide

    def may_process(self, record: Record | str, purpose: str, at: dt.datetime) -> Decision:
        """:meth:`Engine.may_process`, compiled."""
        engine = self.engine
        at = require_aware(at)
        rec = engine._record(record)
        decide = self._process.get((rec.source, purpose))
        if decide is None:
            engine._purpose(purpose)  # the engine's error for an unknown purpose
            raise AssertionError(purpose)  # pragma: no cover - every pair is compiled
        ctx = Ctx(at, engine.history(rec.subject), rec, purpose)
        return engine.process_decision(rec, ctx, decide(rec, ctx))

    # -- may_email --

    def may_email(self, subject: str, at: dt.datetime) -> Decision:
        """:meth:`Engine.may_email`, compiled."""
        at = require_aware(at)
        purpose, _ = marketing(self.engine.policy)
        process = self._process
        return self.engine.email_decision(
            subject, at, lambda rec, ctx: process[(rec.source, purpose.id)](rec, ctx)
        )

    # -- route --

    def _compile_route(self, source: str) -> Route:
        """``route`` for records of ``source``: its routing rules, in order, with their
        conditions compiled, bound in (the engine keeps the same plan per source), deciding as
        :meth:`Engine.route_decision` does."""
        engine = self.engine
        plan = engine._route_plans.get(source, ())
        route_checks = engine._route_checks
        tz = engine.tz
        conditions = [(c, "routing") for rule, *_ in plan for c in (rule.when, rule.due)]
        stretch = _stretch(engine.policy, conditions)
        # Checks whose facts never read ``at`` are the same all through the stretch: built,
        # and written, once for every decision in it.
        shared = stretch is not None and not any(
            _AT in reads(c.node) for c, _ in conditions if c is not None
        )
        token = object()  # this closure's key in a history's memo
        check = engine._checked

        def route(rec: Record, at: dt.datetime, history: SubjectHistory) -> Decision:
            held = None if stretch is None else history.memo.get((token, rec.id))
            if held is not None and not (
                held.start <= at.timestamp() < held.end
                and (held.record is rec or held.record == rec)
            ):
                held = None  # decided for another stretch, or another record with this id
            if held is not None:
                # this record (or one equal to it) was checked when the answer was made
                kept: _RouteHeld = held.decided
                if shared:
                    return kept.again(at)
                routed = kept.routed
                ctx = Ctx(at, history, rec)
            else:
                check(rec)
                ctx = Ctx(at, history, rec)
                routed = route_outcome(plan, ctx)
            outcome = routed.outcome
            decision = Decision(
                "route",
                outcome,
                at,
                {"record": rec.id},
                due=routed.due,
                reasons=routed.reasons,
                checks=LazyChecks(
                    route_checks, routed.rule, ctx, routed.holds, outcome, routed.passed
                ),
                tz=tz,
            )
            if stretch is not None and held is None:
                start, end = stretch.about(ctx, ())
                kept = _RouteHeld(routed, decision.at_instants())
                remember(history.memo, (token, rec.id), Held(start, end, rec, kept))
            return decision

        return route

    def route(self, record: Record | str, at: dt.datetime) -> Decision:
        """:meth:`Engine.route`, compiled."""
        engine = self.engine
        at = require_aware(at)
        if isinstance(record, Record):
            routes = self._route.get(record.source)
            if routes is not None:
                # A source the policy knows: the rest of the record's check (an aware
                # collected_at) is made where an answer is made, not again for one kept.
                return routes(record, at, engine.history(record.subject))
        rec = engine._record(record)
        return self._route[rec.source](rec, at, engine.history(rec.subject))

    # -- may_share --

    def _compile_share(self, recipient: Recipient) -> Share:
        """``may_share`` for one recipient: its condition, categories, sharing rules and the
        purpose it requires bound in."""
        engine = self.engine
        policy = engine.policy
        when = recipient.when.evaluate if recipient.when is not None else None
        shown = None if recipient.categories is None else frozenset(recipient.categories)
        order = tuple(policy.categories)
        shares = tuple((r, r.require.evaluate, r.reason) for r in engine._sharing[recipient.id])
        purpose = (
            policy.purposes[recipient.requires_purpose]
            if recipient.requires_purpose is not None
            else None
        )
        located = recipient.location is not None
        retain, process = self._retain, self._process
        tz = engine.tz

        def share(rec: Record, ctx: Ctx, court_order: bool) -> Decision:
            holds = True if when is None else bool(when(ctx))
            held = rec.categories if shown is None else rec.categories & shown
            categories = tuple(c for c in order if c in held)
            reasons: list[str] = []
            if not (holds and categories):
                reasons.append("condition_not_met" if not holds else "no_shared_categories")
            kept = retain(rec, ctx)
            if kept.governing is not None and kept.action == "delete":
                reasons.append("retention_expired")
            passed = [bool(require(ctx)) for _, require, _ in shares]
            for (_, _, reason), ok in zip(shares, passed, strict=True):
                if not ok and reason:
                    reasons.append(reason)
            trace: tuple[Any, ...] | None = None
            processed = True
            if purpose is not None:
                sub = Ctx(ctx.at, ctx.history, rec, purpose.id)
                processed, why, trace = process[(rec.source, purpose.id)](rec, sub)
                reasons.extend(why)
            transfer: tuple[list[Check], list[Finding], bool] | None = None
            if located:
                transfer = engine._transfer_checks(recipient, ctx.at)
                if not transfer[2]:
                    reasons.extend(c.reason for c in transfer[0] if c.passed is False and c.reason)
            allowed = (
                holds
                and bool(categories)
                and (kept.governing is None or kept.action != "delete")
                and all(passed)
                and processed
                and (transfer is None or transfer[2])
            )
            return Decision(
                "may_share",
                "allowed" if allowed else "denied",
                ctx.at,
                {"record": rec.id, "recipient": recipient.id, "court_order": court_order},
                categories=categories if allowed else None,
                findings=tuple(transfer[1]) if transfer is not None else (),
                reasons=() if allowed else tuple(dict.fromkeys(reasons)),
                checks=LazyChecks(
                    share_checks,
                    engine,
                    recipient,
                    ctx,
                    (holds, categories, kept, shares, passed, purpose, trace, transfer),
                ),
                tz=tz,
            )

        return share

    def may_share(
        self, record: Record | str, recipient: str, at: dt.datetime, court_order: bool = False
    ) -> Decision:
        """:meth:`Engine.may_share`, compiled."""
        engine = self.engine
        at = require_aware(at)
        rec = engine._record(record)
        share = self._share.get(recipient)
        if share is None:
            engine._recipient(recipient)  # the engine's error for an unknown recipient
            raise AssertionError(recipient)  # pragma: no cover - every recipient is compiled
        ctx = Ctx(
            at, engine.history(rec.subject), rec, recipient=recipient, court_order=court_order
        )
        decision = share(rec, ctx, court_order)
        if engine.law is None:
            return decision
        # beneath the law as Engine.may_share is: the compiled sharing rules are the notice's
        law = engine.law
        return law.beneath(
            decision, law.share_checks(engine, rec, engine._recipient(recipient), at)
        )

    # -- retention --

    def retention(self, record: Record | str, at: dt.datetime) -> Decision:
        """:meth:`Engine.retention`, compiled."""
        engine = self.engine
        at = require_aware(at)
        rec = engine._record(record)
        ctx = Ctx(at, engine.history(rec.subject), rec)
        return engine.retention_decision(rec, ctx, self._retain(rec, ctx))


# --- how long an answer holds ---------------------------------------------------------------
#
# A host asks at ``now``: a new instant every call. A question whose conditions read the
# instant only by comparing ``at`` with instants the subject's timeline gives (``at <
# subject.last_interaction + P4Y``), and otherwise only facts read "at or before" the instant,
# gives the same answer at every instant between two of the subject's moments (its events,
# collections and suppression entries), short of any instant ``at`` was compared with (a
# retention date, a window's end) and of the records counted as interactions changing
# (:func:`fairproc.retention.counted_span`). Compiled, such a question remembers what it
# decided with that stretch of time, in the subject's history (which never changes), and at
# another instant in the stretch gives it again with the new instant.


class Held(NamedTuple):
    """What a compiled question decided about ``record``, and the stretch of time ``[start,
    end)`` (POSIX timestamps) it holds for."""

    start: float
    end: float
    record: Record
    decided: Any  # the question's own: _ProcessHeld, _RouteHeld


class _ProcessHeld(NamedTuple):
    """A may_process decision as held: what ``process_outcome`` gives and explaining needs,
    but the record, purpose and context of the question."""

    ok: bool
    why: tuple[str, ...]
    grant: Any
    erased: dt.datetime | None
    kept: Kept
    prules: tuple[Any, ...]
    passed: list[bool]


class _RouteHeld(NamedTuple):
    """A route as held: what routing found, and the first decision to be given again at
    other instants (:meth:`Decision.at_instants`) where its checks are shared."""

    routed: Routed
    again: Callable[[dt.datetime], Decision]


_AT = Ref("at")


class _Stretch:
    """What bounds the stretch of time a compiled question's answer holds for: the instants
    its conditions compare ``at`` with (closures giving their timestamps), whether it counts
    collections as interactions, and whether it reads the suppression list."""

    __slots__ = ("bounds", "collections", "listed")

    def __init__(self, bounds: tuple[Compiled, ...], collections: bool, listed: bool):
        self.bounds = bounds
        self.collections = collections
        self.listed = listed

    def about(self, ctx: Ctx, dates: Iterable[dt.datetime | None]) -> tuple[float, float]:
        """``[start, end)`` about ``ctx``'s instant, once the question is decided at it;
        ``dates``: further instants its deciding compared ``at`` with (retention dates)."""
        ts, history = ctx.ts, ctx.history
        start, end = history.stretch(ts, self.listed)
        if self.collections:
            first, last, _ = history.counted_span(ctx.at)
            start, end = max(start, first), min(end, last)
        try:
            found = [bound(ctx) for bound in self.bounds]
        except InputError:
            # a bound of a rule the question did not come to (a date past the years a
            # datetime holds): the answer is kept for this instant alone
            return ts, math.nextafter(ts, math.inf)
        found.extend(d.timestamp() for d in dates if d is not None)
        for b in found:
            # a comparison with ``b`` is the same before it, at it, and after it
            if b is None:
                continue
            if b < ts:
                start = max(start, math.nextafter(b, math.inf))
            elif b > ts:
                end = min(end, b)
            else:
                start, end = max(start, b), min(end, math.nextafter(b, math.inf))
        return start, end


def _retention_conditions(policy: Policy, source: str) -> list[tuple[Condition | None, str]]:
    return [(c, "retention") for r in rules_for(policy, source) for c in (r.when, r.from_)]


def _stretch(policy: Policy, conditions: Iterable[tuple[Condition | None, str]]) -> _Stretch | None:
    """How long an answer decided by ``conditions`` (each with the context it is read in)
    holds, or None when one of them reads the instant otherwise than by comparing ``at``
    with an instant that does not read it, or reads what the subject's timeline does not fix
    (a name or function not known to), or counts collections where the policy's retention
    reads more than the timeline."""
    names = _timeline_names(policy)
    bounds: list[Compiled] = []
    read: set[str] = set()
    for condition, context in conditions:
        if condition is None:
            continue
        compared = _compared_with_at(condition.node, names)
        if compared is None:
            return None
        vocab = vocabulary(policy, context)
        bounds.extend(_timestamp(compile_python(n, vocab, policy.tz)) for n in compared)
        read.update(n.name for n in reads(condition.node) if isinstance(n, Ref))
    collections = bool(read & collection_facts(policy))
    if collections and not timeline_only(policy):
        return None
    return _Stretch(tuple(bounds), collections, "record.suppressed" in read)


def _timeline_names(policy: Policy) -> frozenset[str]:
    """The names whose value at an instant follows from the subject's events, records and
    suppression entries at or before it, and from the question asked."""
    return frozenset(
        {
            "subject.id",
            "subject.restricted",
            "subject.suppressed",
            "record.id",
            "record.subject",
            "record.source",
            "record.collected_at",
            "record.categories",
            "record.resolved_at",
            "record.erased_at",
            "record.suppressed",
            "purpose",
            "basis",
            "recipient",
            "court_order",
            *(f.name for f in policy.facts.values()),
        }
    )


def _compared_with_at(node: Node, names: frozenset[str]) -> list[Node] | None:
    """The instants ``node`` compares ``at`` with, or None when it reads ``at`` any other way,
    or a name not in ``names``, or a function not fixed by the timeline."""
    compared: list[Node] = []

    def fixed(n: Node) -> bool:
        if isinstance(n, Compare):
            for this, other in ((n.left, n.right), (n.right, n.left)):
                if this == _AT:
                    if _AT in reads(other):
                        return False
                    compared.append(other)
                    return fixed(other)
            return fixed(n.left) and fixed(n.right)
        if isinstance(n, Ref):
            return n.name in names
        if isinstance(n, Call):
            return n.func in TIMELINE_FUNCTIONS and all(fixed(a) for a in n.args)
        if isinstance(n, Const):
            return True
        if isinstance(n, In):
            return fixed(n.item) and fixed(n.container)
        if isinstance(n, And | Or | ListOf):
            return all(fixed(i) for i in n.items)
        if isinstance(n, Not | Present):
            return fixed(n.item)
        if isinstance(n, Shift):
            return fixed(n.instant) and fixed(n.period)
        return False  # a node this does not know: never assumed fixed

    return compared if fixed(node) else None


def _timestamp(instant: Compiled) -> Compiled:
    def timestamp(ctx: Ctx) -> float | None:
        value = instant(ctx)
        return None if value is None else float(value.timestamp())

    return timestamp

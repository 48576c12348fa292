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

>>> from fairproc.compiled import compile_questions
>>> questions = compile_questions(engine)          # doctest: +SKIP
>>> questions.may_process(record, "marketing_updates", at).explain()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fairproc.clock import require_aware
from fairproc.conditions import Compiled
from fairproc.conditions.vocabulary import Ctx
from fairproc.decisions import Check, Decision, Finding, LazyChecks
from fairproc.engine import (
    Engine,
    marketing,
    process_outcome,
    share_checks,
)
from fairproc.model import Purpose, Recipient, Record
from fairproc.retention import Kept, Verdict, choose, rules_for

__all__ = ["CompiledQuestions", "compile_questions"]

# (allowed, the reasons a denial gives, the trace an explanation is built from)
Process = Callable[[Record, Ctx], tuple[bool, tuple[str, ...], tuple[Any, ...]]]
Weigh = Callable[[Record, Ctx], Kept]
Route = Callable[[Record, Ctx], Decision]
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

        def decide(rec: Record, ctx: Ctx) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
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
            return process_outcome((rec, purpose, ctx, grants, grant, erased, kept, prules, passed))

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
        conditions compiled, bound in (the engine keeps the same plan per source)."""
        plan = self.engine._route_plans.get(source, ())
        decide = self.engine.route_decision

        def route(rec: Record, ctx: Ctx) -> Decision:
            return decide(rec, ctx, plan)

        return route

    def route(self, record: Record | str, at: dt.datetime) -> Decision:
        """:meth:`Engine.route`, compiled."""
        engine = self.engine
        at = require_aware(at)
        rec = engine._record(record)
        return self._route[rec.source](rec, Ctx(at, engine.history(rec.subject), rec))

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

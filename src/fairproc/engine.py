"""The evaluator: the policy's questions asked of the records and events a store holds.

Every question takes an explicit, timezone-aware ``at``; the engine never reads the clock.
Rules are compiled when the policy loads and indexed here by source, purpose and basis once,
so a decision touches only the rules that can apply to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import attrs

from fairproc.clock import require_aware, to_local
from fairproc.conditions import remember
from fairproc.conditions.vocabulary import Ctx
from fairproc.decisions import Check, Decision, Finding, LazyChecks
from fairproc.errors import InputError, did_you_mean
from fairproc.model import (
    BasisGrant,
    Policy,
    ProcessingRule,
    Purpose,
    Recipient,
    Record,
    RetentionRule,
    RoutingRule,
    SharingRule,
)
from fairproc.retention import (
    Kept,
    RetentionEntry,
    RetentionResult,
    forecast,
    result,
    weigh,
)
from fairproc.storage.history import build_history
from fairproc.storage.interface import (
    AuditKeys,
    Decide,
    DecidedWrites,
    Replaceable,
    Revisioned,
    Snapshots,
    Store,
)
from fairproc.world import HistorySource, SubjectHistory, World, listed_entries, record_addresses

if TYPE_CHECKING:
    from fairproc.law import Law, LawLayer
    from fairproc.storage.values import ChangeSet
    from fairproc.whole_store import Allowed, MarketingAddress

__all__ = ["ERASED_RULE", "Engine", "RetentionEntry", "RetentionResult"]

ERASED_RULE = "right.erasure"

# What explaining a may_process decision needs, kept from deciding it: the record, purpose,
# context, grants declared, the grant that held, erasure instant, retention verdict, the
# processing rules and whether each passed.
_ProcessState = tuple[Any, ...]


_T = TypeVar("_T")

# A routing rule as routing reads it: the rule, its ``when`` (compiled; None: always), its
# ``then`` and ``otherwise`` outcomes, and its ``due`` (compiled; None: no due time).
RoutePlan = tuple[
    RoutingRule, Callable[[Any], Any] | None, str, str | None, Callable[[Any], Any] | None
]


class DecisionLogger(Protocol):
    """Keeps a record of the decisions an engine takes (:class:`fairproc.decision_log.
    DecisionLog`). Given to an engine, it is attached once and wraps that engine's questions;
    an engine without one pays nothing."""

    def attach(self, engine: Engine) -> None: ...

    def around(
        self, engine: Engine, ask: Callable[[], _T], decision_of: Callable[[_T], Decision]
    ) -> _T: ...


class Engine:
    """Ask a policy's questions of a store (by default an empty in-memory :class:`World`)."""

    def __init__(
        self,
        policy: Policy,
        store: HistorySource | None = None,
        log: DecisionLogger | None = None,
        law: Law | str | None = None,
    ):
        """``law``: a law layer (:mod:`fairproc.law`, e.g. ``"uk-gdpr"``) every decision is
        taken beneath: it may deny what the notice allows, never allow what it denies."""
        self.policy = policy
        self.law: LawLayer | None = None
        if law is not None:
            # a law layer's module (its TOML reading) is imported by the engines that take one
            from fairproc.law import LawLayer, load_law

            self.law = LawLayer(load_law(law), policy)
        self.store = store if store is not None else World()
        self.log = log
        self.tz = policy.tz
        self._histories: dict[str, SubjectHistory] = {}
        self._revision: Any = self._read_revision()
        self._pinned = False
        self._index()
        if log is not None:
            log.attach(self)

    # -- compiled indexes, built once --

    def _index(self) -> None:
        p = self.policy
        self._grants: dict[tuple[str, str], tuple[BasisGrant, ...]] = {}
        self._processing: dict[tuple[str, str], tuple[ProcessingRule, ...]] = {}
        # the rules that bind a purpose whatever its basis: checked even when no basis holds
        self._any_basis: dict[str, tuple[ProcessingRule, ...]] = {
            purpose: tuple(r for r in p.processing if r.bases is None and r.applies(purpose, ""))
            for purpose in p.purposes
        }
        self._routing: dict[str, tuple[RoutingRule, ...]] = {}
        self._route_plans: dict[str, tuple[RoutePlan, ...]] = {}
        self._sharing: dict[str, tuple[SharingRule, ...]] = {
            recipient: tuple(r for r in p.sharing if r.applies(recipient))
            for recipient in p.recipients
        }
        for source in p.sources:
            for purpose in p.purposes.values():
                grants = tuple(g for g in purpose.bases if g.sources is None or source in g.sources)
                if grants:
                    self._grants[(purpose.id, source)] = grants
            routes = tuple(rule for rule in p.routing if source in rule.sources)
            if routes:
                self._routing[source] = routes
                self._route_plans[source] = tuple(
                    (
                        rule,
                        rule.when.evaluate if rule.when is not None else None,
                        rule.then,
                        rule.otherwise,
                        rule.due.evaluate if rule.due is not None else None,
                    )
                    for rule in routes
                )
        for purpose in p.purposes.values():
            for grant in purpose.bases:
                self._processing[(purpose.id, grant.basis)] = tuple(
                    r for r in p.processing if r.applies(purpose.id, grant.basis)
                )
        rules = p.rule_index()
        self._erasure_clause = getattr(rules.get(ERASED_RULE), "clause", "erasure")
        self._hours_rule = p.info.office_hours_rule

    # -- the store --

    @contextmanager
    def snapshot(self) -> Iterator[Engine]:
        """Ask several questions of the store as it stands now.

        Each question otherwise reads the store's ``revision`` to know whether the histories it
        cached are still current; on a database that is a round trip per question. Inside the
        block the revision is read once, on entry, and the cache trusted: write nothing to the
        store inside it (writes made elsewhere are seen by the next block). Blocks nest.
        """
        if self._pinned:
            yield self
            return
        # the revision and every history the block reads, in one transaction where offered
        with nullcontext() if self._snapshots is None else self._snapshots.reading():
            self._current()
            self._pinned = True
            try:
                yield self
            finally:
                self._pinned = False

    @property
    def store(self) -> HistorySource:
        """Where the engine reads records and timelines (and writes, :meth:`apply`)."""
        return self._store

    @store.setter
    def store(self, store: HistorySource) -> None:
        # What the store can do, asked once: on Python 3.11 an isinstance check of a Protocol
        # reads the attributes it names, and a revision may cost a database round trip.
        self._store = store
        self._revisioned: Revisioned | None = store if isinstance(store, Revisioned) else None
        self._snapshots: Snapshots | None = store if isinstance(store, Snapshots) else None

    def _read_revision(self) -> Any:
        """The store's revision (None for a source that keeps none: nothing is cached)."""
        revisioned = self._revisioned
        return None if revisioned is None else revisioned.revision

    def _current(self) -> Any:
        """The store's revision, read now; the cached histories go when it has moved."""
        revisioned = self._revisioned  # _read_revision, inline: asked before every question
        revision = None if revisioned is None else revisioned.revision
        if revision is None or revision != self._revision:
            self._histories.clear()
            self._revision = revision
        return revision

    def history(self, subject: str) -> SubjectHistory:
        """The subject's records and timeline, indexed; cached until the store changes."""
        if self._pinned:
            cached = self._histories.get(subject)
            if cached is not None:
                return cached
        snapshots = self._snapshots
        if snapshots is None:
            return self._history(subject)
        # The store's revision, and on a miss the subject's records, events and suppression
        # entries, in one read-only transaction on one connection where the store offers it:
        # on a database server that is a round trip per statement, not three (a connection's
        # begin, the statement, its end), and the history kept is the revision's.
        with snapshots.reading():
            return self._history(subject)

    def _history(self, subject: str) -> SubjectHistory:
        revision = self._revision if self._pinned else self._current()
        cached = self._histories.get(subject)
        if cached is None:
            cached = self._load_history(subject)
            if revision is not None:
                self._histories[subject] = cached
        return cached

    def _load_history(self, subject: str) -> SubjectHistory:
        """The subject's history as the store holds it now (checked as it is read)."""
        records = [self._checked(r) for r in self.store.subject_records(subject)]
        events = self.store.subject_events(subject)
        for event in events:
            require_aware(event.at, f"event {event.kind!r} of subject {event.subject!r}: at")
            if event.kind not in self.policy.events:
                # A misspelt kind would silently mean nothing (an unsubscribe ignored).
                raise self._unknown("event kind", event.kind, self.policy.events)
        emails = record_addresses(self.policy, records)
        entries = listed_entries(
            self.store, self.policy, emails, lambda s: events if s == subject else None
        )
        for entry in entries:
            require_aware(entry.at, f"suppression entry {entry.email!r}: at")
        return build_history(self.policy, subject, records, events, entries)

    # -- the one write path --

    def apply(self, changes: ChangeSet | Decide) -> ChangeSet:
        """Change the store, all of it or none of it: the one way rights requests, sweeps and
        reactions write. Returns the changes written.

        ``changes``: a :class:`~fairproc.storage.ChangeSet`, or a function deciding one from
        the store as the write sees it (reads only). A store offering
        :class:`~fairproc.storage.DecidedWrites` calls the function inside its write step, so
        what was decided is what is written over: a concurrent writer has either written
        first, and is seen, or waits. Elsewhere the function is called, then its changes
        applied (no guarantee against concurrent writers). Every audit entry is stamped with
        the policy's version and digest and names its subject as the store's log does (a
        pseudonym where the store keeps a key). An immutable
        :class:`~fairproc.world.World` is replaced by a new one with the changes made.
        """
        from fairproc.storage.values import ChangeSet  # the values load when first written

        store = self.store
        if isinstance(changes, ChangeSet) and not changes:
            return changes  # nothing to write: no write lock taken, no transaction begun
        decide: Decide = (lambda _: changes) if isinstance(changes, ChangeSet) else changes
        if isinstance(store, DecidedWrites):
            if isinstance(store, AuditKeys):
                store.audit_key()  # made (a write of its own) before the write is begun
            decided: list[ChangeSet] = []

            def stamped(view: HistorySource) -> ChangeSet:
                decided.append(decide(view))
                return self._stamped(decided[-1])

            store.apply_decided(stamped)
            return decided[-1]
        if not isinstance(store, Store | Replaceable):
            raise InputError.one(f"{type(store).__name__} cannot be changed")
        made = decide(store)
        if not made:
            return made
        written = self._stamped(made)
        if isinstance(store, Store):
            store.apply(written)
        else:
            self.store = store.with_changes(written)
        return made

    def _stamped(self, changes: ChangeSet) -> ChangeSet:
        """``changes`` as written: every audit entry names the policy it was decided under,
        and its subject as the store's log names it."""
        from fairproc.storage.pseudonyms import pseudonymised

        if not changes.audit:
            return changes
        policy = self.policy
        stamped = attrs.evolve(
            changes,
            audit=tuple(
                attrs.evolve(a, policy_version=policy.info.version, policy_digest=policy.digest)
                if a.policy_digest is None
                else a
                for a in changes.audit
            ),
        )
        return pseudonymised(stamped, self.store)

    def _record(self, record: Record | str) -> Record:
        if isinstance(record, Record):
            return self._checked(record)
        found = self.store.get_record(record)
        if found is None:
            raise InputError.one(f"no record with id {record!r} in the store")
        return self._checked(found)

    def _checked(self, record: Record) -> Record:
        """``record`` if the policy knows its source and its time is aware; else InputError."""
        if record.source not in self.policy.sources:
            # Named by the record: the question may be about its subject (an access request).
            raise self._unknown(
                "source", record.source, self.policy.sources, f"record {record.id!r}: "
            )
        collected = record.collected_at
        if not isinstance(collected, dt.datetime) or collected.utcoffset() is None:
            # the message is built only for a record that fails (this runs on every question)
            require_aware(collected, f"record {record.id!r}: collected_at")
        return record

    def _unknown(self, what: str, value: str, known: Iterable[str], where: str = "") -> InputError:
        known = sorted(known)
        return InputError.one(
            f"{where}unknown {what} {value!r}"
            + did_you_mean(str(value), known)
            + f" (known: {', '.join(known)})"
        )

    def _purpose(self, purpose: str) -> Purpose:
        found = self.policy.purposes.get(purpose)
        if found is None:
            raise self._unknown("purpose", purpose, self.policy.purposes)
        return found

    def _recipient(self, recipient: str) -> Recipient:
        found = self.policy.recipients.get(recipient)
        if found is None:
            raise self._unknown("recipient", recipient, self.policy.recipients)
        return found

    # -- may_process --

    def may_process(self, record: Record | str, purpose: str, at: dt.datetime) -> Decision:
        """May ``record`` be processed for ``purpose`` at ``at``? ``allowed`` or ``denied``."""
        at = require_aware(at)
        rec = self._record(record)
        found = self._purpose(purpose)
        ctx = Ctx(at, self.history(rec.subject), rec, purpose)
        return self.process_decision(rec, ctx, self._process(rec, found, ctx))

    def process_decision(
        self, rec: Record, ctx: Ctx, decided: tuple[bool, tuple[str, ...], _ProcessState]
    ) -> Decision:
        """The may_process decision from what ``_process`` (or a compiled one) decided."""
        ok, reasons, state = decided
        decision = Decision(
            "may_process",
            "allowed" if ok else "denied",
            ctx.at,
            {"record": rec.id, "purpose": ctx.purpose},
            basis=ctx.basis,
            reasons=reasons,
            checks=LazyChecks(self._process_checks, state, None),
            tz=self.tz,
        )
        if self.law is None:
            return decision
        found = self._purpose(ctx.purpose or "")
        checks = self.law.process_checks(self, rec, found, ctx.basis, ctx.at)
        return self.law.beneath(decision, checks)

    def _process(
        self, rec: Record, purpose: Purpose, ctx: Ctx
    ) -> tuple[bool, tuple[str, ...], _ProcessState]:
        """Decide from booleans: (allowed, the reasons a denial gives, what explaining needs).

        The checks themselves are built only when someone reads them (``_process_checks``)."""
        grants = self._grants.get((purpose.id, rec.source), ())
        grant = None
        for g in grants:
            if g.when is None or g.when.evaluate(ctx):
                grant = g
                break
        erased = ctx.history.record_event_at(rec.id, "erase", ctx.ts)
        kept = self._retain(rec, ctx)
        if grant is not None:
            ctx.basis = grant.basis
            prules = self._processing.get((purpose.id, grant.basis), ())
        else:
            # No basis holds; the rules binding every basis still fail or pass, and a denial
            # names each rule that failed, not only the first.
            prules = self._any_basis.get(purpose.id, ())
        passed = [bool(prule.require.evaluate(ctx)) for prule in prules]
        return process_outcome((rec, purpose, ctx, grants, grant, erased, kept, prules, passed))

    def _process_checks(self, state: _ProcessState, scope: str | None) -> list[Check]:
        """The checks of a ``_process`` decision: each rule, its clause, detail and facts."""
        rec, purpose, ctx, grants, grant, erased, kept, prules, passed = state
        checks: list[Check] = []
        facts = _facts_of(ctx, [g.when for g in grants])
        if grant is not None:
            checks.append(
                Check(
                    purpose.rule_id,
                    True,
                    grant.clause,
                    grant.note,
                    detail=f"{purpose.id} on {grant.basis} for {rec.source} records",
                    scope=scope,
                    facts_fn=facts,
                )
            )
        else:
            declared = bool(grants)
            checks.append(
                Check(
                    purpose.rule_id,
                    False,
                    purpose.clause,
                    purpose.note,
                    reason="condition_not_met" if declared else "purpose_not_declared",
                    detail=(
                        f"the basis for {purpose.id} on {rec.source} records does not hold"
                        if declared
                        else f"{purpose.id} is not declared for {rec.source} records"
                    ),
                    scope=scope,
                    facts_fn=facts,
                )
            )
        if erased is not None:
            checks.append(
                Check(
                    ERASED_RULE,
                    False,
                    self._erasure_clause,
                    reason="erased",
                    detail=f"erased at {erased.isoformat()}",
                    scope=scope,
                )
            )
        action, until, rule, _ = kept
        if rule is not None:
            checks.append(
                Check(
                    rule.id,
                    action != "delete",
                    rule.clause,
                    rule.note,
                    reason="retention_expired" if action == "delete" else None,
                    detail=_retention_detail(action, until),
                    scope=scope,
                    facts_fn=_facts_of(ctx, [rule.when, rule.from_]),
                )
            )
        for prule, ok in zip(prules, passed, strict=True):
            checks.append(
                Check(
                    prule.id,
                    ok,
                    prule.clause,
                    prule.note,
                    reason=None if ok else prule.reason,
                    scope=scope,
                    facts_fn=_facts_of(ctx, [prule.require]),
                )
            )
        return checks

    # -- retention --

    def _retain(
        self, rec: Record, ctx: Ctx, weigh: Callable[[Record, Ctx], Kept] | None = None
    ) -> Kept:
        # Every question about a record weighs its retention (may_process for each purpose,
        # may_email for each record): remembered per record and instant, as facts are. The
        # record is part of the key, not just its id: a host may ask about an edited copy.
        # ``weigh``: how to weigh it on a miss (a compiled weigher; the policy's by default).
        memo = ctx.history.memo
        key = ("retention", rec.id, ctx.ts)
        hit = memo.get(key)
        if hit is not None and (hit[0] is rec or hit[0] == rec):
            found: Kept = hit[1]
            return found
        kept = (weigh or self._weigh_retention)(rec, ctx)
        remember(memo, key, (rec, kept))
        return kept

    def _weigh_retention(self, rec: Record, ctx: Ctx) -> Kept:
        return weigh(self.policy, rec, ctx)

    def retention_result(
        self, record: Record, at: dt.datetime, history: SubjectHistory | None = None
    ) -> RetentionResult:
        """The retention outcome without building a decision: for sweeps over many records.

        ``history``: the subject's history when the caller loaded it already (in bulk)."""
        if history is None:
            history = self.history(record.subject)
        return result(self._retain(record, Ctx(at, history, record)))

    def retention_action(
        self, record: Record, at: dt.datetime, history: SubjectHistory
    ) -> tuple[str, dt.datetime | None, RetentionRule | None]:
        """(action, until, governing rule) of ``record`` at ``at``, from its subject's
        ``history``: all a sweep needs of every record, as plain values and remembering
        nothing (a sweep asks once per record)."""
        action, until, governing, _ = self._weigh_retention(record, Ctx(at, history, record))
        return action, until, governing

    def retention(self, record: Record | str, at: dt.datetime) -> Decision:
        """``keep`` (until a date, or with none), ``delete`` (due at or before ``at``) or
        ``review`` (no period declared). The rule keeping the record longest governs."""
        at = require_aware(at)
        rec = self._record(record)
        ctx = Ctx(at, self.history(rec.subject), rec)
        return self.retention_decision(rec, ctx, self._retain(rec, ctx))

    def retention_decision(self, rec: Record, ctx: Ctx, kept: Kept) -> Decision:
        """The retention decision for ``rec`` at ``ctx.at`` from its weighed retention."""
        at, action = ctx.at, kept.action
        until = forecast(self.policy, ctx.history, rec, at, kept)
        return Decision(
            "retention",
            action,
            at,
            {"record": rec.id},
            until=until,
            due=until if action == "delete" else None,
            reasons=() if kept.verdicts else ("no_retention_rule",),
            checks=LazyChecks(_retention_checks, kept, ctx),
            tz=self.tz,
        )

    # -- routing --

    def route(self, record: Record | str, at: dt.datetime) -> Decision:
        """Who follows up an enquiry: ``staff_contact``, ``pass_to_providers``,
        ``phone_follow_up`` (with ``due``) or ``not_applicable``."""
        at = require_aware(at)
        rec = self._record(record)
        ctx = Ctx(at, self.history(rec.subject), rec)
        return self.route_decision(rec, ctx, self._route_plans.get(rec.source, ()))

    def route_decision(self, rec: Record, ctx: Ctx, plan: Sequence[RoutePlan]) -> Decision:
        """Route ``rec`` by ``plan``: its source's routing rules, each with its ``when`` and
        ``due`` compiled (:data:`RoutePlan`)."""
        routed = route_outcome(plan, ctx)
        return Decision(
            "route",
            routed.outcome,
            ctx.at,
            {"record": rec.id},
            due=routed.due,
            reasons=routed.reasons,
            checks=LazyChecks(
                self._route_checks, routed.rule, ctx, routed.holds, routed.outcome, routed.passed
            ),
            tz=self.tz,
        )

    def _route_checks(
        self,
        rule: RoutingRule | None,
        ctx: Ctx,
        holds: bool,
        outcome: str,
        passed: Sequence[tuple[RoutingRule, bool]] = (),
    ) -> list[Check]:
        # A routing rule chooses a branch rather than passing or failing: it informs. The
        # rules before it, whose condition did not hold, say why they did not decide.
        checks = [
            Check(
                earlier.id,
                None,
                earlier.clause,
                earlier.note,
                detail=f"{earlier.when.text if earlier.when else ''}: no, so not this rule",
                facts_fn=_facts_of(ctx, [earlier.when]),
            )
            for earlier, _ in passed
        ]
        if rule is None:
            return checks
        branch = "" if rule.when is None else f"{rule.when.text}: {'yes' if holds else 'no'}, so "
        checks.append(
            Check(
                rule.id,
                None,
                rule.clause,
                rule.note,
                detail=f"{branch}{outcome}",
                facts_fn=_facts_of(ctx, [rule.when, rule.due]),
            )
        )
        hours = self._hours_rule
        if hours is not None and rule.when is not None and "in_office_hours" in rule.when.text:
            checks.append(
                Check(
                    hours.id,
                    None,
                    hours.clause,
                    hours.note,
                    detail="in office hours" if holds else "outside office hours",
                )
            )
        return checks

    # -- sharing and transfers --

    def transfer(self, recipient: str, at: dt.datetime) -> Decision:
        """May data go to ``recipient`` where it is? ``allowed`` when the recipient is in the
        adequate area or at least one of its safeguards is valid at ``at``; a finding for each
        safeguard that is not."""
        at = require_aware(at)
        r = self._recipient(recipient)
        checks, findings, ok = self._transfer_checks(r, at)
        if ok:
            # An invalid safeguard beside a valid one does not fail an allowed transfer: it
            # informs it, and its finding says why (as may_share does).
            checks = [attrs.evolve(c, passed=None) if c.passed is False else c for c in checks]
        decision = Decision(
            "transfer",
            "allowed" if ok else "denied",
            at,
            {"recipient": r.id},
            findings=tuple(findings),
            reasons=() if ok else ("no_valid_safeguard",),
            checks=tuple(checks),
            tz=self.tz,
        )
        if self.law is None:
            return decision
        return self.law.beneath(decision, self.law.transfer_checks(r, at))

    def _transfer_checks(
        self, r: Recipient, at: dt.datetime
    ) -> tuple[list[Check], list[Finding], bool]:
        if r.location is None or r.location in self.policy.adequate_locations:
            where = r.location or "the controller's own country"
            return (
                [
                    Check(
                        r.rule_id,
                        True,
                        r.clause,
                        r.note,
                        detail=f"no international transfer ({where})",
                    )
                ],
                [],
                True,
            )
        day = to_local(at, self.tz).date()
        checks: list[Check] = []
        findings: list[Finding] = []
        ok = False
        for sid in r.safeguards:
            sg = self.policy.safeguards[sid]
            valid = sg.valid_on(day)
            ok = ok or valid
            window = ""
            if sg.valid_until is not None:
                window = f"valid before {sg.valid_until.isoformat()}"
            if sg.valid_from is not None:
                window = f"valid from {sg.valid_from.isoformat()}" + (
                    f", {window}" if window else ""
                )

            def facts(day: dt.date = day) -> Mapping[str, Any]:
                return {"local_date(at)": day}

            checks.append(
                Check(
                    sg.rule_id,
                    valid,
                    sg.clause,
                    sg.note,
                    reason=None if valid else f"{sg.id}_invalid",
                    detail=f"transfer to {r.location}" + (f"; {window}" if window else ""),
                    facts_fn=facts,
                )
            )
            if not valid:
                message = f"{sg.title} is not a valid safeguard on {day.isoformat()}"
                if sg.invalidated_by:
                    message += f" ({sg.invalidated_by})"
                if sg.successors:
                    message += "; successors: " + "; ".join(
                        f"{s.name} (from {s.valid_from.isoformat()})" for s in sg.successors
                    )
                findings.append(Finding(f"{sg.id}_invalid", message, sg.rule_id))
        if not r.safeguards:
            checks.append(
                Check(
                    r.rule_id,
                    False,
                    r.clause,
                    r.note,
                    reason="no_safeguard",
                    detail=f"transfer to {r.location} names no safeguard",
                )
            )
        return checks, findings, ok

    def may_share(
        self, record: Record | str, recipient: str, at: dt.datetime, court_order: bool = False
    ) -> Decision:
        """May ``record`` go to ``recipient``? ``allowed`` with the categories it may see."""
        at = require_aware(at)
        rec = self._record(record)
        r = self._recipient(recipient)
        ctx = Ctx(at, self.history(rec.subject), rec, recipient=r.id, court_order=court_order)
        holds = True if r.when is None else bool(r.when.evaluate(ctx))
        allowed_categories = (
            rec.categories if r.categories is None else (rec.categories & frozenset(r.categories))
        )
        categories = tuple(c for c in self.policy.categories if c in allowed_categories)
        # Sharing is processing: a record past its retention due date is not shared, and the
        # policy's sharing conditions (a restriction in force) bind every disclosure.
        kept = self._retain(rec, ctx)
        shares = tuple((x, x.require.evaluate, x.reason) for x in self._sharing.get(r.id, ()))
        passed = [bool(require(ctx)) for _, require, _ in shares]
        purpose = state = None
        if r.requires_purpose is not None:
            purpose = self.policy.purposes[r.requires_purpose]
            state = self._process(rec, purpose, Ctx(at, ctx.history, rec, purpose.id))[2]
        transfer = self._transfer_checks(r, at) if r.location is not None else None
        findings = transfer[1] if transfer is not None else []
        checks = share_checks(
            self, r, ctx, (holds, categories, kept, shares, passed, purpose, state, transfer)
        )
        ok = all(c.passed is not False for c in checks)
        decision = Decision(
            "may_share",
            "allowed" if ok else "denied",
            at,
            {"record": rec.id, "recipient": r.id, "court_order": court_order},
            categories=categories if ok else None,
            findings=tuple(findings),
            reasons=() if ok else _reasons(checks),
            checks=tuple(checks),
            tz=self.tz,
        )
        if self.law is None:
            return decision
        return self.law.beneath(decision, self.law.share_checks(self, rec, r, at))

    # -- the whole store --

    def processable(self, purpose: str, at: dt.datetime) -> Iterator[Allowed]:
        """Every record of the store that may be processed for ``purpose`` at ``at``, streamed,
        selected by the store where it can (:mod:`fairproc.whole_store`)."""
        from fairproc.whole_store import processable

        return processable(self, purpose, at)

    def may_email_all(self, at: dt.datetime) -> Iterator[MarketingAddress]:
        """Every address marketing email may go to at ``at``, each once, streamed: the marketing
        list (:mod:`fairproc.whole_store`)."""
        from fairproc.whole_store import may_email_all

        return may_email_all(self, at)

    # -- email --

    def may_email(self, subject: str, at: dt.datetime) -> Decision:
        """May the subject be sent marketing email? ``allowed`` when some record with an email
        address may be processed for the policy's marketing purpose; otherwise the reasons."""
        at = require_aware(at)
        purpose, _ = marketing(self.policy)
        return self.email_decision(subject, at, lambda rec, ctx: self._process(rec, purpose, ctx))

    def email_decision(
        self,
        subject: str,
        at: dt.datetime,
        process: Callable[[Record, Ctx], tuple[bool, tuple[str, ...], _ProcessState]],
    ) -> Decision:
        """The may_email decision, each record with an address asked by ``process`` (the
        engine's ``_process`` for the marketing purpose, or a compiled one)."""
        purpose, category = marketing(self.policy)
        history = self.history(subject)
        ok = False
        reasons: list[str] = []
        states: list[_ProcessState] = []
        usable: list[Record] = []
        # Only the addresses the subject had given by ``at``: a record collected later did not
        # exist yet.
        ts = at.timestamp()
        for rec in history.records:
            if rec.collected_at.timestamp() > ts or not _has_value(rec.data.get(category)):
                continue
            allowed, why, state = process(rec, Ctx(at, history, rec, purpose.id))
            states.append(state)
            if allowed:
                ok = True
                usable.append(rec)
            reasons.extend(why)
        if not states:
            # A denial names the rule that failed: no record gives the purpose an address.
            reasons.append("no_email")
        if ok:
            reasons = []
        elif history.suppressed(ts) and "suppressed" not in reasons:
            reasons.append("suppressed")

        decision = Decision(
            "may_email",
            "allowed" if ok else "denied",
            at,
            {"subject": subject},
            addresses=history.usable_addresses(usable, ts) if ok else None,
            reasons=tuple(dict.fromkeys(reasons)),
            checks=LazyChecks(email_checks, self, purpose, subject, states),
            tz=self.tz,
        )
        if self.law is None:
            return decision
        return self.law.email(self, decision, subject, at)


def share_checks(
    engine: Engine, recipient: Recipient, ctx: Ctx, trace: tuple[Any, ...]
) -> list[Check]:
    """The checks of a may_share decision from what deciding it found: whether the
    recipient's condition held and the categories it may see, the retention verdict, each
    sharing rule and whether it passed, the purpose the recipient requires and its
    ``_process`` state, and the transfer's checks (an invalid safeguard beside a valid one
    informs rather than fails)."""
    holds, categories, kept, shares, passed, purpose, state, transfer = trace
    checks = [
        Check(
            recipient.rule_id,
            holds and bool(categories),
            recipient.clause,
            recipient.note,
            reason=None
            if holds and categories
            else ("condition_not_met" if not holds else "no_shared_categories"),
            detail="may see " + (", ".join(categories) or "none of its data"),
            facts_fn=_facts_of(ctx, [recipient.when]),
        )
    ]
    if kept.governing is not None:
        rule = kept.governing
        checks.append(
            Check(
                rule.id,
                kept.action != "delete",
                rule.clause,
                rule.note,
                reason="retention_expired" if kept.action == "delete" else None,
                detail=_retention_detail(kept.action, kept.until),
                facts_fn=_facts_of(ctx, [rule.when, rule.from_]),
            )
        )
    for (share, _, reason), ok in zip(shares, passed, strict=True):
        checks.append(
            Check(
                share.id,
                ok,
                share.clause,
                share.note,
                reason=None if ok else reason,
                facts_fn=_facts_of(ctx, [share.require]),
            )
        )
    if state is not None:
        checks.extend(engine._process_checks(state, purpose.id))
    if transfer is not None:
        tchecks, _, ok = transfer
        checks.extend(
            attrs.evolve(c, passed=None) if ok and c.passed is False else c for c in tchecks
        )
    return checks


class Routed(NamedTuple):
    """What routing by a plan found: the outcome, its due time, the reasons a record no rule
    routes gives, and what explaining needs (the rule that decided, whether its condition
    held, and the rules passed over with theirs)."""

    outcome: str
    due: dt.datetime | None
    reasons: tuple[str, ...]
    rule: RoutingRule | None
    holds: bool
    passed: list[tuple[RoutingRule, bool]]


def route_outcome(plan: Sequence[RoutePlan], ctx: Ctx) -> Routed:
    """Route by ``plan`` (:data:`RoutePlan`) at ``ctx``."""
    # In policy order, the first rule that decides: one with no ``when``, or with an
    # ``otherwise``, or whose ``when`` holds (a rule with a ``when`` and no ``otherwise``
    # passes the question on when it does not hold).
    passed: list[tuple[RoutingRule, bool]] = []
    for rule, when, then, otherwise, due_of in plan:
        holds = True if when is None else bool(when(ctx))
        if holds or otherwise is not None:
            outcome = then if holds else otherwise
            assert outcome is not None
            due = due_of(ctx) if due_of is not None else None
            return Routed(outcome, due, (), rule, holds, passed)
        passed.append((rule, holds))
    return Routed("not_applicable", None, ("no_routing_rule",), None, False, passed)


def process_outcome(state: _ProcessState) -> tuple[bool, tuple[str, ...], _ProcessState]:
    """(allowed, the reasons a denial gives, ``state``) of a ``_process`` state: allowed when
    a grant holds, the record is neither erased nor past its due date and every processing
    rule passed; a denial's reasons in the order the checks come, each once."""
    _, _, _, grants, grant, erased, kept, prules, passed = state
    expired = kept.governing is not None and kept.action == "delete"
    if grant is not None and erased is None and not expired and all(passed):
        return True, (), state
    reasons: list[str] = []
    if grant is None:
        reasons.append("condition_not_met" if grants else "purpose_not_declared")
    if erased is not None:
        reasons.append("erased")
    if expired:
        reasons.append("retention_expired")
    for prule, ok in zip(prules, passed, strict=True):
        if not ok and prule.reason:
            reasons.append(prule.reason)
    return False, tuple(dict.fromkeys(reasons)), state


def marketing(policy: Policy) -> tuple[Purpose, str]:
    """The policy's marketing purpose and email category; InputError when it names none."""
    info = policy.info
    if info.marketing_purpose is None or info.email_category is None:
        raise InputError.one(
            "the policy names no marketing_purpose and email_category "
            "in [policy], so may_email cannot be asked"
        )
    return policy.purposes[info.marketing_purpose], info.email_category


def email_checks(
    engine: Engine, purpose: Purpose, subject: str, states: Sequence[_ProcessState]
) -> list[Check]:
    """The checks of a may_email decision: each record's may_process checks, or the one
    failure when no record of the subject holds an address."""
    if not states:
        category = engine.policy.info.email_category
        return [
            Check(
                purpose.rule_id,
                False,
                purpose.clause,
                purpose.note,
                reason="no_email",
                detail=f"no record of {subject} holds an address ({category})",
            )
        ]
    return [c for st in states for c in engine._process_checks(st, st[0].id)]


def _has_value(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _reasons(checks: Iterable[Check]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.reason for c in checks if c.passed is False and c.reason))


def _facts_of(ctx: Ctx, conditions: Iterable[Any]) -> Any:
    conds = [c for c in conditions if c is not None]
    if not conds:
        return lambda: {}

    kept: list[Mapping[str, Any]] = []  # read once: an explanation and to_dict both ask

    def facts() -> Mapping[str, Any]:
        if kept:
            return kept[0]
        out: dict[str, Any] = {}
        for cond in conds:
            out.update(cond.read_facts(ctx))
        kept.append(out)
        return out

    return facts


def _retention_detail(action: str, until: dt.datetime | None) -> str:
    if action == "review":
        return "review: the policy declares no retention period"
    if action == "keep" and until is None:
        return "keep, with no date yet"
    assert until is not None
    text = until.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return f"keep until {text}" if action == "keep" else f"delete: due {text}"


def _retention_checks(kept: Kept, ctx: Ctx) -> list[Check]:
    """One check per rule that applied; the governing one says so."""
    governing = kept.governing
    return [
        Check(
            rule.id,
            {"keep": True, "delete": False, "review": None}[action],
            rule.clause,
            rule.note,
            reason="retention_expired" if action == "delete" else None,
            detail=("governs: " if rule is governing else "") + _retention_detail(action, until),
            facts_fn=_facts_of(ctx, [rule.when, rule.from_]),
        )
        for rule, action, until in kept.verdicts
    ]

"""Rights requests beneath a law layer: the law's clocks and grounds (:mod:`fairproc.law`).

:func:`fairproc.rights.plan_request` asks :func:`plan_under_law` first, when the engine has a
law: it decides what the law decides before the notice's handler runs (a request awaiting
identity, a fee or clarification; a manifestly unfounded or excessive request refused) and
works out the due date by the law's clock (Art 12A). Then :func:`after_under_law` adds what
the law says of the handler's answer (the Art 17(3) exception behind each record an erasure
keeps, the Art 18(1) ground of a restriction and its end, compelling grounds and the absolute
objection to direct marketing under Art 21, the acknowledgement period for complaints).

An Art 18(1) ground is kept beside its restriction in the audit log (action ``restrict``, the
ground as the entry's ``field``); what ends a ground (``RESTRICTION_ENDED_BY``: a rectification,
an erasure or an objection decided; ``RESTRICTION_ENDS``: an end a restriction request records)
ends it, and the last ground ended lifts the restriction with the notice's own lifting event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from fairproc.clock import to_local
from fairproc.decisions import Check, Decision
from fairproc.errors import InputError
from fairproc.law import (
    RESTRICTION_ENDED_BY,
    RESTRICTION_ENDS,
    RESTRICTION_GROUNDS,
    LawLayer,
    LawRule,
    words_in,
)
from fairproc.model import Event, Right
from fairproc.storage import AuditEntry, ChangeSet, Store, subject_audit
from fairproc.values import Value
from fairproc.world import World

if TYPE_CHECKING:
    from fairproc.engine import Engine
    from fairproc.rights import LawTerms, RequestResult, _Planner
    from fairproc.world import SubjectHistory

MANIFESTLY = ("unfounded", "excessive")
MANIFEST_ACTIONS = ("refuse", "charge")


@attrs.frozen(repr=False)
class Under(Value):
    """What the law decided before the notice's handler: a finished ``result``, or the
    ``due`` date and ``base`` check the handler goes on with, and the law's ``checks``."""

    result: RequestResult | None
    due: dt.datetime | None = None
    base: Check | None = None
    checks: tuple[Check, ...] = ()
    identity_confirmed: bool = False


def _rule(layer: LawLayer, test: str, at: dt.datetime) -> LawRule | None:
    day = to_local(at, layer.policy.tz).date()
    for rule in layer.law.by_test(test):
        if rule.in_force_on(day):
            return rule
    return None


def plan_under_law(
    engine: Engine,
    layer: LawLayer,
    history: SubjectHistory,
    right: Right,
    at: dt.datetime,
    asked: Mapping[str, Any],
    complex: bool,
    verified: bool,
    terms: LawTerms,
) -> Under:
    from fairproc.rights import RequestResult, due_date

    tz = engine.tz
    period = right.due_complex if complex else right.due
    label = "complex" if complex else "not complex"

    def decided(outcome: str, checks: Sequence[Check], reasons: tuple[str, ...]) -> Under:
        return Under(
            RequestResult(
                Decision(
                    "request",
                    outcome,
                    at,
                    dict(asked),
                    reasons=reasons,
                    checks=(attrs.evolve(base_of(None), passed=None), *checks),
                    tz=tz,
                )
            )
        )

    def base_of(due: dt.datetime | None, how: str = "") -> Check:
        return Check(
            right.rule_id,
            True,
            right.clause,
            right.note,
            detail=(f"due {due.isoformat()} ({label}; {how})" if due else "no due date yet"),
        )

    for key, value in (
        ("identity_confirmed_at", terms.identity_confirmed_at),
        ("fee_received_at", terms.fee_received_at),
        ("clarification_requested_at", terms.clarification_requested_at),
        ("clarification_received_at", terms.clarification_received_at),
    ):
        if value is not None and (not isinstance(value, dt.datetime) or value.utcoffset() is None):
            raise InputError.one(f"{key}: expected a timezone-aware instant, got {value!r}")
    asked_at, answered_at = terms.clarification_requested_at, terms.clarification_received_at
    if answered_at is not None and (asked_at is None or answered_at < asked_at):
        raise InputError.one(
            "clarification_received_at: needs clarification_requested_at at or before it"
        )
    if terms.manifestly is not None and terms.manifestly not in MANIFESTLY:
        raise InputError.one(
            f"manifestly: expected unfounded or excessive, got {terms.manifestly!r}"
        )
    if terms.manifest_action not in MANIFEST_ACTIONS:
        raise InputError.one(
            f"manifest_action: expected refuse or charge, got {terms.manifest_action!r}"
        )

    # Art 12(5): refused, or charged (then the clock waits for the fee).
    manifest = _rule(layer, "manifestly_unfounded", at)
    checks: list[Check] = []
    if terms.manifestly is not None and manifest is not None:
        code = f"manifestly_{terms.manifestly}"
        if terms.manifest_action == "refuse":
            return decided(
                "refused",
                [
                    manifest.check(
                        False,
                        f"refused: the request is manifestly {terms.manifestly} (the reason "
                        "is recorded; the controller must be able to show it)",
                        reason=code,
                    )
                ],
                (code,),
            )
        if terms.fee_received_at is None:
            return decided(
                "awaiting_fee",
                [
                    manifest.check(
                        None,
                        f"manifestly {terms.manifestly}: a reasonable fee is charged; nothing "
                        "is due until it is received",
                    )
                ],
                ("awaiting_fee",),
            )
        checks.append(
            manifest.check(
                None,
                f"manifestly {terms.manifestly}: fee received {terms.fee_received_at.isoformat()}",
            )
        )

    clock = _rule(layer, "response_clock", at)
    if clock is None:
        # Before Art 12A: the notice's clock from receipt, and its handling of identity.
        due = due_date(at, period, tz)
        return Under(None, due, base_of(due, "from receipt"), tuple(checks), verified)

    identity_at = terms.identity_confirmed_at
    if identity_at is None and verified:
        identity_at = at  # identity confirmed with the request itself
    if identity_at is None:
        return decided(
            "awaiting_identity",
            [
                *checks,
                clock.check(
                    None,
                    "awaiting confirmation of identity: not refused, and the response period "
                    "starts only when identity is confirmed",
                ),
            ],
            ("awaiting_identity",),
        )
    if terms.clarification_requested_at is not None and terms.clarification_received_at is None:
        return decided(
            "awaiting_clarification",
            [
                *checks,
                clock.check(
                    None,
                    "clarification asked for on "
                    f"{terms.clarification_requested_at.isoformat()}: the clock is paused until "
                    "it is received",
                ),
            ],
            ("awaiting_clarification",),
        )
    due, how = layer.response_due(
        at,
        period,
        identity_confirmed_at=identity_at if identity_at != at else None,
        fee_received_at=terms.fee_received_at,
        clarification_requested_at=terms.clarification_requested_at,
        clarification_received_at=terms.clarification_received_at,
    )
    checks.append(clock.check(True, f"due {due.isoformat()}: {how}"))
    return Under(None, due, base_of(due, how), tuple(checks), True)


def after_under_law(
    engine: Engine,
    layer: LawLayer,
    planner: _Planner,
    result: RequestResult,
    terms: LawTerms,
    checks: Sequence[Check],
) -> RequestResult:
    """The handler's answer with what the law says of it."""
    right = planner.right.id
    at = planner.at
    if right == "erasure":
        result = _erasure(layer, planner, result, at)
    elif right == "restriction":
        result = _restriction(layer, planner, result, terms, at)
    elif right == "objection":
        result = _objection(layer, planner, result, terms, at)
    elif right == "complaint":
        result = _complaint(layer, result, at)
    ends = RESTRICTION_ENDED_BY.get(right)
    if ends is not None and planner.history.restricted(at.timestamp()):
        result = _restriction_end(engine, layer, planner, result, (ends,), f"{right} decided", at)
    decision = result.decision
    return attrs.evolve(
        result,
        decision=attrs.evolve(decision, checks=(*decision.checks, *checks)),
    )


def _with(result: RequestResult, checks: Sequence[Check], **changes: Any) -> RequestResult:
    decision = result.decision
    reasons = changes.pop("reasons", decision.reasons)
    return attrs.evolve(
        result,
        decision=attrs.evolve(
            decision, checks=(*decision.checks, *checks), reasons=reasons, **changes
        ),
    )


def _erasure(
    layer: LawLayer, planner: _Planner, result: RequestResult, at: dt.datetime
) -> RequestResult:
    rule = _rule(layer, "erasure_exceptions", at)
    if rule is None:
        return result
    policy = planner.policy
    kept_by = {r.id: r for r in policy.retention if r.id in planner.right.kept_by}
    checks: list[Check] = []
    reasons: list[str] = []
    for check in result.decision.checks:
        retention = kept_by.get(check.rule)
        if retention is None or check.scope is None:
            continue
        text = " ".join(x or "" for x in (retention.clause, retention.note, planner.right.note))
        named = []
        if words_in(text, ["legal claim", "legal claims"]):
            named.append("legal_claims")
        if words_in(text, ["legal obligation", "legal obligations"]):
            named.append("legal_obligation")
        if named:
            codes = [f"art17_3_{n}" for n in named]
            detail = f"kept under {retention.id}: Art 17(3) " + " and ".join(
                "(b) legal obligation" if n == "legal_obligation" else "(e) legal claims"
                for n in named
            )
        else:
            codes = ["art17_3_exception_unstated"]
            detail = (
                f"kept under {retention.id}, but neither the rule nor the right names the "
                "Art 17(3) exception (legal obligation or legal claims) it rests on"
            )
        reasons.extend(codes)
        checks.append(
            rule.check(None if named else False, detail, scope=check.scope, reason=codes[0])
        )
    if not checks:
        return result
    return _with(result, checks, reasons=tuple(dict.fromkeys((*result.decision.reasons, *reasons))))


def _restriction(
    layer: LawLayer,
    planner: _Planner,
    result: RequestResult,
    terms: LawTerms,
    at: dt.datetime,
) -> RequestResult:
    from fairproc.rights import RequestResult as Result

    rule = _rule(layer, "restriction_grounds", at)
    if rule is None:
        return result
    ground = terms.ground
    if ground is None:
        return _with(
            result,
            [rule.check(None, "no Art 18(1) ground named: the notice's own terms decide")],
        )
    if ground in RESTRICTION_ENDS:
        return _restriction_end(
            planner.engine, layer, planner, None, RESTRICTION_ENDS[ground], ground, at
        )
    if ground not in RESTRICTION_GROUNDS:
        raise InputError.one(
            f"restriction ground {ground!r}: expected one of "
            f"{', '.join([*RESTRICTION_GROUNDS, *RESTRICTION_ENDS])}"
        )
    check = rule.check(
        True,
        f"restricted on the ground {ground}, whatever the basis; {RESTRICTION_GROUNDS[ground]}",
    )
    subject = planner.history.subject
    # The ground is kept beside the restriction in the audit log (the action's field names
    # it), so that what ends the ground ends the restriction and nothing else does.
    grounded = AuditEntry(at, "restrict", subject, rule=rule.id, field=ground)
    if result.decision.outcome != "refused":
        changes = result.changes
        result = attrs.evolve(
            result, changes=attrs.evolve(changes, audit=(*changes.audit, grounded))
        )
        return _with(result, [check])
    # The notice ties restriction to legitimate interests; the law gives it on its grounds.
    kinds = planner.policy.events_with("restrict")
    if not kinds:
        raise InputError.one("the policy declares no event with the 'restrict' effect")
    decision = planner.decision("granted", [check])
    return Result(
        decision, ChangeSet(add_events=(Event(subject, kinds[0], at),), audit=(grounded,))
    )


def open_grounds(
    engine: Engine, rule: LawRule, history: SubjectHistory, at: dt.datetime
) -> list[str] | None:
    """The Art 18(1) grounds of the restriction in force at ``at``, in the order granted:
    ``[]`` when none is in force, ``None`` when one is but its ground is not known (restricted
    by the notice's own event, or a store that keeps no audit log)."""
    ts = at.timestamp()
    if not history.restricted(ts):
        return []
    store = engine.store
    if isinstance(store, Store):
        entries: Iterable[AuditEntry] = subject_audit(store, history.subject)
    elif isinstance(store, World):  # an immutable world keeps its log as it is changed
        entries = (a for a in store.audit if a.subject == history.subject)
    else:
        return None
    lifts = engine.policy.events_with("lift_restriction")
    lifted = history.latest(lifts, ts) if lifts else None
    grounds: dict[str, None] = {}
    for entry in entries:
        if entry.rule != rule.id or entry.field is None or entry.at > at:
            continue
        if lifted is not None and entry.at <= lifted:
            continue  # a restriction lifted since (by the notice's event or the law) is over
        if entry.action == "restrict":
            grounds[entry.field] = None
        elif entry.action == "lift_restriction":
            grounds.pop(entry.field, None)
    return list(grounds) or None


def _restriction_end(
    engine: Engine,
    layer: LawLayer,
    planner: _Planner,
    result: RequestResult | None,
    ends: Sequence[str],
    how: str,
    at: dt.datetime,
) -> RequestResult:
    """What ends a restriction's Art 18(1) ground: with the last ground ended the restriction
    is lifted (the notice's lifting event); with others open it stays, on those.

    ``result``: the decided request that ends the ground (a rectification, an erasure, an
    objection), or None for a restriction request recording an end (``how``)."""
    from fairproc.rights import RequestResult as Result

    rule = _rule(layer, "restriction_grounds", at)
    if rule is None:
        return result if result is not None else Result(planner.decision("refused"))
    subject = planner.history.subject
    grounds = open_grounds(engine, rule, planner.history, at)
    ended = [g for g in grounds or () if g in ends]
    if not ended:
        if grounds is None:
            detail = (
                "a restriction is in force whose Art 18(1) ground is not recorded: lift it with "
                "the notice's lifting event, telling the data subject first (Art 18(3))"
            )
        elif grounds:
            detail = (
                f"the restriction in force rests on {', '.join(grounds)}, which {how} does not end"
            )
        else:
            detail = "no restriction is in force"
        if result is not None:
            return _with(result, [rule.check(None, detail)])
        reason = "restriction_ground_not_open"
        check = rule.check(False, f"{how}: {detail}", reason=reason)
        return Result(planner.decision("refused", [check], reasons=(reason,)))
    remaining = [g for g in grounds or () if g not in ended]
    audit = tuple(AuditEntry(at, "lift_restriction", subject, rule=rule.id, field=g) for g in ended)
    events: tuple[Event, ...] = ()
    if remaining:
        detail = (
            f"{how}: the ground {', '.join(ended)} has ended; the restriction stays in force "
            f"on {', '.join(remaining)}"
        )
    else:
        kinds = planner.policy.events_with("lift_restriction")
        if not kinds:
            raise InputError.one("the policy declares no event with the 'lift_restriction' effect")
        events = (Event(subject, kinds[0], at),)
        detail = (
            f"{how}: the ground {', '.join(ended)} has ended, so the restriction is lifted "
            "(the data subject is told before it is lifted, Art 18(3))"
        )
    check = rule.check(True, detail)
    if result is None:
        return Result(
            planner.decision("granted", [check]), ChangeSet(add_events=events, audit=audit)
        )
    changes = result.changes
    result = attrs.evolve(
        result,
        changes=attrs.evolve(
            changes,
            add_events=(*changes.add_events, *events),
            audit=(*changes.audit, *audit),
        ),
    )
    return _with(result, [check])


def _objection(
    layer: LawLayer,
    planner: _Planner,
    result: RequestResult,
    terms: LawTerms,
    at: dt.datetime,
) -> RequestResult:
    from fairproc.rights import RequestResult as Result

    rule = _rule(layer, "objection_rights", at)
    if rule is None or result.decision.outcome == "refused":
        return result
    policy = planner.policy
    events = result.changes.add_events
    named = [e.purpose for e in events if e.purpose is not None]
    allowed = set(planner.right.bases or ("legitimate_interests",))
    targets = named or [
        p.id for p in policy.purposes.values() if any(g.basis in allowed for g in p.bases)
    ]
    marketing = [p for p in targets if policy.purposes[p].direct_marketing]
    others = [p for p in targets if p not in marketing]
    if terms.compelling_grounds is None:
        detail = "objection recorded: processing stops"
        if others:
            detail += f" for {', '.join(others)} (Art 21(1): no compelling grounds recorded)"
        if marketing:
            detail += f"; for {', '.join(marketing)} absolutely (Art 21(3): direct marketing)"
        return _with(result, [rule.check(True, detail)])
    grounds = terms.compelling_grounds
    if not marketing:
        check = rule.check(
            False,
            f"compelling legitimate grounds recorded ({grounds}): processing of "
            f"{', '.join(others)} continues",
            reason="compelling_grounds",
        )
        return Result(planner.decision("refused", [check], reasons=("compelling_grounds",)))
    subject = planner.history.subject
    kind = events[0].kind
    kept_events = tuple(Event(subject, kind, at, purpose=p) for p in marketing)
    checks = [
        rule.check(True, f"direct marketing ({', '.join(marketing)}): the objection is absolute")
    ]
    if others:
        checks.append(
            rule.check(
                False,
                f"compelling legitimate grounds recorded ({grounds}): processing of "
                f"{', '.join(others)} continues",
                reason="compelling_grounds",
            )
        )
    outcome = "partially_granted" if others else "granted"
    return Result(
        planner.decision(outcome, checks, reasons=("compelling_grounds",) if others else ()),
        attrs.evolve(
            result.changes,
            add_events=kept_events,
            audit=tuple(
                AuditEntry(at, "object", subject, rule=planner.right.rule_id) for _ in kept_events
            ),
        ),
    )


def _complaint(layer: LawLayer, result: RequestResult, at: dt.datetime) -> RequestResult:
    rule = _rule(layer, "complaints", at)
    if rule is None:
        return result
    days = int(rule.params.get("acknowledge_days", 30))
    due = at + dt.timedelta(days=days)
    return _with(
        result,
        [
            rule.check(
                True,
                f"a complaint to the controller: acknowledge within {days} days (by "
                f"{due.isoformat()}), then respond without undue delay and give the outcome",
            )
        ],
        due=due,
    )

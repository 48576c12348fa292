"""What a scenario expectation (and ``fairproc explain``) can ask: one list, :data:`ASKS`,
that the scenario reader checks files against, the runner asks the engine through, and the
CLI offers. Each :class:`Ask` names its parameters and checks (and how each value is read),
the outcomes it can give, and how the engine is asked.

Imports nothing of fairproc's at run time (the CLI reads the list before it needs an engine);
the sweep and rights modules are imported when asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from fairproc.values import Value

if TYPE_CHECKING:  # the CLI reads the list of asks before it needs an engine
    from fairproc.decisions import Decision
    from fairproc.engine import Engine
    from fairproc.model import Policy

Answer = tuple["Decision | None", dict[str, Any]]
"""An ask's answer: its decision (None where there is none, as for a sweep), and the values
read beside it."""
Run = Callable[["Engine", Mapping[str, Any], dt.datetime], Answer]


def _route_outcomes(policy: Policy) -> frozenset[str]:
    return policy.route_outcomes()


def _may_process(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.may_process(p["record"], p["purpose"], at), {}


def _route(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.route(p["record"], at), {}


def _may_share(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.may_share(p["record"], p["recipient"], at, court_order=bool(p["court_order"])), {}


def _transfer(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.transfer(p["recipient"], at), {}


def _may_email(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.may_email(p["subject"], at), {}


def _retention(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    return engine.retention(p["record"], at), {}


def _sweep(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    from fairproc.sweep import plan_sweep

    plan = plan_sweep(engine, at)
    return None, {"due": tuple(item.record for item in plan.items)}


def _request(engine: Engine, p: Mapping[str, Any], at: dt.datetime) -> Answer:
    """Decide the request, then carry it out: it changes the world for the asks after it."""
    from fairproc.rights import LawTerms, plan_request

    result = plan_request(
        engine,
        p["subject"],
        p["right"],
        at,
        verified=bool(p["verified"]),
        complex=bool(p["complex"]),
        purposes=p["purposes"],
        corrections=p["corrections"],
        law=LawTerms(
            identity_confirmed_at=p["identity_confirmed_at"],
            fee_received_at=p["fee_received_at"],
            clarification_requested_at=p["clarification_requested_at"],
            clarification_received_at=p["clarification_received_at"],
            manifestly=p["manifestly"],
            manifest_action=p["manifest_action"] or "refuse",
            ground=p["ground"],
            compelling_grounds=p["compelling_grounds"],
        ),
    )
    engine.apply(result.changes)
    return result.decision, {}


# parameter and check kinds: how a value is read from the file and checked against the policy
ID_KINDS = ("record", "subject", "purpose", "recipient", "right", "category", "rule")


@attrs.frozen(repr=False)
class Ask(Value):
    name: str
    params: Mapping[str, str]  # key -> kind; required unless in ``optional``
    outcomes: frozenset[str]
    checks: Mapping[str, str]  # key -> kind
    run: Run  # how the engine is asked
    optional: Mapping[str, Any] = attrs.field(factory=dict)  # key -> default
    # one question with one explained decision (``fairproc explain`` asks it)
    explainable: bool = True
    # outcomes the policy itself names (routing's), read from the scenario's policy
    policy_outcomes: Callable[[Policy], frozenset[str]] | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        """The parameters an asker must give."""
        return tuple(k for k in self.params if k not in self.optional)

    def ask(self, engine: Engine, params: Mapping[str, Any], at: dt.datetime) -> Answer:
        """The engine's answer at ``at``: the decision (None for a sweep) and the values read
        beside it; ``params`` as read from a scenario or the command line, defaults filled."""
        return self.run(engine, {**self.optional, **params}, at)

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
            run=_may_process,
        ),
        Ask(
            "route",
            {"record": "record"},
            frozenset(),
            {"due": "instant", "rules": "rules"},
            run=_route,
            policy_outcomes=_route_outcomes,
        ),
        Ask(
            "may_share",
            {"record": "record", "recipient": "recipient", "court_order": "bool"},
            frozenset({"allowed", "denied"}),
            {"categories": "categories", "rules": "rules", "reasons": "codes", "findings": "codes"},
            run=_may_share,
            optional={"court_order": False},
        ),
        Ask(
            "transfer",
            {"recipient": "recipient"},
            frozenset({"allowed", "denied"}),
            {"findings": "codes", "rules": "rules"},
            run=_transfer,
        ),
        Ask(
            "may_email",
            {"subject": "subject"},
            frozenset({"allowed", "denied"}),
            {"reasons": "codes", "rules": "rules"},
            run=_may_email,
        ),
        Ask(
            "retention",
            {"record": "record"},
            frozenset({"keep", "delete", "review"}),
            {"until": "instant", "rules": "rules", "due": "instant"},
            run=_retention,
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
            run=_request,
            explainable=False,
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
        Ask("sweep", {}, frozenset(), {"due": "records"}, run=_sweep, explainable=False),
    ]
}

COMMON = ("ask", "at", "outcome", "title")


def explainable() -> list[str]:
    """The asks ``fairproc explain`` offers: one question, one explained decision."""
    return [name for name, a in ASKS.items() if a.explainable]

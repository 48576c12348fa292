"""Questions asked of the whole store: which records may be processed for a purpose, and the
marketing list (every address marketing email may go to tonight).

``may_process`` restated as one condition over records (:func:`processable_node`): a record
is allowed exactly when the condition holds. A store that pushes conditions down (the SQL
store's ``find_records``) selects the records itself, exact in SQL where its compiler says so
and finished in Python (the subject's history loaded) where not; another store streams its
records and evaluates the condition in Python. Either way the answer is the engine's, record
by record, and host code never loops over every subject.

The condition, for a purpose: the first of the purpose's grants that applies to the record's
source and whose ``when`` holds (the engine takes the first) is the basis, and every
processing rule binding that purpose and basis holds (``purpose`` and ``basis`` written in as
constants); the record is not erased and not past its retention due date
(:func:`fairproc.retention.due_node`). ``may_email_all`` adds that the record holds an address
and was collected by ``at``, and that its address is not on the suppression list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import cached_property
from typing import Any, NamedTuple

import attrs

from fairproc.clock import require_aware
from fairproc.conditions import (
    And,
    Compare,
    Const,
    In,
    Kind,
    Node,
    Not,
    Present,
    Ref,
    Type,
)
from fairproc.decisions import Decision
from fairproc.engine import marketing
from fairproc.errors import InputError
from fairproc.model import Policy, Record, normalise_email
from fairproc.retention import TRUE, all_of, any_of, due_node, not_of, source_in
from fairproc.storage import RecordListing, Store, matching, records_condition
from fairproc.values import Value

__all__ = ["Allowed", "MarketingAddress", "may_email_all", "processable", "processable_node"]


def _constant(node: Node, names: dict[str, Const]) -> Node:
    """``node`` with each name of ``names`` read as its constant (``purpose``, ``basis``)."""
    if isinstance(node, Ref):
        return names.get(node.name, node)
    if not attrs.has(type(node)):
        return node
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(node)):
        value = getattr(node, field.name)
        if isinstance(value, tuple):
            new: Any = tuple(_constant(v, names) if attrs.has(type(v)) else v for v in value)
        elif attrs.has(type(value)):
            new = _constant(value, names)
        else:
            continue
        if new != value:
            changes[field.alias or field.name] = new
    return attrs.evolve(node, **changes) if changes else node


def processable_node(policy: Policy, purpose: str) -> Node:
    """A condition over records holding exactly when ``may_process(record, purpose, at)`` is
    allowed (``record.erased_at`` and retention included)."""
    found = policy.purposes.get(purpose)
    if found is None:
        raise InputError.one(f"unknown purpose {purpose!r} (known: {', '.join(policy.purposes)})")
    branches: list[Node] = []
    earlier: list[Node] = []  # the grants before this one: none of them may apply
    for grant in found.bases:
        names = {
            "purpose": Const(purpose, Type(Kind.STRING, "purpose")),
            "basis": Const(grant.basis, Type(Kind.STRING, "basis")),
        }
        sources = source_in(grant.sources) if grant.sources is not None else TRUE
        holds = all_of([sources, grant.when.node if grant.when is not None else TRUE])
        rules = [
            _constant(rule.require.node, names)
            for rule in policy.processing
            if rule.applies(purpose, grant.basis)
        ]
        branches.append(all_of([holds, *(not_of(e) for e in earlier), *rules]))
        earlier.append(holds)
    return all_of(
        [
            any_of(branches),
            Not(Present(Ref("record.erased_at"))),
            not_of(due_node(policy)),
            # a record of a source the policy does not declare has no grant (the engine's
            # error for it is a question's; here it is simply not processable)
            source_in(list(policy.sources)),
        ]
    )


_UNLISTED = Not(Ref("record.suppressed"))


def _requires_unlisted(policy: Policy, purpose: str) -> bool:
    """Whether every basis the purpose may run on has a processing rule requiring the
    record's address not to be listed (then the marketing list need not ask again: asked
    twice, a database works out the same subquery twice)."""

    def requires(node: Node) -> bool:
        return node == _UNLISTED or (isinstance(node, And) and _UNLISTED in node.items)

    return all(
        any(requires(r.require.node) for r in policy.processing if r.applies(purpose, g.basis))
        for g in policy.purposes[purpose].bases
    )


def _email_node(policy: Policy, purpose: str, category: str) -> Node:
    unlisted = TRUE if _requires_unlisted(policy, purpose) else _UNLISTED
    return all_of(
        [
            processable_node(policy, purpose),
            In(Const(category, Type(Kind.STRING, "category")), Ref("record.categories")),
            Compare("<=", Ref("record.collected_at"), Ref("at")),
            unlisted,
        ]
    )


def _records(engine: Any, node: Node, at: dt.datetime) -> Iterator[Record]:
    """The store's records the condition holds for at ``at``: pushed down where the store
    can, else evaluated in Python with the histories loaded in batches."""
    store, policy = engine.store, engine.policy
    cond = records_condition(node, policy)
    if isinstance(store, Store):
        return iter(store.find_records(cond, at, policy))
    if isinstance(store, RecordListing):
        records = store.iter_records()
        return matching(engine.store, cond, at, policy, records)
    raise InputError.one(f"{type(store).__name__} cannot list its records")


@attrs.frozen(slots=False, repr=False)
class Allowed(Value):
    """A record that may be processed for the purpose at ``at``. Its decision, with every
    rule and the notice's words, is taken when first read (the subject's history is loaded
    then, not while the store is streamed)."""

    record: Record
    purpose: str
    at: dt.datetime
    engine: Any = attrs.field(eq=False, repr=False)

    @cached_property
    def decision(self) -> Decision:
        return self.engine.may_process(self.record, self.purpose, self.at)  # type: ignore[no-any-return]


def processable(engine: Any, purpose: str, at: dt.datetime) -> Iterator[Allowed]:
    """Every record of the engine's store that may be processed for ``purpose`` at ``at``,
    streamed in store order; the same records as asking ``may_process`` of each."""
    at = require_aware(at)
    node = processable_node(engine.policy, purpose)
    for record in _records(engine, node, at):
        allowed = Allowed(record, purpose, at, engine)
        # The condition is the notice's; a law layer only takes away, record by record.
        if engine.law is None or allowed.decision.allowed:
            yield allowed


class MarketingAddress(NamedTuple):
    """One address of the marketing list: normalised, the subject and the record giving it."""

    address: str
    subject: str
    record: str


def may_email_all(engine: Any, at: dt.datetime) -> Iterator[MarketingAddress]:
    """Every address marketing email may go to at ``at``, each once (the first record giving
    it names it): the union of ``may_email(subject, at).addresses`` over every subject."""
    at = require_aware(at)
    purpose, category = marketing(engine.policy)
    node = _email_node(engine.policy, purpose.id, category)
    seen: set[str] = set()  # an address given in several records goes out once
    for record in _records(engine, node, at):
        value = record.data.get(category)
        if not isinstance(value, str) or not value.strip():
            continue
        # beneath a law, an address goes out only by a record the law allows too (may_email)
        if engine.law is not None and not engine.may_process(record, purpose.id, at).allowed:
            continue
        address = normalise_email(value)
        if address not in seen:
            seen.add(address)
            yield MarketingAddress(address, record.subject, record.id)

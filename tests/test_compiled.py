"""The compiled questions (fairproc.compiled) give the engine's decisions, word for word.

The engine's questions are the reference. On generated worlds and instants, each compiled
question must give the same outcome, basis, dates, addresses, reasons, rules, the facts each
rule read and the same explanation text; and refuse bad input with the engine's error.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Decision, Engine, InputError, Policy, Record, World, load_policy
from fairproc.compiled import compile_questions
from fairproc.testing import strategies as fst

POLICY: Policy = load_policy("flexioffices")
UTC = dt.UTC
COMPILED = ("may_process", "may_email", "retention", "route", "may_share")

CASES = fst.worlds(POLICY).flatmap(
    lambda w: st.tuples(
        st.just(w), st.lists(fst.questions(POLICY, w, asks=COMPILED), min_size=1, max_size=5)
    )
)


def everything(decision: Decision) -> dict[str, Any]:
    """All a decision says: its fields, its checks with their facts, and its text."""
    return {
        **decision.to_dict(),
        "checks": [(c, dict(c.facts)) for c in decision.checks],
        "basis": decision.basis,
        "until": decision.until,
        "due": decision.due,
        "addresses": decision.addresses,
        "text": decision.explain(),
    }


@settings(max_examples=150, deadline=None)
@given(CASES)
def test_compiled_questions_give_the_engines_decisions(case: Any) -> None:
    world, questions = case
    # Separate engines: neither reuses what the other remembered.
    reference = Engine(POLICY, world)
    compiled = compile_questions(Engine(POLICY, world))
    for question in questions:
        expected = question.ask(reference)
        method = getattr(compiled, question.name)
        got = method(**question.params, at=question.at)
        assert everything(got) == everything(expected), question


@settings(max_examples=60, deadline=None)
@given(CASES, st.data())
def test_compiled_and_engine_agree_on_one_engine_at_many_instants(
    case: Any, data: st.DataObject
) -> None:
    """Sharing one engine (and its histories' memo of facts and verdicts), asked in turn,
    at several instants: what one remembers never changes what the other answers."""
    world, questions = case
    engine = Engine(POLICY, world)
    compiled = compile_questions(engine)
    for question in questions:
        at = data.draw(fst.instants_for(POLICY, world))
        params = question.params
        first = getattr(compiled, question.name)(**params, at=at)
        second = getattr(engine, question.name)(**params, at=at)
        assert everything(first) == everything(second), (question, at)


def test_bad_input_gets_the_engines_error() -> None:
    at = dt.datetime(2026, 11, 21, 10, tzinfo=UTC)
    record = Record("r1", "ada", "quick_quote", at, {"email": "ada@example.com"})
    compiled = compile_questions(Engine(POLICY, World([record])))
    with pytest.raises(InputError, match="unknown purpose 'marketing'"):
        compiled.may_process("r1", "marketing", at)
    with pytest.raises(InputError, match="no record with id 'r9'"):
        compiled.route("r9", at)
    with pytest.raises(InputError, match="unknown recipient 'printer'"):
        compiled.may_share("r1", "printer", at)
    with pytest.raises(InputError):
        compiled.retention("r1", at.replace(tzinfo=None))
    assert compiled.may_email("ada", at).allowed
    # a record whose time has no zone, asked about directly: the engine's error, each time
    naive = Record("r2", "ada", "quick_quote", at.replace(tzinfo=None), {})
    engine = Engine(POLICY, World([record]))
    with pytest.raises(InputError) as expected:
        engine.route(naive, at)
    for _ in range(2):
        with pytest.raises(InputError) as got:
            compiled.route(naive, at)
        assert str(got.value) == str(expected.value)
    with pytest.raises(InputError, match="unknown source"):
        compiled.route(Record("r3", "ada", "carrier_pigeon", at, {}), at)


@settings(max_examples=80, deadline=None)
@given(CASES, st.data())
def test_a_compiled_answer_kept_for_a_stretch_of_time_is_the_engines_at_each_instant(
    case: Any, data: st.DataObject
) -> None:
    """A compiled question remembers what it decided with the stretch of time it holds for,
    and gives it again at another instant of the stretch: asked in turn at instants about
    the world's own (its events, collections and the dates its periods reach), each with its
    neighbours a microsecond and a second either side, every answer and its explanation are
    the reference engine's at that instant."""
    world, questions = case
    reference = Engine(POLICY, world)
    compiled = compile_questions(Engine(POLICY, world))
    drawn = data.draw(st.lists(fst.instants_for(POLICY, world), min_size=1, max_size=6))
    steps = [dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(seconds=1)]
    instants = [at + sign * step for at in drawn for step in steps for sign in (1, -1)]
    if data.draw(st.booleans()):
        instants.sort()
    for question in questions:
        for at in instants:
            expected = getattr(reference, question.name)(**question.params, at=at)
            got = getattr(compiled, question.name)(**question.params, at=at)
            assert everything(got) == everything(expected), (question, at)


def test_an_address_going_on_the_list_ends_a_kept_answer() -> None:
    """An answer that reads ``record.suppressed`` holds only until the record's address goes
    on the suppression list: asked a microsecond before the entry and then after it, the
    compiled question does not give the first answer again."""
    from fairproc.model import SuppressionEntry

    collected = dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
    listed = dt.datetime(2026, 6, 1, 12, tzinfo=UTC)
    record = Record(
        "h1", "ada", "handbook_download", collected, {"name": "Ada", "email": "ada@example.com"}
    )
    world = World([record], [], [SuppressionEntry("ADA@example.com ", listed, "unsubscribed")])
    reference = Engine(POLICY, world)
    compiled = compile_questions(Engine(POLICY, world))
    purpose = POLICY.info.marketing_purpose
    assert purpose is not None
    answers = []
    for at in (listed - dt.timedelta(microseconds=1), listed, listed + dt.timedelta(days=1)):
        expected = reference.may_process(record, purpose, at)
        got = compiled.may_process(record, purpose, at)
        assert everything(got) == everything(expected), at
        answers.append(got.allowed)
    assert answers[0] and not answers[1] and not answers[2]  # the list changed the answer

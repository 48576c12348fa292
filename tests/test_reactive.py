"""The reactive engine on durable-rules (fairproc.reactive): held to the Python meaning of
reactions (fairproc.reactions) by differential tests, isolated from other engines in the same
process, torn down cleanly, and plain about what to install when durable-rules is missing.

The tests that need durable-rules skip, saying why, where it cannot be imported (Python 3.13,
or not installed); the ones about its absence run everywhere.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Event, FairprocError, Policy, Record, World, load_policy, reactive
from fairproc.conditions import Condition, parse
from fairproc.conditions.vocabulary import vocabulary
from fairproc.model import Reaction
from fairproc.reactions import Arrival, ReactionSession
from fairproc.reactive import (
    INSTALL,
    DurableUnavailable,
    ReactiveEngine,
    compile_when,
    message,
)
from fairproc.testing import strategies as fst
from helpers import TESTS, london

try:
    reactive.load_durable()
    WHY: str | None = None
except DurableUnavailable as exc:
    WHY = str(exc)

needs_durable = pytest.mark.skipif(WHY is not None, reason=f"durable-rules: {WHY}")

FLEXI = load_policy("flexioffices")
SUBJECTS = ("ada", "bob", "cy")


def reaction(policy: Policy, id: str, on: str, do: str, when: str | None = None) -> Reaction:
    """A reaction as the loader builds it: its condition compiled against the policy."""
    context = "reaction_event" if on == "event" else "reaction_record"
    built = None if when is None else Condition.build(when, vocabulary(policy, context), policy.tz)
    return Reaction(id, "test clause", on, do, built)


def quote(at: dt.datetime, *, id: str = "q1", subject: str = "ada") -> Record:
    return Record(id, subject, "quick_quote", at, {"name": "Ada", "email": "ada@example.com"})


# --- random event streams --------------------------------------------------------------------

# Kinds an application posts, the ones with reactions more often than the others.
_KINDS = (
    "unsubscribed",
    "unsubscribed",
    "objected",
    "objected",
    "objected",
    "restricted",
    "restriction_lifted",
    "cookies_accepted",
    "cookies_rejected",
    "office_let",
    "website_visit",
    "staff_contact",
    "email_open",
    "enquiry_resolved",
)


@st.composite
def streams(draw: st.DrawFn, policy: Policy, max_size: int = 24) -> list[Arrival]:
    """Records of random sources at random instants (weekends, evenings, office-hours edges,
    clock changes, in assorted zones), and events: unsubscribes, objections with and without a
    purpose, restrictions, cookie choices, office lets, interactions, resolved enquiries."""
    out: list[Arrival] = []
    ids: list[str] = []
    for i in range(draw(st.integers(1, max_size))):
        subject = draw(st.sampled_from(SUBJECTS))
        if draw(st.booleans()):
            reuse = ids and draw(st.integers(0, 9)) == 0  # now and then, a record replaced
            rid = draw(st.sampled_from(ids)) if reuse else f"r{i}"
            out.append(draw(fst.records(policy, record_id=rid, subject=subject)))
            ids.append(rid)
            continue
        kind = draw(st.sampled_from(_KINDS))
        record = None
        if policy.events[kind].names_record:
            if not ids:
                continue
            record = draw(st.sampled_from(ids))
        purpose = None
        if policy.events[kind].names_purpose:
            purpose = draw(st.none() | st.sampled_from(sorted(policy.purposes)))
        out.append(Event(subject, kind, draw(fst.instants(policy)), record, purpose))
    return out


def assert_same_world(a: Any, b: Any) -> None:
    assert isinstance(a, World) and isinstance(b, World)
    assert a.records == b.records
    assert a.events == b.events
    assert a.suppression == b.suppression
    assert a.audit == b.audit


def assert_same_run(policy: Policy, stream: list[Arrival]) -> None:
    """Post ``stream`` through the Python reactions and through durable-rules: the same
    reactions fire, with the same decisions and changes, and the stores end up the same."""
    python = ReactionSession(policy)
    with ReactiveEngine(policy) as durable:
        for arrival in stream:
            expected = python.post(arrival)
            assert durable.post(arrival) == expected, arrival
        assert durable.facts() == []  # every fact asserted was retracted
    assert_same_world(python.store, durable.store)
    last = max(
        (a.collected_at if isinstance(a, Record) else a.at for a in stream),
        default=london(2026, 1, 1),
    )
    for subject in SUBJECTS:
        assert durable.engine.may_email(subject, last) == python.engine.may_email(subject, last)


@needs_durable
@settings(max_examples=150)
@given(streams(FLEXI))
def test_random_streams_give_the_same_decisions_and_store_on_both_backends(
    stream: list[Arrival],
) -> None:
    assert_same_run(FLEXI, stream)


# Conditions a reaction may test: compiled to durable-rules or left to the Python guard.
RECORD_ATOMS = (
    "record.source == 'quick_quote'",
    "record.source != 'handbook_download'",
    "'live_chat' == record.source",
    "record.source in ['quick_quote', 'multiquote', 'contact_form']",
    "record.source not in ['website_visit', 'phone_call']",
    "not (record.source not in ['handbook_download', 'live_chat'])",
    "'email' in record.categories",
    "'phone' not in record.categories",
    "record.id == 'r1'",
    "record.subject != 'ada'",
    "subject.id in ['bob', 'cy']",
    "record.categories is not None",
    "in_office_hours(record.collected_at)",
    "weekday(record.collected_at) >= 5",
    "subject.suppressed",
    "subject.restricted",
    "subject.cookie_choice == 'cookies_accepted'",
    "subject.office_let is None",
    "record.resolved_at is not None",
    "record.collected_at <= at",
    "objected('marketing_updates')",
    "true",
    "false",
)
EVENT_ATOMS = (
    "event.kind == 'unsubscribed'",
    "event.kind != 'objected'",
    "event.kind in ['objected', 'restricted', 'cookies_accepted']",
    "event.kind not in ['office_let', 'website_visit']",
    "event.kind not in ['unsubscribed', 'objected']",
    "event.purpose not in ['office_search', 'analytics']",
    "event.purpose == 'marketing_updates'",
    "event.purpose != 'office_search'",
    "event.purpose in ['analytics', 'retargeting']",
    "event.purpose not in ['marketing_updates']",
    "event.purpose is None",
    "event.purpose is not None",
    "event.record is None",
    "event.record == 'r1'",
    "event.record != 'r2'",
    "subject.id == 'ada'",
    "event.at is not None",
    "subject.suppressed",
    "subject.cookie_choice != 'cookies_rejected'",
    "objected('office_search')",
    "local_time(event.at) < time('12:00')",
    "true",
    "false",
)


def every_kind_of_arrival(policy: Policy) -> list[Arrival]:
    """A record from each source (with and without an email), then each kind of event, with
    each purpose and none, naming a record and not."""
    at = london(2026, 3, 2, 10)
    out: list[Arrival] = []
    for i, source in enumerate(sorted(policy.sources)):
        subject = SUBJECTS[i % len(SUBJECTS)]
        out.append(Record(f"r{i}", subject, source, at, {"email": "a@example.com"}))
        out.append(Record(f"s{i}", subject, source, at + dt.timedelta(days=i), {}))
    for kind in sorted(policy.events):
        for purpose in (None, "marketing_updates", "office_search", "analytics"):
            for record in (None, "r1", "r2"):
                out.append(Event("ada", kind, at + dt.timedelta(days=10), record, purpose))
    return out


@needs_durable
@pytest.mark.parametrize("negated", [False, True])
@pytest.mark.parametrize(
    ("on", "atom"), [("record", a) for a in RECORD_ATOMS] + [("event", a) for a in EVENT_ATOMS]
)
def test_each_condition_and_its_negation_fire_alike(on: str, atom: str, negated: bool) -> None:
    when = f"not ({atom})" if negated else atom
    do = "route" if on == "record" else "record_restriction"
    policy = attrs.evolve(FLEXI, reactions=(reaction(FLEXI, "x", on, do, when),))
    assert_same_run(policy, every_kind_of_arrival(FLEXI))


def conditions(atoms: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(atoms),
        lambda inner: st.one_of(
            inner.map(lambda c: f"not ({c})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) or ({p[1]})"),
            st.tuples(inner, inner, inner).map(lambda p: f"({p[0]}) or not ({p[1]} and {p[2]})"),
        ),
        max_leaves=6,
    )


@st.composite
def random_reactions(draw: st.DrawFn, policy: Policy) -> Policy:
    made = []
    for i in range(draw(st.integers(1, 4))):
        on = draw(st.sampled_from(("record", "event")))
        if on == "record":
            do = draw(st.sampled_from(("route", "suppress")))
            when = draw(st.none() | conditions(RECORD_ATOMS))
        else:
            do = draw(st.sampled_from(("suppress", "record_objection", "record_restriction")))
            when = draw(st.none() | conditions(EVENT_ATOMS))
        made.append(reaction(policy, f"x{i}", on, do, when))
    return attrs.evolve(policy, reactions=tuple(made))


@needs_durable
@settings(max_examples=200)
@given(st.data())
def test_random_conditions_fire_the_same_reactions_on_both_backends(data: st.DataObject) -> None:
    policy = data.draw(random_reactions(FLEXI), label="policy")
    for r in policy.reactions:
        note = r.when.text if r.when else None
        data.draw(st.just(note), label=f"{r.id}: on {r.on}, {r.do}")
    assert_same_run(policy, data.draw(streams(FLEXI, max_size=16), label="stream"))


# --- the compiler ----------------------------------------------------------------------------


def test_the_reference_reactions_compile_exactly_to_durable_rules() -> None:
    test, exact, keys = compile_when(parse(FLEXI.reactions[0].when.text), "record")  # type: ignore[union-attr]
    assert exact
    assert keys == {"t", "record_source"}
    assert test == {
        "$and": [
            {"t": "record"},
            {
                "$or": [
                    {"record_source": "quick_quote"},
                    {"record_source": "multiquote"},
                    {"record_source": "live_chat"},
                ]
            },
        ]
    }
    for r in FLEXI.reactions:
        assert compile_when(r.when.node if r.when else None, r.on)[1], r.id


@pytest.mark.parametrize(
    ("on", "text", "expected", "exact"),
    [
        ("event", "event.kind == 'unsubscribed'", {"event_kind": "unsubscribed"}, True),
        ("event", "event.kind != 'objected'", {"$neq": {"event_kind": "objected"}}, True),
        # a comparison with a missing value is false, so its negation matches the absence
        (
            "event",
            "not (event.purpose == 'analytics')",
            {"$or": [{"$neq": {"event_purpose": "analytics"}}, {"$nex": {"event_purpose": 1}}]},
            True,
        ),
        (
            "event",
            "event.purpose not in ['analytics', 'retargeting']",
            {
                "$and": [
                    {"$neq": {"event_purpose": "analytics"}},
                    {"$neq": {"event_purpose": "retargeting"}},
                ]
            },
            True,
        ),
        ("event", "event.purpose is None", {"$nex": {"event_purpose": 1}}, True),
        ("event", "event.at is not None", True, True),
        ("record", "'email' in record.categories", {"$ex": {"record_has_email": 1}}, True),
        ("record", "not ('email' in record.categories)", {"$nex": {"record_has_email": 1}}, True),
        ("record", "false", False, True),
        # a call is left to Python; the rest still narrows what durable-rules matches
        (
            "record",
            "record.source == 'quick_quote' and in_office_hours(record.collected_at)",
            {"record_source": "quick_quote"},
            False,
        ),
        ("record", "record.source == 'quick_quote' or subject.suppressed", True, False),
        ("record", "not in_office_hours(record.collected_at)", True, False),
        ("record", "false and in_office_hours(record.collected_at)", False, True),
        ("record", "true or subject.suppressed", True, True),
    ],
)
def test_what_compiles_to_durable_rules_and_what_is_left_to_python(
    on: str, text: str, expected: Any, exact: bool
) -> None:
    test, got_exact, _ = compile_when(parse(text), on)
    positive = {"t": on}
    if expected is True:
        assert test == positive
    elif expected is False:
        assert test is False
    else:
        assert test == {"$and": [positive, expected]}
    assert got_exact is exact


def test_messages_hold_only_what_the_rules_read_and_no_nulls() -> None:
    event = Event("ada", "objected", london(2026, 3, 2), purpose=None)
    assert message(event, frozenset({"t", "event_kind", "event_purpose"})) == {
        "t": "event",
        "event_kind": "objected",
    }
    rec = quote(london(2026, 3, 2))
    assert message(rec, frozenset({"t", "record_source", "record_has_email"})) == {
        "t": "record",
        "record_source": "quick_quote",
        "record_has_email": 1,
    }


@needs_durable
def test_a_condition_left_to_python_is_checked_when_durable_rules_matches() -> None:
    when = "record.source == 'quick_quote' and in_office_hours(record.collected_at)"
    policy = attrs.evolve(FLEXI, reactions=(reaction(FLEXI, "open", "record", "route", when),))
    with ReactiveEngine(policy) as engine:
        (compiled,) = engine.compiled
        assert not compiled.exact
        assert engine.post(quote(london(2026, 3, 2, 10), id="a")).fired == ("open",)
        assert engine.post(quote(london(2026, 3, 7, 10), id="b")).fired == ()  # Saturday
        chat = Record("c", "ada", "live_chat", london(2026, 3, 2, 10), {})
        assert engine.post(chat).fired == ()


@needs_durable
def test_strings_durable_rules_would_compare_by_a_prefix_are_matched_in_python() -> None:
    """durable-rules keeps a string's length in 16 bits: 65,546 'x's compare equal to ten."""
    ten = reaction(FLEXI, "ten", "record", "route", "record.id == 'xxxxxxxxxx'")
    policy = attrs.evolve(FLEXI, reactions=(ten,))
    long_id = Record("x" * 65_546, "ada", "quick_quote", london(2026, 3, 2), {})
    short_id = attrs.evolve(long_id, id="x" * 10)
    with ReactiveEngine(policy) as engine:
        assert engine.post(long_id).fired == ()
        assert engine.post(short_id).fired == ("ten",)


@needs_durable
def test_a_policy_of_hundreds_of_reactions_is_spread_over_rulesets() -> None:
    """durable-rules hangs on 512 rules testing one field: the engine splits them."""
    many = tuple(
        reaction(FLEXI, f"k{i}", "record", "route", f"record.id == 'k{i}'") for i in range(600)
    )
    policy = attrs.evolve(FLEXI, reactions=(*many, reaction(FLEXI, "all", "record", "route")))
    stream: list[Arrival] = [
        Record(rid, "ada", "quick_quote", london(2026, 3, 2), {})
        for rid in ("k0", "k255", "k256", "k599", "k600")
    ]
    with ReactiveEngine(policy) as engine:
        assert len(engine.rulesets) == 3
        fired = [engine.post(r).fired for r in stream]
    assert fired == [("k0", "all"), ("k255", "all"), ("k256", "all"), ("k599", "all"), ("all",)]
    assert_same_run(policy, stream)


# --- isolation and teardown ------------------------------------------------------------------


@needs_durable
def test_two_engines_with_different_policies_share_nothing() -> None:
    other = attrs.evolve(
        FLEXI,
        reactions=(reaction(FLEXI, "forms", "record", "route", "record.source == 'contact_form'"),),
    )
    at = london(2026, 3, 2, 10)
    with ReactiveEngine(FLEXI) as first, ReactiveEngine(other) as second:
        assert not set(first.rulesets) & set(second.rulesets)
        assert first.post(quote(at)).fired == ("reaction.enquiry_routing",)
        assert second.post(quote(at)).fired == ()
        form = Record("f1", "ada", "contact_form", at, {"email": "ada@example.com"})
        assert first.post(form).fired == ()
        assert second.post(form).fired == ("forms",)
        assert first.facts() == [] and second.facts() == []
        assert first.store.records == (quote(at), form)  # each has its own store
        assert second.store.records == (quote(at), form)


@needs_durable
def test_the_same_policy_twice_in_one_process() -> None:
    at = london(2026, 3, 7, 10)
    first = ReactiveEngine(FLEXI)
    second = ReactiveEngine(FLEXI)
    try:
        assert not set(first.rulesets) & set(second.rulesets)
        assert first.post(quote(at)) == second.post(quote(at))
        first.close()
        # closing one leaves the other working
        reacted = second.post(Event("ada", "unsubscribed", at))
        assert reacted.fired == ("reaction.unsubscribe",)
        assert [e.email for e in reacted.changes.add_suppression] == ["ada@example.com"]
    finally:
        first.close()
        second.close()


@needs_durable
def test_close_deletes_the_ruleset_and_refuses_more_posts() -> None:
    core = reactive.load_durable().core
    engine = ReactiveEngine(FLEXI)
    engine.post(quote(london(2026, 3, 2)))
    handles = list(engine._handles)
    assert handles
    assert core.get_facts(handles[0], "0") == "[]"  # alive, and empty
    assert not engine.closed
    engine.close()
    assert engine.closed
    with pytest.raises(core.error):
        core.get_facts(handles[0], "0")
    with pytest.raises(FairprocError, match="is closed"):
        engine.post(quote(london(2026, 3, 2)))
    engine.close()  # twice is fine


@needs_durable
def test_the_context_manager_and_garbage_collection_free_the_ruleset() -> None:
    core = reactive.load_durable().core
    with ReactiveEngine(FLEXI) as engine:
        engine.post(quote(london(2026, 3, 2)))
        handles = list(engine._handles)
    with pytest.raises(core.error):
        core.get_facts(handles[0], "0")
    dropped = ReactiveEngine(FLEXI)
    dropped.post(quote(london(2026, 3, 2)))
    handles = list(dropped._handles)
    assert core.get_facts(handles[0], "0") == "[]"
    del dropped
    gc.collect()
    with pytest.raises(core.error):
        core.get_facts(handles[0], "0")


@needs_durable
def test_no_threads_are_started_and_actions_run_in_the_posting_thread() -> None:
    before = threading.active_count()
    seen: list[threading.Thread] = []
    with ReactiveEngine(FLEXI) as engine:
        original = engine._matches.hit

        def hit(index: int) -> None:
            seen.append(threading.current_thread())
            original(index)

        engine._matches.hit = hit  # type: ignore[method-assign]
        engine.post(quote(london(2026, 3, 2)))
        assert threading.active_count() == before
    assert seen == [threading.current_thread()]


@needs_durable
def test_definitions_are_copied_before_durable_rules_mutates_them() -> None:
    with ReactiveEngine(FLEXI) as engine:
        (rules,) = engine.definition.values()
        assert len(rules) == 5
        assert all(rule["run"] == name for name, rule in rules.items())


@needs_durable
def test_an_exception_in_an_action_is_raised_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, index: int) -> None:
        raise RuntimeError("boom in an action")

    with ReactiveEngine(FLEXI) as engine:
        monkeypatch.setattr(reactive._Matches, "hit", broken)
        with pytest.raises(RuntimeError, match="boom in an action"):
            engine.post(quote(london(2026, 3, 2)))
        assert engine.store.records == ()  # nothing applied
        monkeypatch.undo()
        assert engine.facts() == []
        assert engine.post(quote(london(2026, 3, 2))).fired == ("reaction.enquiry_routing",)


# --- without durable-rules -------------------------------------------------------------------


@pytest.fixture
def fresh_import() -> Iterator[None]:
    reactive.load_durable.cache_clear()
    yield
    reactive.load_durable.cache_clear()


@pytest.mark.usefixtures("fresh_import")
def test_without_durable_rules_the_engine_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("durable", "durable.engine", "durable_rules_engine"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails: not installed
    assert not reactive.available()
    with pytest.raises(DurableUnavailable, match=re.escape(INSTALL)):
        ReactiveEngine(FLEXI)
    assert INSTALL == 'pip install "fairproc[durable]"'
    # the rest of the library works, the pure-Python reactions included
    reacted = ReactionSession(FLEXI).post(quote(london(2026, 3, 7, 10)))
    assert reacted.decision is not None and reacted.decision.outcome == "pass_to_providers"


@pytest.mark.usefixtures("fresh_import")
def test_on_python_313_the_import_error_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> Any:
        raise ImportError(
            "durable_rules_engine.cpython-313-x86_64-linux-gnu.so: "
            "undefined symbol: PyEval_CallObject"
        )

    monkeypatch.setattr(reactive, "importlib", types.SimpleNamespace(import_module=fail))
    with pytest.raises(DurableUnavailable) as caught:
        ReactiveEngine(FLEXI)
    text = str(caught.value)
    assert INSTALL in text
    assert "PyEval_CallObject" in text
    assert "3.13" in text
    assert isinstance(caught.value, FairprocError)


def test_importing_fairproc_does_not_import_durable_rules() -> None:
    code = (
        "import sys\n"
        "sys.modules['durable'] = None\n"
        "sys.modules['durable_rules_engine'] = None\n"
        "import fairproc, fairproc.reactions, fairproc.reactive\n"
        "print(fairproc.reactive.available())\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@needs_durable
def test_the_benchmark_runs_and_every_row_fires_the_same_reactions() -> None:
    bench = TESTS.parent / "bench" / "reactive.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--events", "300", "--subjects", "30", "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("durable", "fairproc"))]
    assert len(rows) == 4
    assert len({row.split()[-1] for row in rows}) == 1  # the 'fired' column

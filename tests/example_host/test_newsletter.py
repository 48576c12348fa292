"""The example host's tests: fairproc's fixtures, markers, assertion helpers and hypothesis
strategies, used on the host's own code (here, a newsletter that must respect the policy)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Engine, Policy, World, load_policy
from fairproc.testing import Clock, EngineBuilder, assert_allowed, assert_denied, assert_outcome
from fairproc.testing import strategies as fst


class Newsletter:
    """The host application's code under test: it emails whom the policy lets it email.

    (A real host imports its own code; the example keeps it here to stay self-contained.)
    """

    def __init__(self, engine: Callable[[], Engine], now: Callable[[], dt.datetime]):
        self._engine = engine
        self._now = now

    def send(self, subjects: Iterable[str]) -> list[str]:
        engine, at = self._engine(), self._now()
        return [s for s in subjects if engine.may_email(s, at).allowed]


@pytest.fixture
def newsletter(fairproc_engine: EngineBuilder, fairproc_clock: Clock) -> Newsletter:
    """The application wired to the kit: the world the test builds, the clock it pins."""
    return Newsletter(lambda: fairproc_engine.engine, fairproc_clock)


def test_the_newsletter_goes_to_a_customer_who_asked_for_a_quote(
    fairproc_engine: EngineBuilder, newsletter: Newsletter
) -> None:
    fairproc_engine.add_record("q1", "ada", "quick_quote", email="ada@example.com")
    assert_allowed(fairproc_engine.may_email("ada"))
    assert newsletter.send(["ada"]) == ["ada"]


def test_the_newsletter_skips_someone_who_unsubscribed(
    fairproc_engine: EngineBuilder, fairproc_clock: Clock, newsletter: Newsletter
) -> None:
    fairproc_engine.add_record("q1", "ada", "quick_quote", email="ada@example.com")
    fairproc_engine.add_event("ada", "unsubscribed")
    fairproc_clock.advance("P1D")
    assert newsletter.send(["ada"]) == []
    assert_denied(fairproc_engine.may_email("ada"), reasons=["suppressed"])


@pytest.mark.fairproc_now("2026-11-21T10:00:00Z")  # a Saturday
def test_a_weekend_quote_goes_to_office_providers(fairproc_engine: EngineBuilder) -> None:
    fairproc_engine.add_record("q1", "ada", "quick_quote", email="ada@example.com")
    assert_outcome(fairproc_engine.route("q1"), "pass_to_providers", rules=["routing.enquiry"])


@pytest.mark.fairproc_now("2026-11-23T10:00:00Z")
def test_four_years_without_an_interaction_end_the_newsletter(
    fairproc_engine: EngineBuilder, fairproc_clock: Clock, newsletter: Newsletter
) -> None:
    fairproc_engine.add_record("h1", "ada", "handbook_download", email="ada@example.com")
    fairproc_clock.advance("P4Y")
    assert newsletter.send(["ada"]) == []
    assert_denied(fairproc_engine.may_email("ada"), reasons=["li_window_expired"])


def test_the_policy_is_the_reference_one(fairproc_policy: Policy) -> None:
    assert fairproc_policy.id == "flexioffices"


# Strategies are built when the module is imported, before any fixture exists: load the policy
# here. (Policies are immutable, so every example may share it.)
POLICY = load_policy("flexioffices")


@settings(max_examples=50, deadline=None, database=None)
@given(fst.worlds(POLICY).flatmap(lambda w: st.tuples(st.just(w), fst.instants_for(POLICY, w))))
def test_the_newsletter_never_reaches_a_suppressed_address(
    case: tuple[World, dt.datetime],
) -> None:
    world, at = case
    engine = Engine(POLICY, world)
    newsletter = Newsletter(lambda: engine, lambda: at)
    for subject in newsletter.send(sorted(world.subjects)):
        assert not engine.history(subject).suppressed(at.timestamp()), engine.may_email(
            subject, at
        ).explain()


@settings(max_examples=50, deadline=None, database=None)
@given(collected=fst.instants(POLICY), written_in=fst.timezones(POLICY))
def test_routing_reads_the_london_clock(collected: dt.datetime, written_in: dt.tzinfo) -> None:
    builder = EngineBuilder(POLICY)
    builder.add_record("q1", "ada", "multiquote", collected_at=collected.astimezone(written_in))
    local = collected.astimezone(POLICY.tz)
    open_now = local.weekday() < 5 and dt.time(9) <= local.time() < dt.time(17, 30)
    expected = "staff_contact" if open_now else "pass_to_providers"
    assert_outcome(builder.route("q1", at=collected), expected)

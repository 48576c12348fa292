"""Every table of shared/spec/reference-policy.md, row by row, against the shipped
flexioffices policy and the engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fairproc import Policy
from helpers import (
    DAY,
    LONDON,
    SECOND,
    WorldBuilder,
    failed_rules,
    governing_rule,
    london,
    utc,
)

T0 = london(2026, 3, 4, 10)  # a Wednesday in GMT: the default collection time
LATER = T0 + 2 * DAY  # the default question time

ENQUIRY = ("quick_quote", "multiquote", "live_chat")
ALL_SOURCES = (
    "website_visit",
    "contact_form",
    "handbook_download",
    "quick_quote",
    "multiquote",
    "live_chat",
    "search_follow_up",
    "phone_call",
    "office_calculator",
)

# --- Sources and the categories each collects ------------------------------------------------

CONTACT = {"name", "company_name", "phone", "email", "office_size", "office_location"}
SOURCE_CATEGORIES = {
    "website_visit": {"ip_address", "mac_address"},
    "contact_form": {"name", "company_name", "email", "phone", "enquiry_nature"},
    "handbook_download": {"name", "email", "phone"},
    "quick_quote": CONTACT,
    "multiquote": CONTACT,
    "live_chat": CONTACT,
    "search_follow_up": {
        "current_office_address",
        "company_name",
        "business_type",
        "move_reasons",
        "start_date",
        "budget",
        "key_drivers",
    },
    "phone_call": {"call_recording", "phone"},
    "office_calculator": set(),
}


@pytest.mark.parametrize(("source", "categories"), SOURCE_CATEGORIES.items())
def test_source_collects_its_categories(flexi: Policy, source: str, categories: set[str]) -> None:
    assert set(flexi.sources[source].categories) == categories


def test_the_sources_are_exactly_the_table(flexi: Policy) -> None:
    assert set(flexi.sources) == set(SOURCE_CATEGORIES) == set(ALL_SOURCES)


def test_other_people_is_a_category_about_others_no_source_collects(flexi: Policy) -> None:
    assert flexi.categories["other_people"].about_others
    assert all("other_people" not in s.categories for s in flexi.sources.values())


def test_every_rule_quotes_the_notice(flexi: Policy) -> None:
    assert flexi.path is not None
    notice = " ".join((Path(flexi.path) / "notice.txt").read_text(encoding="utf-8").split())
    for rule_id, rule in flexi.rule_index().items():
        # a short quote is enough to find the sentence behind the rule
        assert " ".join(rule.clause.split())[:40] in notice, rule_id


# --- Purposes and lawful bases ----------------------------------------------------------------

LI, CONTRACT, LEGAL = "legitimate_interests", "contract", "legal_obligation"
MARKETING_SOURCES = ("handbook_download", "quick_quote", "multiquote", "live_chat", "contact_form")
NEGOTIATION = ("quick_quote", "multiquote", "live_chat", "search_follow_up")

# purpose -> {source: basis}; the spec's table expanded
PURPOSE_TABLE: dict[str, dict[str, str]] = {
    "website_content": {"website_visit": LI},
    "analytics": {"website_visit": LI},
    "retargeting": {"website_visit": LI},
    "office_search": {
        "contact_form": LI,
        "handbook_download": LI,
        **dict.fromkeys(NEGOTIATION, CONTRACT),
    },
    "provider_introduction": dict.fromkeys(NEGOTIATION, CONTRACT),
    "marketing_updates": dict.fromkeys(MARKETING_SOURCES, LI),
    "third_party_marketing": dict.fromkeys(MARKETING_SOURCES, LI),
    "call_training_monitoring": {"phone_call": LI},
    "post_letting_follow_up": dict.fromkeys(ALL_SOURCES, CONTRACT),
    "legal_compliance": dict.fromkeys(ALL_SOURCES, LEGAL),
}


def test_the_purposes_are_exactly_the_table(flexi: Policy) -> None:
    assert set(flexi.purposes) == set(PURPOSE_TABLE)


def _happy_world(flexi: Policy, source: str) -> tuple[WorldBuilder, str]:
    """A record whose every condition holds: cookies accepted, an office let, recent."""
    world = WorldBuilder(flexi)
    rec = world.record(source, T0)
    world.event("cookies_accepted", T0 - SECOND)
    world.event("office_let", T0 + DAY)
    return world, rec.id


@pytest.mark.parametrize("source", ALL_SOURCES)
@pytest.mark.parametrize("purpose", PURPOSE_TABLE)
def test_purpose_is_allowed_exactly_for_the_tables_sources(
    flexi: Policy, purpose: str, source: str
) -> None:
    world, rec = _happy_world(flexi, source)
    decision = world.engine().may_process(rec, purpose, LATER)
    expected = PURPOSE_TABLE[purpose].get(source)
    if expected is None:
        assert decision.outcome == "denied"
        assert f"purpose.{purpose}" in failed_rules(decision)
        assert "purpose_not_declared" in decision.reasons
    else:
        assert decision.outcome == "allowed", decision.explain()
        assert decision.basis == expected
        assert f"purpose.{purpose}" in decision.rules


@pytest.mark.parametrize("source", ["quick_quote", "website_visit", "phone_call"])
def test_post_letting_follow_up_needs_an_office_let_event(world: WorldBuilder, source: str) -> None:
    rec = world.record(source, T0)
    let = world.event("office_let", T0 + 10 * DAY)
    engine = world.engine()
    before = engine.may_process(rec, "post_letting_follow_up", let.at - SECOND)
    assert before.outcome == "denied"
    assert failed_rules(before) == {"purpose.post_letting_follow_up"}
    assert before.reasons == ("condition_not_met",)
    after = engine.may_process(rec, "post_letting_follow_up", let.at)
    assert after.outcome == "allowed"
    assert after.basis == CONTRACT


def test_lawful_bases_are_the_six_of_article_6(flexi: Policy) -> None:
    from fairproc.model import BASES

    assert set(BASES) == {
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    }
    used = {g.basis for p in flexi.purposes.values() for g in p.bases}
    assert used <= set(BASES)


# --- may_process: conditions 1 to 6, each alone ------------------------------------------------


def test_condition_1_purpose_not_declared_for_the_source(world: WorldBuilder) -> None:
    rec = world.record("search_follow_up", T0)
    decision = world.engine().may_process(rec, "website_content", LATER)
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {"purpose.website_content"}
    assert decision.reasons == ("purpose_not_declared",)
    assert decision.basis is None


def test_condition_2_an_erased_record_is_not_processed(world: WorldBuilder) -> None:
    rec = world.record("contact_form", T0)
    world.event("erased", T0 + DAY, record=rec)
    engine = world.engine()
    assert engine.may_process(rec, "office_search", T0 + DAY - SECOND).outcome == "allowed"
    decision = engine.may_process(rec, "office_search", T0 + DAY)
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {"right.erasure"}
    assert decision.reasons == ("erased",)


def test_condition_2_erasure_of_one_record_leaves_the_others(world: WorldBuilder) -> None:
    erased = world.record("contact_form", T0)
    kept = world.record("quick_quote", T0)
    world.event("erased", T0 + DAY, record=erased)
    engine = world.engine()
    assert engine.may_process(kept, "office_search", LATER).outcome == "allowed"
    assert engine.may_process(erased, "office_search", LATER).outcome == "denied"


def test_condition_2_a_record_past_its_retention_date_is_not_processed(
    world: WorldBuilder,
) -> None:
    visit = world.record("website_visit", T0)
    engine = world.engine()
    due = london(2027, 3, 4, 10)  # collected_at + P12M
    assert engine.may_process(visit, "website_content", due - SECOND).outcome == "allowed"
    decision = engine.may_process(visit, "website_content", due)
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {"retention.cookies"}
    assert decision.reasons == ("retention_expired",)


@pytest.mark.parametrize(
    ("source", "purpose"),
    [
        ("contact_form", "office_search"),  # legitimate interests
        ("quick_quote", "office_search"),  # contract: a restriction binds every basis
        ("website_visit", "website_content"),
    ],
)
def test_condition_3_a_restriction_in_force_denies_until_lifted(
    world: WorldBuilder, source: str, purpose: str
) -> None:
    rec = world.record(source, T0)
    world.event("restricted", T0 + DAY)
    world.event("restriction_lifted", T0 + 3 * DAY)
    engine = world.engine()
    assert engine.may_process(rec, purpose, T0 + DAY - SECOND).outcome == "allowed"
    during = engine.may_process(rec, purpose, T0 + 2 * DAY)
    assert during.outcome == "denied"
    assert failed_rules(during) == {"processing.restriction"}
    assert during.reasons == ("restricted",)
    assert engine.may_process(rec, purpose, T0 + 3 * DAY).outcome == "allowed"


def test_condition_3_a_restriction_leaves_legal_compliance(world: WorldBuilder) -> None:
    """Art 18(2): legal claims go on while processing is restricted (the spec's Changes)."""
    rec = world.record("quick_quote", T0)
    world.event("restricted", T0 + DAY)
    decision = world.engine().may_process(rec, "legal_compliance", T0 + 2 * DAY)
    assert decision.outcome == "allowed"
    check = next(c for c in decision.checks if c.rule == "processing.restriction")
    assert check.passed is True


def test_condition_4_objection_to_the_purpose(world: WorldBuilder) -> None:
    rec = world.record("contact_form", T0)
    world.event("objected", T0 + DAY, purpose="office_search")
    engine = world.engine()
    assert engine.may_process(rec, "office_search", T0 + DAY - SECOND).outcome == "allowed"
    decision = engine.may_process(rec, "office_search", LATER)
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {"processing.objection"}
    assert decision.reasons == ("objected",)


def test_condition_4_an_objection_to_one_purpose_leaves_the_others(world: WorldBuilder) -> None:
    rec = world.record("contact_form", T0)
    world.event("objected", T0 + DAY, purpose="office_search")
    engine = world.engine()
    assert engine.may_process(rec, "third_party_marketing", LATER).outcome == "allowed"


@pytest.mark.parametrize(
    ("source", "purpose", "basis"),
    [
        ("website_visit", "website_content", LI),
        ("contact_form", "office_search", LI),
        ("handbook_download", "office_search", LI),
        ("phone_call", "call_training_monitoring", LI),
        ("quick_quote", "office_search", CONTRACT),
        ("quick_quote", "provider_introduction", CONTRACT),
        ("live_chat", "legal_compliance", LEGAL),
    ],
)
def test_condition_4_an_objection_naming_no_purpose_covers_every_li_purpose(
    world: WorldBuilder, source: str, purpose: str, basis: str
) -> None:
    rec = world.record(source, T0)
    world.event("objected", T0 + DAY)
    decision = world.engine().may_process(rec, purpose, LATER)
    if basis == LI:
        assert decision.outcome == "denied"
        assert "processing.objection" in failed_rules(decision)
    else:
        assert decision.outcome == "allowed"
        assert "processing.objection" not in decision.rules


def test_condition_4_the_li_window_is_four_years_from_the_last_interaction(
    world: WorldBuilder,
) -> None:
    rec = world.record("contact_form", T0)  # kept with no date while unresolved
    engine = world.engine()
    end = london(2030, 3, 4, 10)
    assert engine.may_process(rec, "office_search", end - DAY).outcome == "allowed"
    assert engine.may_process(rec, "office_search", end - SECOND).outcome == "allowed"
    for at in (end, end + DAY):
        decision = engine.may_process(rec, "office_search", at)
        assert decision.outcome == "denied"
        assert failed_rules(decision) == {"processing.li_window"}
        assert decision.reasons == ("li_window_expired",)


@pytest.mark.parametrize("kind", ["website_visit", "staff_contact", "email_open", "email_click"])
def test_condition_4_each_interaction_restarts_the_li_window(
    world: WorldBuilder, kind: str
) -> None:
    rec = world.record("contact_form", T0)
    world.event(kind, london(2029, 1, 10))
    engine = world.engine()
    assert engine.may_process(rec, "office_search", london(2033, 1, 9)).outcome == "allowed"
    assert engine.may_process(rec, "office_search", london(2033, 1, 10)).outcome == "denied"


def test_condition_4_a_later_collection_counts_as_an_interaction(world: WorldBuilder) -> None:
    old = world.record("contact_form", T0)
    world.record("quick_quote", london(2029, 1, 10))  # unresolved: kept, so it counts
    assert world.engine().may_process(old, "office_search", london(2031, 1, 1)).allowed


def test_condition_4_an_overdue_collection_is_no_interaction(world: WorldBuilder) -> None:
    """reference-policy.md, Events: only records not past their own due date count."""
    old = world.record("contact_form", T0)
    world.record("website_visit", london(2029, 1, 10))  # cookie data: due 2030-01-10
    engine = world.engine()
    assert engine.may_process(old, "office_search", london(2029, 12, 1)).allowed
    late = engine.may_process(old, "office_search", london(2031, 1, 1))
    assert late.outcome == "denied" and "li_window_expired" in late.reasons


def test_condition_4_interactions_after_the_question_do_not_count(world: WorldBuilder) -> None:
    rec = world.record("contact_form", T0)
    world.event("email_open", london(2031, 1, 1))
    decision = world.engine().may_process(rec, "office_search", london(2030, 6, 1))
    assert decision.reasons == ("li_window_expired",)


def test_condition_4_does_not_bind_contract_purposes(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", T0)
    decision = world.engine().may_process(rec, "office_search", london(2040, 1, 1))
    assert decision.outcome == "allowed"
    assert "processing.li_window" not in decision.rules


@pytest.mark.parametrize("purpose", ["marketing_updates", "third_party_marketing"])
def test_condition_5_the_suppression_list_stops_marketing(
    world: WorldBuilder, purpose: str
) -> None:
    rec = world.record("quick_quote", T0)
    world.event("unsubscribed", T0 + DAY)
    engine = world.engine()
    assert engine.may_process(rec, purpose, T0 + DAY - SECOND).outcome == "allowed"
    decision = engine.may_process(rec, purpose, LATER)
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {"processing.suppression"}
    assert decision.reasons == ("suppressed",)
    # suppression is about marketing only
    assert engine.may_process(rec, "office_search", LATER).outcome == "allowed"


def test_condition_5_a_suppression_entry_matches_the_normalised_email(
    world: WorldBuilder,
) -> None:
    rec = world.record("handbook_download", T0, email="  Ada@Example.COM ")
    world.suppress("ada@example.com", T0 + DAY)
    engine = world.engine()
    assert engine.may_process(rec, "marketing_updates", T0 + DAY - SECOND).outcome == "allowed"
    assert engine.may_process(rec, "marketing_updates", LATER).reasons == ("suppressed",)


def test_condition_5_another_addresss_suppression_does_not_count(world: WorldBuilder) -> None:
    rec = world.record("handbook_download", T0)
    world.suppress("someone.else@example.com", T0)
    assert world.engine().may_process(rec, "marketing_updates", LATER).outcome == "allowed"


@pytest.mark.parametrize("purpose", ["analytics", "retargeting"])
@pytest.mark.parametrize(
    ("cookie_events", "allowed"),
    [
        ((), False),
        ((("cookies_accepted", 0),), True),
        ((("cookies_rejected", 0),), False),
        ((("cookies_accepted", 0), ("cookies_rejected", 1)), False),
        ((("cookies_rejected", 0), ("cookies_accepted", 1)), True),
        # a choice made after the question's time does not count
        ((("cookies_accepted", 0), ("cookies_rejected", 5)), True),
        ((("cookies_accepted", 5),), False),
    ],
)
def test_condition_6_only_while_cookies_are_accepted(
    world: WorldBuilder,
    purpose: str,
    cookie_events: tuple[tuple[str, int], ...],
    allowed: bool,
) -> None:
    rec = world.record("website_visit", T0)
    for kind, days in cookie_events:
        world.event(kind, T0 + days * DAY)
    decision = world.engine().may_process(rec, purpose, T0 + 2 * DAY)
    assert decision.allowed is allowed
    if not allowed:
        assert failed_rules(decision) == {"processing.cookie_consent"}
        assert decision.reasons == ("cookies_not_accepted",)


def test_cookie_consent_does_not_bind_website_content(world: WorldBuilder) -> None:
    rec = world.record("website_visit", T0)
    world.event("cookies_rejected", T0)
    assert world.engine().may_process(rec, "website_content", LATER).outcome == "allowed"


# --- may_process: a denial names every failed rule ------------------------------------------


def test_a_denial_names_every_failed_rule_for_marketing(world: WorldBuilder) -> None:
    rec = world.record("handbook_download", T0)
    world.event("erased", T0 + DAY, record=rec)
    world.event("restricted", T0 + DAY)
    world.event("objected", T0 + DAY, purpose="marketing_updates")
    world.event("unsubscribed", T0 + DAY)
    decision = world.engine().may_process(rec, "marketing_updates", london(2031, 1, 1))
    assert decision.outcome == "denied"
    assert failed_rules(decision) == {
        "right.erasure",
        "retention.legitimate_interests",
        "processing.restriction",
        "processing.objection",
        "processing.li_window",
        "processing.suppression",
    }
    assert set(decision.reasons) == {
        "erased",
        "retention_expired",
        "restricted",
        "objected",
        "li_window_expired",
        "suppressed",
    }
    assert "purpose.marketing_updates" in decision.rules  # condition 1 held and is shown


def test_a_denial_names_every_failed_rule_for_analytics(world: WorldBuilder) -> None:
    rec = world.record("website_visit", T0)
    world.event("cookies_accepted", T0)
    world.event("cookies_rejected", T0 + DAY)
    world.event("restricted", T0 + DAY)
    world.event("objected", T0 + DAY)
    decision = world.engine().may_process(rec, "analytics", london(2030, 6, 1))
    assert failed_rules(decision) == {
        "retention.cookies",
        "processing.restriction",
        "processing.objection",
        "processing.li_window",
        "processing.cookie_consent",
    }


def test_an_undeclared_purpose_still_names_the_rules_that_bind_every_basis(
    world: WorldBuilder,
) -> None:
    rec = world.record("search_follow_up", T0, email="ada@example.com")
    world.event("restricted", T0 + DAY)
    world.event("unsubscribed", T0 + DAY)
    decision = world.engine().may_process(rec, "marketing_updates", LATER)
    assert failed_rules(decision) == {
        "purpose.marketing_updates",
        "processing.restriction",
        "processing.suppression",
    }
    assert set(decision.reasons) == {"purpose_not_declared", "restricted", "suppressed"}


# --- may_email ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", MARKETING_SOURCES)
def test_may_email_a_subject_with_an_address_marketing_may_use(
    world: WorldBuilder, source: str
) -> None:
    world.record(source, T0)
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "allowed"
    assert decision.reasons == ()


@pytest.mark.parametrize(
    ("event", "purpose", "reason"),
    [
        ("unsubscribed", None, "suppressed"),
        ("objected", "marketing_updates", "objected"),
        ("objected", None, "objected"),
        ("restricted", None, "restricted"),
    ],
)
def test_may_email_denied_with_reasons(
    world: WorldBuilder, event: str, purpose: str | None, reason: str
) -> None:
    world.record("handbook_download", T0)
    world.record("quick_quote", T0)
    world.event(event, T0 + DAY, purpose=purpose)
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "denied"
    assert reason in decision.reasons
    assert decision.failed


def test_may_email_an_objection_to_marketing_also_suppresses(world: WorldBuilder) -> None:
    world.record("quick_quote", T0)
    world.event("objected", T0 + DAY, purpose="marketing_updates")
    assert set(world.engine().may_email("ada", LATER).reasons) == {"objected", "suppressed"}


def test_may_email_an_objection_to_another_purpose_does_not_stop_email(
    world: WorldBuilder,
) -> None:
    world.record("contact_form", T0)
    world.event("objected", T0 + DAY, purpose="office_search")
    assert world.engine().may_email("ada", LATER).outcome == "allowed"


def test_may_email_li_window_expired(world: WorldBuilder) -> None:
    world.record("quick_quote", T0)
    engine = world.engine()
    assert engine.may_email("ada", london(2030, 3, 3)).outcome == "allowed"
    decision = engine.may_email("ada", london(2030, 3, 5))
    assert decision.outcome == "denied"
    assert decision.reasons == ("li_window_expired",)


@pytest.mark.parametrize("source", ["website_visit", "phone_call", "office_calculator"])
def test_may_email_no_email_address(world: WorldBuilder, source: str) -> None:
    world.record(source, T0)
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "denied"
    assert "no_email" in decision.reasons


def test_may_email_an_unknown_subject_has_no_email(world: WorldBuilder) -> None:
    decision = world.engine().may_email("nobody", LATER)
    assert decision.outcome == "denied"
    assert decision.reasons == ("no_email",)


def test_may_email_an_address_in_a_record_marketing_may_not_use(world: WorldBuilder) -> None:
    world.record("search_follow_up", T0, email="ada@example.com")
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "denied"
    assert "purpose_not_declared" in decision.reasons


def test_may_email_one_usable_record_is_enough(world: WorldBuilder) -> None:
    erased = world.record("handbook_download", T0)
    world.record("quick_quote", T0)
    world.event("erased", T0 + DAY, record=erased)
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "allowed"
    # the explanation still shows the record that could not be used, scoped to it
    assert any(c.scope == erased.id and c.passed is False for c in decision.checks)


def test_may_email_an_erased_subjects_address_is_suppressed(world: WorldBuilder) -> None:
    world.record("quick_quote", T0)
    world.event("erased", T0 + DAY)  # erasure of the subject: the email goes on the list
    decision = world.engine().may_email("ada", LATER)
    assert decision.outcome == "denied"
    assert "suppressed" in decision.reasons


# --- Routing an enquiry (office hours) ---------------------------------------------------------

# (instant, in office hours?) with the London offset written out where it matters
ROUTING_TIMES = [
    pytest.param(london(2026, 3, 2, 9, 0, 0), True, id="mon-09:00:00"),
    pytest.param(london(2026, 3, 2, 8, 59, 59), False, id="mon-08:59:59"),
    pytest.param(london(2026, 3, 2, 17, 29, 59), True, id="mon-17:29:59"),
    pytest.param(london(2026, 3, 2, 17, 30, 0), False, id="mon-17:30:00"),
    pytest.param(london(2026, 3, 6, 12), True, id="fri-noon"),
    pytest.param(london(2026, 3, 6, 23, 59), False, id="fri-night"),
    pytest.param(london(2026, 3, 2, 0, 0), False, id="mon-midnight"),
    pytest.param(london(2026, 3, 7, 12), False, id="saturday"),
    pytest.param(london(2026, 3, 8, 12), False, id="sunday"),
    # spring forward: Sunday 29 March 2026 01:00 UTC; clocks read BST from then on
    pytest.param(utc(2026, 3, 27, 8, 59, 59), False, id="fri-before-spring-08:59:59-gmt"),
    pytest.param(utc(2026, 3, 27, 9), True, id="fri-before-spring-09:00-gmt"),
    pytest.param(utc(2026, 3, 27, 17, 29, 59), True, id="fri-before-spring-17:29:59-gmt"),
    pytest.param(utc(2026, 3, 29, 10), False, id="spring-changeover-sunday"),
    pytest.param(utc(2026, 3, 30, 7, 59, 59), False, id="mon-after-spring-08:59:59-bst"),
    pytest.param(utc(2026, 3, 30, 8), True, id="mon-after-spring-utc-08:00-is-09:00-bst"),
    pytest.param(utc(2026, 3, 30, 16, 29, 59), True, id="mon-after-spring-17:29:59-bst"),
    pytest.param(utc(2026, 3, 30, 16, 30), False, id="mon-after-spring-utc-16:30-is-17:30-bst"),
    pytest.param(utc(2026, 3, 30, 17), False, id="mon-after-spring-utc-17:00-is-18:00-bst"),
    # fall back: Sunday 25 October 2026 01:00 UTC; clocks read GMT from then on
    pytest.param(utc(2026, 10, 23, 8), True, id="fri-before-autumn-utc-08:00-is-09:00-bst"),
    pytest.param(utc(2026, 10, 23, 7, 59, 59), False, id="fri-before-autumn-08:59:59-bst"),
    pytest.param(utc(2026, 10, 23, 16, 30), False, id="fri-before-autumn-17:30-bst"),
    pytest.param(utc(2026, 10, 25, 0, 30), False, id="autumn-changeover-01:30-bst"),
    pytest.param(utc(2026, 10, 25, 1, 30), False, id="autumn-changeover-01:30-gmt"),
    pytest.param(utc(2026, 10, 26, 8), False, id="mon-after-autumn-utc-08:00-is-08:00-gmt"),
    pytest.param(utc(2026, 10, 26, 9), True, id="mon-after-autumn-09:00-gmt"),
    pytest.param(utc(2026, 10, 26, 17, 29, 59), True, id="mon-after-autumn-17:29:59-gmt"),
    pytest.param(utc(2026, 10, 26, 17, 30), False, id="mon-after-autumn-17:30-gmt"),
    # another year's changeovers (30 March and 26 October 2025)
    pytest.param(utc(2025, 3, 31, 8), True, id="2025-mon-after-spring-09:00-bst"),
    pytest.param(utc(2025, 10, 24, 16, 29, 59), True, id="2025-fri-before-autumn-17:29:59-bst"),
    pytest.param(utc(2025, 10, 27, 8, 30), False, id="2025-mon-after-autumn-08:30-gmt"),
    # written with another offset: the instant, not the digits, decides
    pytest.param(
        dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        True,
        id="new-york-04:00-is-09:00-gmt",
    ),
]


def test_the_changeover_fixtures_are_what_they_claim() -> None:
    assert utc(2026, 3, 30, 8).astimezone(LONDON).hour == 9
    assert utc(2026, 3, 27, 9).astimezone(LONDON).hour == 9
    assert utc(2026, 10, 23, 8).astimezone(LONDON).hour == 9
    assert utc(2026, 10, 26, 9).astimezone(LONDON).hour == 9
    assert london(2026, 3, 29).weekday() == 6 and london(2026, 10, 25).weekday() == 6
    assert london(2026, 3, 29, 0).utcoffset() == dt.timedelta(0)
    assert london(2026, 3, 29, 3).utcoffset() == dt.timedelta(hours=1)
    assert london(2026, 10, 25, 3).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("source", ENQUIRY)
@pytest.mark.parametrize(("at", "in_hours"), ROUTING_TIMES)
def test_routing_an_enquiry_by_office_hours(
    world: WorldBuilder, source: str, at: dt.datetime, in_hours: bool
) -> None:
    rec = world.record(source, at)
    decision = world.engine().route(rec, at)
    assert decision.outcome == ("staff_contact" if in_hours else "pass_to_providers")
    assert decision.rules == ("routing.contact_failed", "routing.enquiry", "office_hours")
    assert decision.due is None


def test_routing_is_decided_by_when_the_enquiry_arrived(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", london(2026, 3, 2, 10))
    engine = world.engine()
    assert engine.route(rec, london(2026, 3, 7, 23)).outcome == "staff_contact"


@pytest.mark.parametrize(
    ("collected", "due"),
    [
        pytest.param(london(2026, 3, 2, 10), london(2026, 3, 4, 10), id="gmt"),
        pytest.param(london(2026, 3, 7, 22), london(2026, 3, 9, 22), id="saturday-night"),
        # 48 real hours across spring forward: the wall clock reads one hour later
        pytest.param(london(2026, 3, 28, 10), london(2026, 3, 30, 11), id="across-spring"),
        # ... and across fall back one hour earlier
        pytest.param(london(2026, 10, 24, 10), london(2026, 10, 26, 9), id="across-autumn"),
        pytest.param(utc(2026, 3, 28, 23, 30), utc(2026, 3, 30, 23, 30), id="written-in-utc"),
    ],
)
@pytest.mark.parametrize("asked", [0, 1, 3])
def test_routing_a_handbook_download_phone_follow_up_due_in_48_hours(
    world: WorldBuilder, collected: dt.datetime, due: dt.datetime, asked: int
) -> None:
    rec = world.record("handbook_download", collected)
    decision = world.engine().route(rec, collected + asked * DAY)
    assert decision.outcome == "phone_follow_up"
    assert decision.due == due
    # 48 elapsed hours (aware arithmetic in one zone is wall-clock arithmetic: go through UTC)
    assert decision.due is not None
    assert decision.due.astimezone(dt.UTC) - collected.astimezone(dt.UTC) == dt.timedelta(hours=48)
    assert decision.rules == ("routing.handbook",)


@pytest.mark.parametrize(
    "source",
    ["website_visit", "contact_form", "search_follow_up", "phone_call", "office_calculator"],
)
@pytest.mark.parametrize("at", [london(2026, 3, 2, 10), london(2026, 3, 7, 22)])
def test_routing_anything_else_is_not_applicable(
    world: WorldBuilder, source: str, at: dt.datetime
) -> None:
    rec = world.record(source, at)
    decision = world.engine().route(rec, at)
    assert decision.outcome == "not_applicable"
    assert decision.due is None


def test_office_hours_name_no_bank_holidays(flexi: Policy) -> None:
    hours = flexi.info.office_hours
    assert hours is not None
    assert hours.closed_dates == frozenset()
    assert hours.days == frozenset(range(5))
    assert (hours.opens, hours.closes) == (dt.time(9), dt.time(17, 30))
    # Christmas Day 2026 is a Friday: open, as the notice names no closures
    assert hours.contains(london(2026, 12, 25, 10), LONDON)


# --- Sharing -----------------------------------------------------------------------------------

OFFICE_PROVIDER_SOURCES = ("quick_quote", "multiquote", "live_chat", "search_follow_up")
RECIPIENT_CATEGORIES: dict[str, set[str] | None] = {
    "office_provider": CONTACT | SOURCE_CATEGORIES["search_follow_up"] | {"enquiry_nature"},
    "telephone_provider": {"phone"},
    "broadband_supplier": {"email"},
    "cloud_it_provider": None,
    "bookkeeper": {"name", "company_name", "email", "phone"},
    "accountant": {"name", "company_name", "email", "phone"},
    "marketing_consultancy": {"name", "email"},
    "email_service": {"name", "email"},
    "third_party_marketer": {"name", "email", "phone"},
    "court": None,
}


def test_the_recipients_are_exactly_the_table(flexi: Policy) -> None:
    assert set(flexi.recipients) == set(RECIPIENT_CATEGORIES)
    for rid, categories in RECIPIENT_CATEGORIES.items():
        declared = flexi.recipients[rid].categories
        assert (None if declared is None else set(declared)) == categories, rid


def _visible(recipient: str, source: str) -> set[str]:
    wanted = RECIPIENT_CATEGORIES[recipient]
    have = SOURCE_CATEGORIES[source]
    return have if wanted is None else have & wanted


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_office_provider_gets_enquiries_and_search_details(
    world: WorldBuilder, source: str
) -> None:
    rec = world.record(source, T0)
    decision = world.engine().may_share(rec, "office_provider", LATER)
    if source in OFFICE_PROVIDER_SOURCES:
        assert decision.outcome == "allowed"
        assert set(decision.categories or ()) == _visible("office_provider", source)
    else:
        assert decision.outcome == "denied"
        assert decision.categories is None
        assert failed_rules(decision) == {"recipient.office_provider"}


@pytest.mark.parametrize(
    ("recipient", "source", "expected"),
    [
        ("telephone_provider", "quick_quote", {"phone"}),
        ("telephone_provider", "phone_call", {"phone"}),
        ("telephone_provider", "website_visit", None),
        ("telephone_provider", "search_follow_up", None),
        ("broadband_supplier", "contact_form", {"email"}),
        ("broadband_supplier", "handbook_download", {"email"}),
        ("broadband_supplier", "phone_call", None),
    ],
)
def test_providers_see_only_their_category(
    world: WorldBuilder, recipient: str, source: str, expected: set[str] | None
) -> None:
    rec = world.record(source, T0)
    decision = world.engine().may_share(rec, recipient, LATER)
    if expected is None:
        assert decision.outcome == "denied"
        assert decision.reasons == ("no_shared_categories",)
    else:
        assert decision.outcome == "allowed"
        assert set(decision.categories or ()) == expected


def test_categories_are_those_the_record_actually_holds(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", T0, phone=None)
    decision = world.engine().may_share(rec, "telephone_provider", LATER)
    assert decision.outcome == "denied"
    decision = world.engine().may_share(rec, "office_provider", LATER)
    assert "phone" not in (decision.categories or ())


@pytest.mark.parametrize(
    "source", ["quick_quote", "website_visit", "phone_call", "search_follow_up"]
)
def test_cloud_it_provider_sees_every_category_under_a_transfer(
    world: WorldBuilder, source: str
) -> None:
    rec = world.record(source, T0)
    decision = world.engine().may_share(rec, "cloud_it_provider", LATER)
    assert decision.outcome == "allowed"
    assert set(decision.categories or ()) == SOURCE_CATEGORIES[source]
    assert [f.code for f in decision.findings] == ["privacy_shield_invalid"]
    assert {"safeguard.privacy_shield", "safeguard.appropriate_agreements"} <= set(decision.rules)


@pytest.mark.parametrize("recipient", ["bookkeeper", "accountant"])
@pytest.mark.parametrize("source", ["quick_quote", "handbook_download", "contact_form"])
def test_bookkeeper_and_accountant_need_an_office_let(
    world: WorldBuilder, recipient: str, source: str
) -> None:
    rec = world.record(source, T0)
    let = world.event("office_let", T0 + DAY)
    engine = world.engine()
    before = engine.may_share(rec, recipient, let.at - SECOND)
    assert before.outcome == "denied"
    assert before.reasons == ("condition_not_met",)
    after = engine.may_share(rec, recipient, let.at)
    assert after.outcome == "allowed"
    assert set(after.categories or ()) == _visible(recipient, source)


@pytest.mark.parametrize("recipient", ["marketing_consultancy", "email_service"])
@pytest.mark.parametrize(
    ("source", "event", "purpose", "allowed", "reason"),
    [
        ("handbook_download", None, None, True, None),
        ("quick_quote", None, None, True, None),
        ("contact_form", None, None, True, None),
        ("quick_quote", "unsubscribed", None, False, "suppressed"),
        ("quick_quote", "objected", "marketing_updates", False, "objected"),
        ("contact_form", "objected", "office_search", True, None),
        ("quick_quote", "restricted", None, False, "restricted"),
        ("search_follow_up", None, None, False, "purpose_not_declared"),
        ("website_visit", None, None, False, "no_shared_categories"),
    ],
)
def test_marketing_recipients_depend_on_marketing_updates(
    world: WorldBuilder,
    recipient: str,
    source: str,
    event: str | None,
    purpose: str | None,
    allowed: bool,
    reason: str | None,
) -> None:
    # a search_follow_up record given a name and email: the purpose, not the data, is missing
    extra = {"email": "ada@example.com", "name": "Ada"} if source == "search_follow_up" else {}
    rec = world.record(source, T0, **extra)
    if event:
        world.event(event, T0 + DAY, purpose=purpose)
    engine = world.engine()
    decision = engine.may_share(rec, recipient, LATER)
    assert decision.allowed is allowed, decision.explain()
    assert engine.may_process(rec, "marketing_updates", LATER).allowed is allowed
    assert "purpose.marketing_updates" in decision.rules
    if allowed:
        assert set(decision.categories or ()) == {"name", "email"}
    else:
        assert reason in decision.reasons


def test_email_service_is_a_transfer_and_the_consultancy_is_not(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", T0)
    engine = world.engine()
    service = engine.may_share(rec, "email_service", LATER)
    assert "safeguard.appropriate_agreements" in service.rules
    assert [f.code for f in service.findings] == ["privacy_shield_invalid"]
    consultancy = engine.may_share(rec, "marketing_consultancy", LATER)
    assert not any(r.startswith("safeguard.") for r in consultancy.rules)
    assert consultancy.findings == ()


@pytest.mark.parametrize(
    ("event", "purpose", "allowed"),
    [
        (None, None, True),
        ("objected", "third_party_marketing", False),
        ("objected", "office_search", True),
        ("unsubscribed", None, False),
    ],
)
def test_third_party_marketer_depends_on_third_party_marketing(
    world: WorldBuilder, event: str | None, purpose: str | None, allowed: bool
) -> None:
    rec = world.record("handbook_download", T0)
    if event:
        world.event(event, T0 + DAY, purpose=purpose)
    engine = world.engine()
    decision = engine.may_share(rec, "third_party_marketer", LATER)
    assert decision.allowed is allowed
    assert "purpose.third_party_marketing" in decision.rules
    assert "purpose.marketing_updates" not in decision.rules
    assert decision.allowed == engine.may_process(rec, "third_party_marketing", LATER).allowed
    if allowed:
        assert set(decision.categories or ()) == {"name", "email", "phone"}


@pytest.mark.parametrize("source", ALL_SOURCES[:-1])  # every source that collects something
def test_court_only_with_a_court_order(world: WorldBuilder, source: str) -> None:
    rec = world.record(source, T0)
    engine = world.engine()
    without = engine.may_share(rec, "court", LATER)
    assert without.outcome == "denied"
    assert without.reasons == ("condition_not_met",)
    ordered = engine.may_share(rec, "court", LATER, court_order=True)
    assert ordered.outcome == "allowed"
    assert set(ordered.categories or ()) == SOURCE_CATEGORIES[source]
    assert ordered.asked["court_order"] is True


# --- Transfers ---------------------------------------------------------------------------------

SUCCESSORS = (
    "EU-US Data Privacy Framework",
    "2023-07-10",
    "UK Extension to the EU-US Data Privacy Framework",
    "2023-10-12",
)


@pytest.mark.parametrize("recipient", ["cloud_it_provider", "email_service"])
@pytest.mark.parametrize(
    ("at", "shield_valid"),
    [
        pytest.param(london(2018, 5, 25), True, id="gdpr-day"),
        pytest.param(london(2020, 7, 15, 23, 59), True, id="2020-07-15-23:59-london"),
        pytest.param(london(2020, 7, 15, 23, 59, 59), True, id="2020-07-15-23:59:59-london"),
        pytest.param(london(2020, 7, 16, 0, 0), False, id="2020-07-16-00:00-london"),
        # 23:30 UTC on the 15th is already 00:30 on the 16th in London (BST)
        pytest.param(utc(2020, 7, 15, 23, 30), False, id="2020-07-15-23:30-utc"),
        pytest.param(utc(2020, 7, 15, 22, 59, 59), True, id="2020-07-15-22:59:59-utc"),
        pytest.param(london(2023, 7, 10), False, id="dpf-day"),
        pytest.param(london(2026, 3, 4), False, id="today"),
    ],
)
def test_transfer_privacy_shield_boundary(
    world: WorldBuilder, recipient: str, at: dt.datetime, shield_valid: bool
) -> None:
    decision = world.engine().transfer(recipient, at)
    assert decision.outcome == "allowed"  # appropriate agreements stay valid
    checks = {c.rule: c for c in decision.checks}
    # an invalid shield beside valid agreements informs the allowed transfer, and is found
    assert checks["safeguard.privacy_shield"].passed is (True if shield_valid else None)
    assert checks["safeguard.appropriate_agreements"].passed is True
    assert decision.failed == ()
    if shield_valid:
        assert decision.findings == ()
    else:
        (finding,) = decision.findings
        assert finding.code == "privacy_shield_invalid"
        assert finding.rule == "safeguard.privacy_shield"
        for words in SUCCESSORS:
            assert words in finding.message
        assert "C-311/18" in finding.message


@pytest.mark.parametrize(
    "recipient",
    [r for r in RECIPIENT_CATEGORIES if r not in ("cloud_it_provider", "email_service")],
)
def test_recipients_in_the_uk_need_no_transfer_safeguard(
    world: WorldBuilder, recipient: str
) -> None:
    decision = world.engine().transfer(recipient, london(2026, 3, 4))
    assert decision.outcome == "allowed"
    assert decision.findings == ()
    assert decision.rules == (f"recipient.{recipient}",)


def test_the_safeguards_the_notice_names(flexi: Policy) -> None:
    shield = flexi.safeguards["privacy_shield"]
    assert shield.valid_until == dt.date(2020, 7, 16)
    assert [(s.name, s.valid_from) for s in shield.successors] == [
        ("EU-US Data Privacy Framework", dt.date(2023, 7, 10)),
        ("UK Extension to the EU-US Data Privacy Framework", dt.date(2023, 10, 12)),
    ]
    for rid in ("cloud_it_provider", "email_service"):
        r = flexi.recipients[rid]
        assert r.location == "USA"
        assert r.safeguards == ("privacy_shield", "appropriate_agreements")


# --- Retention ---------------------------------------------------------------------------------


def _retention_around(world: WorldBuilder, rec_id: str, until: dt.datetime, rule: str) -> None:
    """keep until ``until`` the day before, delete (due ``until``) on it and the day after."""
    engine = world.engine()
    before = engine.retention(rec_id, until - DAY)
    assert before.outcome == "keep", before.explain()
    assert before.until == until
    assert governing_rule(before) == rule
    just_before = engine.retention(rec_id, until - SECOND)
    assert just_before.outcome == "keep"
    for at in (until, until + DAY):
        after = engine.retention(rec_id, at)
        assert after.outcome == "delete", after.explain()
        assert after.due == until
        assert after.until == until
        assert governing_rule(after) == rule


@pytest.mark.parametrize(
    ("collected", "until"),
    [
        (london(2025, 6, 10, 12), london(2026, 6, 10, 12)),
        (london(2024, 2, 29, 12), london(2025, 2, 28, 12)),  # 29 February + P12M
        (london(2025, 3, 29, 12), london(2026, 3, 29, 12)),  # GMT -> BST, same wall clock
        (london(2025, 1, 31, 23, 30), london(2026, 1, 31, 23, 30)),
    ],
)
def test_retention_cookies_twelve_months(
    world: WorldBuilder, collected: dt.datetime, until: dt.datetime
) -> None:
    rec = world.record("website_visit", collected)
    _retention_around(world, rec.id, until, "retention.cookies")
    assert world.engine().retention(rec, collected).rules == ("retention.cookies",)


@pytest.mark.parametrize("source", [*ENQUIRY, "contact_form", "search_follow_up"])
def test_retention_enquiry_unresolved_is_kept_with_no_date(
    world: WorldBuilder, source: str
) -> None:
    rec = world.record(source, T0)
    decision = world.engine().retention(rec, london(2060, 1, 1))
    assert decision.outcome == "keep"
    assert decision.until is None and decision.due is None
    assert decision.rules == ("retention.enquiry",)


@pytest.mark.parametrize("source", [*ENQUIRY, "contact_form", "search_follow_up"])
def test_retention_enquiry_ten_years_after_resolution(world: WorldBuilder, source: str) -> None:
    rec = world.record(source, T0)
    world.event("enquiry_resolved", london(2026, 5, 1, 15), record=rec)
    _retention_around(world, rec.id, london(2036, 5, 1, 15), "retention.enquiry")


def test_retention_enquiry_resolution_of_another_record_does_not_count(
    world: WorldBuilder,
) -> None:
    rec = world.record("quick_quote", T0)
    other = world.record("contact_form", T0)
    world.event("enquiry_resolved", london(2026, 5, 1), record=other)
    assert world.engine().retention(rec, london(2040, 1, 1)).until is None


def test_retention_enquiry_resolved_on_29_february(world: WorldBuilder) -> None:
    rec = world.record("contact_form", london(2028, 1, 5))
    world.event("enquiry_resolved", london(2028, 2, 29, 9), record=rec)
    _retention_around(world, rec.id, london(2038, 2, 28, 9), "retention.enquiry")


def test_retention_enquiry_before_its_resolution_is_kept_with_no_date(
    world: WorldBuilder,
) -> None:
    rec = world.record("quick_quote", T0)
    world.event("enquiry_resolved", london(2027, 1, 1), record=rec)
    assert world.engine().retention(rec, london(2026, 12, 31)).until is None


def test_retention_handbook_four_years_from_the_last_interaction(world: WorldBuilder) -> None:
    rec = world.record("handbook_download", london(2026, 3, 4, 10))
    _retention_around(world, rec.id, london(2030, 3, 4, 10), "retention.legitimate_interests")


def test_retention_handbook_a_later_interaction_moves_the_date(world: WorldBuilder) -> None:
    rec = world.record("handbook_download", london(2026, 3, 4, 10))
    world.event("email_click", london(2028, 2, 29, 8))
    engine = world.engine()
    assert engine.retention(rec, london(2028, 1, 1)).until == london(2030, 3, 4, 10)
    _retention_around(world, rec.id, london(2032, 2, 29, 8), "retention.legitimate_interests")


@pytest.mark.parametrize(
    ("collected", "until"),
    [
        (london(2028, 2, 29, 9), london(2032, 2, 29, 9)),  # 2032 has a 29 February
        (london(2096, 2, 29, 9), london(2100, 2, 28, 9)),  # 2100 has none: 28 February
    ],
)
def test_retention_handbook_from_29_february(
    world: WorldBuilder, collected: dt.datetime, until: dt.datetime
) -> None:
    rec = world.record("handbook_download", collected)
    _retention_around(world, rec.id, until, "retention.legitimate_interests")


def test_period_arithmetic_is_calendar_arithmetic(flexi: Policy) -> None:
    from fairproc import Period

    tz = flexi.tz
    assert Period.parse("P1Y").add_to(london(2024, 2, 29, 12), tz) == london(2025, 2, 28, 12)
    assert Period.parse("P1M").add_to(london(2026, 1, 31, 12), tz) == london(2026, 2, 28, 12)
    assert Period.parse("P1M").add_to(london(2028, 1, 31, 12), tz) == london(2028, 2, 29, 12)
    assert Period.parse("P12M").add_to(london(2024, 2, 29, 12), tz) == london(2025, 2, 28, 12)
    assert Period.parse("P10Y").add_to(london(2024, 2, 29, 12), tz) == london(2034, 2, 28, 12)
    # PT48H is elapsed time: 47 or 49 wall-clock hours across a change
    start = london(2026, 3, 28, 12)
    elapsed = Period.parse("PT48H").add_to(start, tz).astimezone(dt.UTC) - start.astimezone(dt.UTC)
    assert elapsed == dt.timedelta(hours=48)
    assert Period.parse("PT48H").add_to(start, tz) == london(2026, 3, 30, 13)
    # a calendar day across the change keeps the wall clock: 23 real hours
    assert Period.parse("P1D").add_to(start, tz) == london(2026, 3, 29, 12)


def test_period_arithmetic_tells_the_two_readings_of_the_hour_the_clocks_go_back_apart(
    flexi: Policy,
) -> None:
    from fairproc import Period

    tz = flexi.tz
    first = dt.datetime(2026, 10, 25, 1, 30, tzinfo=tz)  # 00:30 UTC
    second = first.replace(fold=1)  # 01:30 UTC: equal to ``first`` by ==, and in hash
    hour = Period.parse("PT1H")
    for instant in (first, second, first, second):  # each asked twice: a cached answer too
        moved = hour.add_to(instant, tz)
        assert moved.timestamp() - instant.timestamp() == 3600


def test_retention_phone_call_falls_to_review(world: WorldBuilder) -> None:
    rec = world.record("phone_call", T0)
    for at in (T0, london(2040, 1, 1)):
        decision = world.engine().retention(rec, at)
        assert decision.outcome == "review"
        assert decision.until is None and decision.due is None
        assert decision.rules == ("retention.undeclared",)
        assert decision.checks[0].passed is None


def test_retention_office_calculator_has_no_rule(world: WorldBuilder) -> None:
    rec = world.record("office_calculator", T0, data={})
    decision = world.engine().retention(rec, LATER)
    assert decision.outcome == "review"
    assert decision.reasons == ("no_retention_rule",)
    assert decision.rules == ()


LET = london(2027, 6, 15, 14)
LET_UNTIL = london(2037, 6, 15, 14)


@pytest.mark.parametrize("source", ["website_visit", "handbook_download", "office_calculator"])
def test_retention_letting_keeps_every_record_ten_years_from_the_letting(
    world: WorldBuilder, source: str
) -> None:
    rec = world.record(source, T0)
    world.event("office_let", LET)
    _retention_around(world, rec.id, LET_UNTIL, "retention.letting")
    decision = world.engine().retention(rec, LET + DAY)
    assert "retention.letting" in decision.rules
    own = {
        "website_visit": "retention.cookies",
        "handbook_download": "retention.legitimate_interests",
        "office_calculator": None,
    }[source]
    assert decision.rules == ((own,) if own else ()) + ("retention.letting",)


def test_retention_letting_does_not_apply_before_the_letting(world: WorldBuilder) -> None:
    rec = world.record("website_visit", T0)
    world.event("office_let", LET)
    decision = world.engine().retention(rec, LET - SECOND)
    assert decision.rules == ("retention.cookies",)
    assert decision.outcome == "delete"  # its own 12 months ran out before the letting


def test_retention_the_latest_letting_counts(world: WorldBuilder) -> None:
    rec = world.record("handbook_download", T0)
    world.event("office_let", LET)
    world.event("office_let", london(2030, 1, 2, 9))
    decision = world.engine().retention(rec, london(2031, 1, 1))
    assert decision.until == london(2040, 1, 2, 9)


def test_retention_letting_keeps_longest_over_an_earlier_enquiry_date(
    world: WorldBuilder,
) -> None:
    rec = world.record("quick_quote", T0)
    world.event("enquiry_resolved", london(2026, 5, 1), record=rec)  # until 2036-05-01
    world.event("office_let", LET)
    decision = world.engine().retention(rec, london(2036, 12, 1))
    assert decision.outcome == "keep"
    assert decision.until == LET_UNTIL
    assert governing_rule(decision) == "retention.letting"
    assert set(decision.rules) == {"retention.enquiry", "retention.letting"}
    # the enquiry's own date has passed: that rule alone would delete
    enquiry = next(c for c in decision.checks if c.rule == "retention.enquiry")
    assert enquiry.passed is False


def test_retention_its_own_later_date_beats_the_letting(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", T0)
    world.event("office_let", LET)
    world.event("enquiry_resolved", london(2029, 1, 1), record=rec)
    decision = world.engine().retention(rec, london(2030, 1, 1))
    assert decision.until == london(2039, 1, 1)
    assert governing_rule(decision) == "retention.enquiry"
    assert set(decision.rules) == {"retention.enquiry", "retention.letting"}


def test_retention_an_unresolved_enquiry_of_a_letting_subject_is_kept_with_no_date(
    world: WorldBuilder,
) -> None:
    rec = world.record("live_chat", T0)
    world.event("office_let", LET)
    decision = world.engine().retention(rec, london(2050, 1, 1))
    assert decision.outcome == "keep"
    assert decision.until is None
    assert governing_rule(decision) == "retention.enquiry"
    assert set(decision.rules) == {"retention.enquiry", "retention.letting"}


def test_retention_a_letting_record_of_a_phone_call_is_kept_not_reviewed(
    world: WorldBuilder,
) -> None:
    rec = world.record("phone_call", T0)
    world.event("office_let", LET)
    decision = world.engine().retention(rec, LET + DAY)
    assert decision.outcome == "keep"
    assert governing_rule(decision) == "retention.letting"
    after = world.engine().retention(rec, LET_UNTIL + DAY)
    # the letting's ten years are over and no period of its own: back to review
    assert after.outcome == "review"


def test_retention_suppression_entries_are_kept_for_good(flexi: Policy) -> None:
    (rule,) = [r for r in flexi.retention if r.id == "retention.suppression"]
    assert rule.forever and rule.applies_to == "suppression"
    assert rule.keep is None
    record_rules = {r.id for r in flexi.retention if r.applies_to == "records"}
    assert record_rules == {
        "retention.cookies",
        "retention.enquiry",
        "retention.legitimate_interests",
        "retention.undeclared",
        "retention.letting",
    }


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_retention_suppression_rule_never_judges_a_record(world: WorldBuilder, source: str) -> None:
    rec = world.record(source, T0)
    world.event("office_let", LET)
    world.event("unsubscribed", T0)
    assert "retention.suppression" not in world.engine().retention(rec, LET + DAY).rules

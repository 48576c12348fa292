"""A second policy, for a made-up bike shop in Dublin (tests/policies/acme), written only as
rule files: it loads and is evaluated by the same engine, with no code of its own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fairproc import Policy, lint
from helpers import ACME, DAY, SECOND, WorldBuilder, failed_rules, governing_rule, utc

DUBLIN = ZoneInfo("Europe/Dublin")


def dublin(
    year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=DUBLIN)


T0 = dublin(2026, 3, 3, 10)  # a Tuesday
LATER = T0 + 2 * DAY


@pytest.fixture
def shop(acme: Policy) -> WorldBuilder:
    return WorldBuilder(acme, subject="cara")


def test_it_loads_as_a_policy_of_its_own(acme: Policy) -> None:
    assert acme.id == "acme"
    assert acme.info.timezone == "Europe/Dublin"
    assert set(acme.sources) == {
        "workshop_booking",
        "shop_purchase",
        "ride_app",
        "newsletter_signup",
    }
    assert acme.purposes["newsletter"].bases[0].basis == "consent"
    assert acme.info.office_hours is not None
    assert acme.info.office_hours.closed_dates == {dt.date(2026, 12, 25), dt.date(2026, 12, 26)}
    assert Path(acme.path or "").resolve() == ACME.resolve()


def test_every_rule_quotes_its_notice(acme: Policy) -> None:
    notice = (ACME / "notice.txt").read_text(encoding="utf-8")
    for rule_id, rule in acme.rule_index().items():
        assert rule.clause in notice, rule_id


# --- purposes and bases ------------------------------------------------------------------------


DECLARED = {
    ("workshop_booking", "repairs"),
    ("shop_purchase", "sales"),
    ("shop_purchase", "bookkeeping"),
    ("ride_app", "ride_stats"),
    ("newsletter_signup", "newsletter"),
}


@pytest.mark.parametrize(
    ("source", "purpose", "basis"),
    [
        ("workshop_booking", "repairs", "contract"),
        ("shop_purchase", "sales", "contract"),
        ("shop_purchase", "bookkeeping", "legal_obligation"),
        ("ride_app", "ride_stats", "legitimate_interests"),
    ],
)
def test_declared_purposes_are_allowed_on_their_basis(
    shop: WorldBuilder, source: str, purpose: str, basis: str
) -> None:
    rec = shop.record(source, T0)
    engine = shop.engine()
    decision = engine.may_process(rec, purpose, LATER)
    assert decision.outcome == "allowed"
    assert decision.basis == basis
    for other in shop.policy.purposes:
        if (source, other) not in DECLARED:
            assert engine.may_process(rec, other, LATER).reasons == ("purpose_not_declared",)


@pytest.mark.parametrize(
    ("consent_events", "allowed"),
    [
        ((), False),
        (("consent_given",), True),
        (("consent_given", "consent_withdrawn"), False),
        (("consent_given", "consent_withdrawn", "consent_given"), True),
        (("consent_withdrawn",), False),
    ],
)
def test_the_newsletter_runs_on_consent(
    shop: WorldBuilder, consent_events: tuple[str, ...], allowed: bool
) -> None:
    rec = shop.record("newsletter_signup", T0)
    for i, kind in enumerate(consent_events):
        shop.event(kind, T0 + i * SECOND)
    decision = shop.engine().may_process(rec, "newsletter", LATER)
    assert decision.allowed is allowed
    assert decision.basis == "consent"
    if not allowed:
        assert failed_rules(decision) == {"processing.consent"}
        assert decision.reasons == ("no_consent",)
    # consent is not legitimate interests: no objection or window rule takes part
    assert "processing.objection" not in decision.rules


def test_the_newsletter_stops_on_unsubscribing_even_with_consent(shop: WorldBuilder) -> None:
    rec = shop.record("newsletter_signup", T0)
    shop.event("consent_given", T0)
    shop.event("unsubscribed", T0 + DAY)
    decision = shop.engine().may_process(rec, "newsletter", LATER)
    assert decision.reasons == ("suppressed",)


def test_objecting_to_the_newsletter_suppresses_it(shop: WorldBuilder) -> None:
    rec = shop.record("newsletter_signup", T0)
    shop.event("consent_given", T0)
    shop.event("objected", T0 + DAY, purpose="newsletter")
    decision = shop.engine().may_process(rec, "newsletter", LATER)
    assert decision.reasons == ("suppressed",)


def test_ride_stats_two_years_from_the_last_ride(shop: WorldBuilder) -> None:
    rec = shop.record("ride_app", T0)
    shop.event("app_ride", dublin(2027, 5, 1, 7))
    engine = shop.engine()
    assert engine.may_process(rec, "ride_stats", dublin(2029, 5, 1, 7) - SECOND).allowed
    decision = engine.may_process(rec, "ride_stats", dublin(2029, 5, 1, 7))
    assert failed_rules(decision) >= {"processing.app_window"}
    assert "li_window_expired" in decision.reasons


def test_ride_stats_objection_and_restriction(shop: WorldBuilder) -> None:
    rec = shop.record("ride_app", T0)
    shop.event("objected", T0 + DAY)
    shop.event("restricted", T0 + DAY)
    decision = shop.engine().may_process(rec, "ride_stats", LATER)
    assert failed_rules(decision) == {"processing.objection", "processing.restriction"}
    assert shop.engine().may_process(rec, "ride_stats", T0).allowed


@pytest.mark.parametrize(
    ("sources", "events", "outcome", "reason"),
    [
        (("newsletter_signup",), ("consent_given",), "allowed", None),
        (("newsletter_signup",), (), "denied", "no_consent"),
        (("newsletter_signup",), ("consent_given", "unsubscribed"), "denied", "suppressed"),
        (("shop_purchase",), ("consent_given",), "denied", "purpose_not_declared"),
        (("shop_purchase", "newsletter_signup"), ("consent_given",), "allowed", None),
        (("workshop_booking",), (), "denied", "purpose_not_declared"),
    ],
)
def test_may_email_follows_the_policys_marketing_purpose(
    shop: WorldBuilder,
    sources: tuple[str, ...],
    events: tuple[str, ...],
    outcome: str,
    reason: str | None,
) -> None:
    for source in sources:
        shop.record(source, T0)
    for i, kind in enumerate(events):
        shop.event(kind, T0 + i * DAY)
    decision = shop.engine().may_email("cara", T0 + 5 * DAY)
    assert decision.outcome == outcome
    if reason:
        assert reason in decision.reasons


# --- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "in_hours"),
    [
        pytest.param(dublin(2026, 3, 3, 8, 30), True, id="tue-08:30"),
        pytest.param(dublin(2026, 3, 3, 8, 29, 59), False, id="tue-08:29:59"),
        pytest.param(dublin(2026, 3, 3, 17, 59, 59), True, id="tue-17:59:59"),
        pytest.param(dublin(2026, 3, 3, 18, 0), False, id="tue-18:00"),
        pytest.param(dublin(2026, 3, 7, 12), True, id="saturday"),
        pytest.param(dublin(2026, 3, 8, 12), False, id="sunday"),
        pytest.param(dublin(2026, 3, 2, 12), False, id="monday"),
        pytest.param(dublin(2026, 12, 25, 12), False, id="christmas-friday"),
        pytest.param(dublin(2026, 12, 26, 12), False, id="st-stephens-saturday"),
        pytest.param(dublin(2026, 12, 29, 12), True, id="tuesday-after-christmas"),
        pytest.param(utc(2026, 3, 31, 7, 30), True, id="utc-07:30-is-08:30-ist"),
        pytest.param(utc(2026, 3, 31, 17), False, id="utc-17:00-is-18:00-ist"),
        pytest.param(utc(2026, 11, 3, 8, 30), True, id="winter-08:30"),
    ],
)
def test_routing_follows_the_workshop_hours(
    shop: WorldBuilder, at: dt.datetime, in_hours: bool
) -> None:
    rec = shop.record("workshop_booking", at)
    decision = shop.engine().route(rec, at)
    assert decision.outcome == ("mechanic_calls_back" if in_hours else "automatic_confirmation")
    assert decision.rules == ("routing.workshop", "workshop_hours")


def test_routing_due_is_one_calendar_day_on_the_dublin_clock(shop: WorldBuilder) -> None:
    collected = dublin(2026, 3, 28, 10)  # Saturday; summer time starts on Sunday
    rec = shop.record("workshop_booking", collected)
    due = shop.engine().route(rec, collected).due
    assert due == dublin(2026, 3, 29, 10)
    assert due is not None
    assert due.astimezone(dt.UTC) - collected.astimezone(dt.UTC) == dt.timedelta(hours=23)


@pytest.mark.parametrize("source", ["shop_purchase", "ride_app", "newsletter_signup"])
def test_routing_other_sources_is_not_applicable(shop: WorldBuilder, source: str) -> None:
    rec = shop.record(source, T0)
    assert shop.engine().route(rec, T0).outcome == "not_applicable"


# --- sharing and transfers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "source", "categories"),
    [
        ("payment_processor", "shop_purchase", {"name", "payment_card"}),
        ("payment_processor", "workshop_booking", None),
        ("courier", "workshop_booking", {"name", "phone"}),
        ("courier", "shop_purchase", {"name"}),
        ("courier", "ride_app", None),
        ("ride_cloud", "ride_app", {"email", "ride_data"}),
        ("ride_cloud", "newsletter_signup", {"email"}),
    ],
)
def test_sharing(
    shop: WorldBuilder, recipient: str, source: str, categories: set[str] | None
) -> None:
    rec = shop.record(source, T0)
    decision = shop.engine().may_share(rec, recipient, LATER)
    if categories is None:
        assert decision.outcome == "denied"
    else:
        assert decision.outcome == "allowed"
        assert set(decision.categories or ()) == categories
        assert decision.findings == ()


@pytest.mark.parametrize("recipient", ["payment_processor", "courier"])
def test_adequate_locations_need_no_safeguard(shop: WorldBuilder, recipient: str) -> None:
    decision = shop.engine().transfer(recipient, LATER)
    assert decision.outcome == "allowed"
    assert decision.rules == (f"recipient.{recipient}",)


@pytest.mark.parametrize(
    ("at", "outcome"),
    [
        (dublin(2020, 7, 15, 23, 59), "allowed"),
        (dublin(2020, 7, 16, 0, 0), "denied"),
        (dublin(2026, 3, 3), "denied"),
    ],
)
def test_a_recipient_relying_only_on_privacy_shield(
    shop: WorldBuilder, at: dt.datetime, outcome: str
) -> None:
    decision = shop.engine().transfer("legacy_analytics", at)
    assert decision.outcome == outcome
    if outcome == "denied":
        assert decision.reasons == ("no_valid_safeguard",)
        (finding,) = decision.findings
        assert finding.code == "privacy_shield_invalid"
        assert "EU-US Data Privacy Framework (from 2023-07-10)" in finding.message
        rec = shop.record("ride_app", at)
        shared = shop.engine().may_share(rec, "legacy_analytics", at)
        assert shared.outcome == "denied"
        assert "privacy_shield_invalid" in shared.reasons


@pytest.mark.parametrize(
    ("at", "allowed", "finding"),
    [
        (dublin(2023, 7, 9, 23, 59), False, "data_privacy_framework_invalid"),
        (dublin(2023, 7, 10, 0, 0), True, None),
    ],
)
def test_a_safeguard_valid_only_from_a_date(
    shop: WorldBuilder, at: dt.datetime, allowed: bool, finding: str | None
) -> None:
    rec = shop.record("newsletter_signup", at - DAY)
    shop.event("consent_given", at - DAY)
    engine = shop.engine()
    decision = engine.may_share(rec, "newsletter_platform", at)
    assert decision.allowed is allowed
    assert [f.code for f in decision.findings] == ([finding] if finding else [])
    # the same day, ride_cloud still has its standard contractual clauses
    assert engine.transfer("ride_cloud", at).outcome == "allowed"


def test_newsletter_platform_needs_the_newsletter_allowed(shop: WorldBuilder) -> None:
    rec = shop.record("newsletter_signup", T0)
    decision = shop.engine().may_share(rec, "newsletter_platform", LATER)
    assert decision.outcome == "denied"
    assert decision.reasons == ("no_consent",)


# --- retention ---------------------------------------------------------------------------------


def _around(shop: WorldBuilder, rec_id: str, until: dt.datetime, rule: str) -> None:
    engine = shop.engine()
    before = engine.retention(rec_id, until - DAY)
    assert (before.outcome, before.until, governing_rule(before)) == ("keep", until, rule)
    for at in (until, until + DAY):
        after = engine.retention(rec_id, at)
        assert (after.outcome, after.due) == ("delete", until)


def test_retention_workshop_unresolved_then_two_years_after_collection(shop: WorldBuilder) -> None:
    rec = shop.record("workshop_booking", T0)
    assert shop.engine().retention(rec, dublin(2040, 1, 1)).until is None
    shop.event("bike_collected", dublin(2026, 3, 10, 17), record=rec)
    _around(shop, rec.id, dublin(2028, 3, 10, 17), "retention.workshop")


def test_retention_sales_six_years_from_29_february(shop: WorldBuilder) -> None:
    rec = shop.record("shop_purchase", dublin(2028, 2, 29, 11))
    _around(shop, rec.id, dublin(2034, 2, 28, 11), "retention.sales")


def test_retention_app_three_years_from_the_last_ride(shop: WorldBuilder) -> None:
    rec = shop.record("ride_app", T0)
    shop.event("app_ride", dublin(2026, 8, 1, 6))
    _around(shop, rec.id, dublin(2029, 8, 1, 6), "retention.app")


def test_retention_newsletter_three_years(shop: WorldBuilder) -> None:
    rec = shop.record("newsletter_signup", T0)
    _around(shop, rec.id, dublin(2029, 3, 3, 10), "retention.newsletter")


# --- the engine's explanations cite this policy's rules ----------------------------------------


def test_every_decision_cites_rules_of_this_policy(shop: WorldBuilder, acme: Policy) -> None:
    records = [shop.record(s, T0) for s in sorted(acme.sources)]
    shop.event("consent_given", T0)
    shop.event("bike_collected", T0 + DAY, record=records[-1])
    engine = shop.engine()
    index = acme.rule_index()
    decisions = [engine.may_email("cara", LATER)]
    decisions += [engine.transfer(r, LATER) for r in acme.recipients]
    for rec in records:
        decisions += [engine.route(rec, LATER), engine.retention(rec, LATER)]
        decisions += [engine.may_process(rec, p, LATER) for p in acme.purposes]
        decisions += [engine.may_share(rec, r, LATER) for r in acme.recipients]
    for decision in decisions:
        assert set(decision.rules) <= set(index), decision.explain()


# --- lint --------------------------------------------------------------------------------------


def test_lint_on_the_second_policy(acme: Policy) -> None:
    findings = [f for f in lint(acme) if f.severity != "info"]
    assert {(f.code, f.rule) for f in findings} == {
        ("transfer_without_valid_safeguard", "recipient.legacy_analytics"),
        ("invalid_safeguard", "safeguard.privacy_shield"),
    }
    assert findings[0].severity == "error"  # most severe first
    shield = next(f for f in findings if f.code == "invalid_safeguard")
    assert "legacy_analytics" in shield.message
    assert "successors: EU-US Data Privacy Framework (from 2023-07-10)" in shield.message


def test_lint_on_the_second_policy_as_of_a_date(acme: Policy) -> None:
    findings = [f for f in lint(acme, dt.date(2019, 1, 1)) if f.severity != "info"]
    assert {(f.code, f.rule) for f in findings} == {
        ("transfer_without_valid_safeguard", "recipient.newsletter_platform"),
        ("invalid_safeguard", "safeguard.data_privacy_framework"),
    }
    for f in findings:
        if f.code == "invalid_safeguard":
            assert "valid only from 2023-07-10" in f.message


def test_lint_finds_no_notice_gaps_in_the_second_policy(acme: Policy) -> None:
    codes = {f.code for f in lint(acme)}
    for gap in (
        "source_without_categories",
        "basis_not_stated",
        "no_retention_period",
        "pecr_consent_required",
        "basis_referred_unused",
        "category_unused",
        "source_without_purpose",
    ):
        assert gap not in codes


SCENARIO = """
[scenario]
title = "A workshop booking on a Tuesday morning: a mechanic calls back"
policy = "{policy}"
now = 2026-03-03T10:00:00Z

[[record]]
id = "b1"
subject = "cara"
source = "workshop_booking"
collected_at = 2026-03-03T10:00:00Z

[[expect]]
ask = "route"
record = "b1"
outcome = "{outcome}"
"""


def test_scenarios_take_route_outcomes_from_their_policy(tmp_path: Path) -> None:
    """The scenario reader knows acme's routing outcomes from acme's rules, not a list
    written for flexioffices (issue 16, item 8)."""
    from fairproc.scenarios import ScenarioError, load_scenario, run_scenario

    path = tmp_path / "acme-route.toml"
    path.write_text(SCENARIO.format(policy=ACME, outcome="mechanic_calls_back"), encoding="utf-8")
    result = run_scenario(load_scenario(path))
    assert result.passed
    path.write_text(SCENARIO.format(policy=ACME, outcome="pass_to_providers"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:  # a flexioffices outcome means nothing here
        load_scenario(path)
    message = str(info.value)
    assert "unknown route outcome 'pass_to_providers'" in message
    assert "automatic_confirmation, mechanic_calls_back, not_applicable" in message


def test_a_policy_names_its_route_outcomes(acme: Policy) -> None:
    assert acme.route_outcomes() == {
        "mechanic_calls_back",
        "automatic_confirmation",
        "not_applicable",
    }

"""Art 18(1) beneath the law: the ground of a restriction is kept beside it (in the audit log)
and only that ground's end lifts it, on every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairproc import Engine, Policy
from fairproc.law import load_law
from fairproc.law_rights import open_grounds
from fairproc.rights import LawTerms, request
from fairproc.storage import AuditKeys, ChangeSet, subject_audit
from helpers import WorldBuilder, london, utc
from store_support import STORE_KINDS, opened_store

RULE = load_law("uk-gdpr").rules["art18_1"]


def _restrict(engine: Engine, ground: str, at_hour: int) -> str:
    return request(
        engine,
        "ada",
        "restriction",
        utc(2026, 6, 1, at_hour),
        verified=True,
        law=LawTerms(ground=ground),
    ).decision.outcome


def _grounds(engine: Engine, hour: int) -> list[str] | None:
    at = utc(2026, 6, 1, hour)
    return open_grounds(engine, RULE, engine.history("ada"), at)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_only_a_grounds_own_end_lifts_the_restriction(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 5, 10, 10), id="r1")
    with opened_store(kind, tmp_path) as store:
        store.apply(ChangeSet(put_records=w.records, add_events=w.events))
        engine = Engine(flexi, store, law="uk-gdpr")
        assert _grounds(engine, 8) == []
        assert _restrict(engine, "legal_claims", 9) == "granted"
        assert _restrict(engine, "accuracy_contested", 10) == "granted"
        assert _grounds(engine, 11) == ["legal_claims", "accuracy_contested"]
        # the ground is in the log as a name, beside the restriction; the subject pseudonymised
        # where the store keeps a key
        logged = [(a.action, a.rule, a.field) for a in subject_audit(store, "ada")]
        assert ("restrict", "uk-gdpr.art18_1", "legal_claims") in logged
        if isinstance(store, AuditKeys):
            assert all(a.subject != "ada" for a in store.audit_entries())

        fixed = request(
            engine,
            "ada",
            "rectification",
            utc(2026, 6, 1, 12),
            verified=True,
            corrections={"r1": {"name": "Ada King"}},
        )
        assert fixed.decision.outcome == "granted"
        # accuracy verified: that ground is over, the legal claims keep the restriction
        assert _grounds(engine, 13) == ["legal_claims"]
        late = engine.may_process("r1", "provider_introduction", utc(2026, 6, 1, 13))
        assert (late.outcome, late.reasons) == ("denied", ("restricted",))

        wrong = request(
            engine,
            "ada",
            "restriction",
            utc(2026, 6, 1, 14),
            verified=True,
            law=LawTerms(ground="objection_verified"),
        )
        assert wrong.decision.outcome == "refused"
        assert wrong.decision.reasons == ("restriction_ground_not_open",)
        assert not wrong.changes

        resolved = request(
            engine,
            "ada",
            "restriction",
            utc(2026, 6, 1, 15),
            verified=True,
            law=LawTerms(ground="legal_claims_resolved"),
        )
        assert resolved.decision.outcome == "granted"
        assert [e.kind for e in resolved.changes.add_events] == ["restriction_lifted"]
        assert _grounds(engine, 16) == []
        again = engine.may_process("r1", "provider_introduction", utc(2026, 6, 1, 16))
        assert again.outcome == "allowed"


def test_a_restriction_by_the_notices_own_event_has_no_recorded_ground(flexi: Policy) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 5, 10, 10), id="r1")
    w.event("restricted", london(2026, 5, 20, 10))
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    assert _grounds(engine, 9) is None
    fixed = request(
        engine,
        "ada",
        "rectification",
        utc(2026, 6, 1, 9),
        verified=True,
        corrections={"r1": {"name": "Ada King"}},
    )
    assert fixed.decision.outcome == "granted"
    assert fixed.changes.add_events == ()  # nothing lifted: the ground is not known
    law = [c for c in fixed.decision.checks if c.rule == "uk-gdpr.art18_1"]
    assert len(law) == 1 and "ground is not recorded" in (law[0].detail or "")
    still = engine.may_process("r1", "provider_introduction", utc(2026, 6, 1, 10))
    assert still.outcome == "denied"


def test_an_unknown_ground_or_end_is_an_input_error(flexi: Policy) -> None:
    from fairproc.errors import InputError

    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 5, 10, 10), id="r1")
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    with pytest.raises(InputError, match="legal_claims_resolved"):
        _restrict(engine, "bored", 9)


def test_the_cli_offers_every_ground_and_end_the_law_knows() -> None:
    import click

    from fairproc.cli import request_cmd
    from fairproc.law import RESTRICTION_ENDS, RESTRICTION_GROUNDS

    option = next(p for p in request_cmd.params if p.name == "ground")
    assert isinstance(option.type, click.Choice)
    assert set(option.type.choices) == {*RESTRICTION_GROUNDS, *RESTRICTION_ENDS}

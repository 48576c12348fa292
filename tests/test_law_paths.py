"""Every path that answers a question applies the law layer when the engine has one: the
interpreter, the compiled questions (fairproc.compiled) and the whole-store questions
(fairproc.whole_store: processable, may_email_all), on every store. The example is PECR reg 22:
marketing email on legitimate interests to a handbook downloader (no sale, no negotiation, so
no soft opt-in) is allowed by the notice and denied by the law."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairproc import Engine, Policy
from fairproc.compiled import compile_questions
from fairproc.storage import ChangeSet
from helpers import WorldBuilder, london
from store_support import STORE_KINDS, opened_store

AT = london(2026, 11, 23, 10)


def _world(flexi: Policy) -> WorldBuilder:
    w = WorldBuilder(flexi)
    # ada downloaded the handbook: the notice markets to her on legitimate interests
    w.record(
        "handbook_download",
        london(2026, 11, 20, 10),
        id="hb",
        subject="ada",
        data={"name": "Ada", "email": "ada@example.com"},
    )
    # bob asked for a quick quote: the negotiation of a sale, so the soft opt-in holds
    w.record(
        "quick_quote",
        london(2026, 11, 20, 10),
        id="qq",
        subject="bob",
        data={"name": "Bob", "email": "bob@example.com", "phone": "1"},
    )
    return w


def test_the_compiled_questions_are_denied_where_the_law_denies(flexi: Policy) -> None:
    world = _world(flexi).world()
    engine = Engine(flexi, world, law="uk-gdpr")
    compiled = compile_questions(engine)
    notice = compile_questions(Engine(flexi, world))
    for ask in (
        lambda q: q.may_process("hb", "marketing_updates", AT),
        lambda q: q.may_share("hb", "email_service", AT),
        lambda q: q.may_email("ada", AT),
    ):
        assert ask(notice).outcome == "allowed"
        by_law, interpreted = ask(compiled), ask(engine)
        assert by_law.outcome == interpreted.outcome == "denied"
        assert by_law.reasons == interpreted.reasons
        assert "pecr_reg22_consent_required" in by_law.reasons
        assert "uk-gdpr.pecr_reg22" in by_law.rules
    # and allowed where the law allows: the quick quote's soft opt-in
    assert compiled.may_share("qq", "email_service", AT).outcome == "allowed"
    assert compiled.may_email("bob", AT).outcome == "allowed"


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_whole_store_questions_apply_the_law_on_every_store(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    w = _world(flexi)
    with opened_store(kind, tmp_path) as store:
        store.apply(ChangeSet(put_records=w.records, add_events=w.events))
        notice = Engine(flexi, store)
        law = Engine(flexi, store, law="uk-gdpr")
        assert {a.record.id for a in notice.processable("marketing_updates", AT)} == {"hb", "qq"}
        allowed = list(law.processable("marketing_updates", AT))
        assert [a.record.id for a in allowed] == ["qq"]
        assert all(a.decision.allowed for a in allowed)
        assert {m.address for m in notice.may_email_all(AT)} == {
            "ada@example.com",
            "bob@example.com",
        }
        listed = list(law.may_email_all(AT))
        assert [(m.address, m.subject, m.record) for m in listed] == [
            ("bob@example.com", "bob", "qq")
        ]
        # the list is the union of may_email's addresses, beneath the law as above it
        for subject in ("ada", "bob"):
            decision = law.may_email(subject, AT)
            mine = {m.address for m in listed if m.subject == subject}
            assert set(decision.addresses or ()) == mine
        # a purpose the law does not touch gives the notice's records unchanged
        assert {a.record.id for a in law.processable("provider_introduction", AT)} == {
            a.record.id for a in notice.processable("provider_introduction", AT)
        }


def test_an_address_given_twice_is_listed_by_the_record_the_law_allows(flexi: Policy) -> None:
    w = _world(flexi)
    # ada asks for a quick quote later with the same address: that record's soft opt-in holds
    w.record(
        "quick_quote",
        london(2026, 11, 21, 10),
        id="qq-ada",
        subject="ada",
        data={"name": "Ada", "email": "ADA@example.com", "phone": "2"},
    )
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    listed = {m.address: m.record for m in engine.may_email_all(AT)}
    assert listed == {"ada@example.com": "qq-ada", "bob@example.com": "qq"}


def test_a_logged_decision_is_rerun_beneath_the_law_it_was_taken_under(
    tmp_path: Path, flexi: Policy
) -> None:
    from fairproc.decision_log import DecisionLog, entry, read_log, verify
    from fairproc.storage import open_store

    w = _world(flexi)
    store = open_store(f"sqlite:///{tmp_path}/log.db")
    try:
        store.apply(ChangeSet(put_records=w.records, add_events=w.events))
        path = tmp_path / "decisions.jsonl"
        with DecisionLog(path) as log:
            law = Engine(flexi, store, law="uk-gdpr", log=log)
            assert law.may_process("hb", "marketing_updates", AT).outcome == "denied"
            notice = Engine(flexi, store, log=log)
            assert notice.may_process("hb", "marketing_updates", AT).outcome == "allowed"
        lines = read_log(path)
        assert [line.data.get("law") for line in lines] == ["uk-gdpr", None]
        result = verify(lines, flexi, store)
        assert result.ok and result.counts() == {"confirmed": 2}
        # a line naming a law this fairproc does not ship is not re-run (and says why)
        other = tmp_path / "other.jsonl"
        plain = Engine(flexi, store)  # not logging: its line is written by hand below
        decision = plain.may_process("qq", "marketing_updates", AT)
        with DecisionLog(other) as log:
            log.write({**entry(plain, decision), "law": "atlantis"})
        unknown = verify(read_log(other), flexi, store)
        assert [(v.status, v.detail) for v in unknown.verdicts] == [
            ("not_rerun", "no law layer named 'atlantis'")
        ]
    finally:
        store.close()

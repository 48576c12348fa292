"""The law layer (rules/uk-gdpr, fairproc.law): it only takes away, cites its sources, runs the
law's clocks for rights on every store, and lints a notice against the law."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fairproc import Engine, Policy, load_policy, shipped_policies
from fairproc.cli import main
from fairproc.clock import Period
from fairproc.errors import InputError, PolicyError
from fairproc.law import LawLayer, load_law, shipped_laws
from fairproc.law_lint import lint_against, render
from fairproc.rights import LawTerms, plan_request, request
from fairproc.scenarios import ScenarioResult, UrlStores, memory_store, run_paths
from fairproc.storage import ChangeSet
from helpers import WorldBuilder, london, utc
from store_support import MYSQL_ENV, POSTGRESQL_ENV, STORE_KINDS, opened_store, server_url

ROOT = Path(__file__).resolve().parent.parent
LAW_SCENARIOS = ROOT / "rules" / "uk-gdpr" / "scenarios"
FLEXI_SCENARIOS = ROOT / "rules" / "flexioffices" / "scenarios"
QUESTIONS = ("may_process", "may_share", "may_email", "transfer")


def _failures(results: list[ScenarioResult]) -> list[str]:
    out = []
    for r in results:
        out.extend(f"{r.file}: {p}" for p in r.problems)
        out.extend(
            f"{r.file}: {e.expectation.name}: expected {dict(e.expected)}, actual "
            f"{dict(e.actual)}\n{e.explanation}"
            for e in r.expectations
            if not e.passed
        )
    return out


# --- the law file ----------------------------------------------------------------------------


def test_the_uk_gdpr_layer_ships_and_is_not_a_notice() -> None:
    assert shipped_laws() == ["uk-gdpr"]
    assert "uk-gdpr" not in shipped_policies()


def test_every_law_rule_cites_its_source() -> None:
    law = load_law("uk-gdpr")
    assert len(law.rules) >= 15
    for rule in law.rules.values():
        assert rule.cite and rule.quote and rule.source.strip(), rule.id
        # a rule not confirmed against a primary text says so in its reading
        if not rule.confirmed:
            assert "NOT CONFIRMED" in rule.reading
            assert "not confirmed" in (rule.note or "").lower(), rule.id
    cited = {r.cite.split(" ")[0] for r in law.rules.values()}
    assert {"UK", "PECR", "DPA"} <= cited


def test_commencement_dates_of_the_2025_act() -> None:
    law = load_law("uk-gdpr")
    assert law.rules["art12a"].in_force == dt.date(2026, 2, 5)
    assert law.rules["pecr_reg6"].in_force == dt.date(2026, 2, 5)
    assert law.rules["dpa_s164a"].in_force == dt.date(2026, 6, 19)


def test_a_law_file_with_an_unknown_test_or_no_cite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "law.toml"
    path.write_text(
        textwrap.dedent(
            """\
            [law]
            id = "x"
            title = "X"
            timezone = "Europe/London"

            [rule.a]
            title = "A"
            test = "guesswork"
            cite = "Art 1"
            quote = "q"
            source = "s"

            [rule.b]
            title = "B"
            test = "objection"
            quote = "q"
            source = "s"
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as caught:
        load_law(path)
    text = str(caught.value)
    assert "rule.a.test: unknown test 'guesswork'" in text
    assert "rule.b.cite: required: a string" in text


def test_an_unknown_law_name_lists_the_shipped_ones() -> None:
    with pytest.raises(PolicyError, match=r"no law layer named 'eu-gdpr' \(shipped: uk-gdpr"):
        load_law("eu-gdpr")


# --- decisions beneath the law ---------------------------------------------------------------


def _handbook(flexi: Policy) -> WorldBuilder:
    w = WorldBuilder(flexi)
    w.record("handbook_download", london(2026, 11, 20, 10), id="hb")
    w.record(
        "quick_quote",
        london(2026, 11, 20, 10),
        id="qq",
        subject="bob",
        data={"name": "Bob", "email": "bob@example.com", "phone": "1"},
    )
    return w


def test_the_law_denies_what_the_notice_allows_and_names_its_rule(flexi: Policy) -> None:
    w = _handbook(flexi)
    at = london(2026, 11, 23, 10)
    notice = Engine(flexi, w.world()).may_process("hb", "marketing_updates", at)
    law = Engine(flexi, w.world(), law="uk-gdpr").may_process("hb", "marketing_updates", at)
    assert notice.outcome == "allowed"
    assert law.outcome == "denied"
    assert law.reasons == ("pecr_reg22_consent_required",)
    failed = [c for c in law.checks if c.passed is False]
    assert [c.rule for c in failed] == ["uk-gdpr.pecr_reg22"]
    assert failed[0].layer == "law"
    assert "PECR reg 22" in failed[0].clause
    assert "law: PECR reg 22(2), (3)" in law.explain()
    assert law.to_dict()["explanation"][-1]["layer"] == "law"


def test_may_email_uses_only_the_addresses_the_law_allows(flexi: Policy) -> None:
    w = _handbook(flexi)
    w.record(
        "quick_quote",
        london(2026, 11, 21, 10),
        id="qq2",
        data={"name": "Ada", "email": "ada.work@example.com", "phone": "2"},
    )
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    decision = engine.may_email("ada", london(2026, 11, 23, 10))
    assert decision.outcome == "allowed"
    assert decision.addresses == ("ada.work@example.com",)
    # the download the law stops informs the decision without failing it
    download = [c for c in decision.checks if c.layer == "law" and c.scope == "hb"]
    assert [(c.rule, c.passed) for c in download] == [("uk-gdpr.pecr_reg22", None)]
    notice = Engine(flexi, w.world()).may_email("ada", london(2026, 11, 23, 10))
    assert set(notice.addresses or ()) == {"ada@example.com", "ada.work@example.com"}


def test_a_law_rule_not_yet_in_force_does_not_apply(flexi: Policy) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 1, 10, 10), id="q1")
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    # before Art 12A (5 February 2026): the notice's own handling, an unverified request refused
    before = plan_request(engine, "ada", "access", london(2026, 2, 4, 10), verified=False)
    assert before.decision.outcome == "refused"
    after = plan_request(engine, "ada", "access", london(2026, 2, 5, 10), verified=False)
    assert after.decision.outcome == "awaiting_identity"
    assert after.decision.due is None


def test_the_law_never_allows_what_the_notice_denies() -> None:
    """Every shipped flexioffices scenario beneath the law: where a question's outcome differs
    from the notice alone, the notice allowed it, the law denied it and a law rule says why;
    the only other difference is an unverified request, awaiting identity instead of refused."""
    alone = run_paths([FLEXI_SCENARIOS])
    beneath = run_paths([FLEXI_SCENARIOS], law="uk-gdpr")
    differing = 0
    for a, b in zip(alone, beneath, strict=True):
        for ea, eb in zip(a.expectations, b.expectations, strict=True):
            assert ea.passed, ea.expectation.name
            if eb.decision is None or ea.decision is None:
                continue
            if ea.decision.outcome == eb.decision.outcome:
                continue
            differing += 1
            law_checks = [c for c in eb.decision.checks if c.layer == "law"]
            if ea.expectation.ask in QUESTIONS:
                assert (ea.decision.outcome, eb.decision.outcome) == ("allowed", "denied")
                assert any(c.passed is False for c in law_checks), eb.expectation.name
            else:
                assert ea.expectation.ask == "request"
                assert eb.decision.outcome == "awaiting_identity"
                assert [c.rule for c in law_checks] == ["uk-gdpr.art12a"]
    assert differing == 22


# --- the law's clock (Art 12A) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "fee", "asked", "answered", "due"),
    [
        (None, None, None, None, london(2026, 4, 2, 9)),
        (london(2026, 3, 10, 15), None, None, None, london(2026, 4, 10, 15)),
        (london(2026, 3, 10, 15), london(2026, 3, 12, 9), None, None, london(2026, 4, 13, 9)),
        # asked 4 March, answered 9 March: six days do not count
        (None, None, london(2026, 3, 4, 10), london(2026, 3, 9, 16), london(2026, 4, 8, 9)),
        # 31 January: no 31 February, so the last day; 28 Feb 2026 is a Saturday: Monday
        (london(2026, 1, 31, 9), None, None, None, london(2026, 3, 2, 9)),
    ],
)
def test_the_response_period_starts_at_the_latest_and_pauses_for_clarification(
    flexi: Policy,
    identity: dt.datetime | None,
    fee: dt.datetime | None,
    asked: dt.datetime | None,
    answered: dt.datetime | None,
    due: dt.datetime,
) -> None:
    layer = LawLayer(load_law("uk-gdpr"), flexi)
    got, how = layer.response_due(
        london(2026, 3, 2, 9) if identity is None or identity > london(2026, 2, 1) else identity,
        Period(months=1),
        identity_confirmed_at=identity,
        fee_received_at=fee,
        clarification_requested_at=asked,
        clarification_received_at=answered,
    )
    assert got == due, how


def test_law_terms_are_checked(flexi: Policy) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 3, 1, 10), id="q1")
    engine = Engine(flexi, w.world(), law="uk-gdpr")
    at = london(2026, 3, 2, 9)
    with pytest.raises(InputError, match="manifestly: expected unfounded or excessive"):
        plan_request(engine, "ada", "access", at, verified=True, law=LawTerms(manifestly="rude"))
    with pytest.raises(InputError, match="identity_confirmed_at: expected a timezone-aware"):
        plan_request(
            engine,
            "ada",
            "access",
            at,
            law=LawTerms(identity_confirmed_at=dt.datetime(2026, 3, 3)),
        )
    with pytest.raises(InputError, match="clarification_received_at: needs"):
        plan_request(
            engine,
            "ada",
            "access",
            at,
            verified=True,
            law=LawTerms(clarification_received_at=at),
        )
    with pytest.raises(InputError, match="restriction ground 'bored'"):
        plan_request(engine, "ada", "restriction", at, verified=True, law=LawTerms(ground="bored"))


def test_the_notice_alone_keeps_its_own_rights_handling(flexi: Policy) -> None:
    w = WorldBuilder(flexi)
    w.record("quick_quote", london(2026, 3, 1, 10), id="q1")
    result = plan_request(Engine(flexi, w.world()), "ada", "access", london(2026, 3, 2, 9))
    assert result.decision.outcome == "refused"
    assert result.decision.reasons == ("identity_not_verified",)


# --- on every store --------------------------------------------------------------------------


def _factory(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return memory_store
    if kind == "sqlite":
        return UrlStores(f"sqlite:///{tmp_path / 'law.db'}")
    if kind == "csv":
        return UrlStores(f"csv://{tmp_path / 'csv'}")
    return UrlStores(server_url(POSTGRESQL_ENV if kind == "postgresql" else MYSQL_ENV))


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_law_scenarios_pass_on_every_store(kind: str, tmp_path: Path) -> None:
    results = run_paths([LAW_SCENARIOS], _factory(kind, tmp_path))
    assert len(results) >= 10
    assert _failures(results) == []


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_an_objection_with_compelling_grounds_changes_nothing_on_every_store(
    kind: str, tmp_path: Path, flexi: Policy
) -> None:
    w = WorldBuilder(flexi)
    w.record("contact_form", london(2026, 5, 20, 10), id="c1")
    with opened_store(kind, tmp_path) as store:
        store.apply(ChangeSet(put_records=w.records, add_events=w.events))
        engine = Engine(flexi, store, law="uk-gdpr")
        at = utc(2026, 6, 1, 9)
        refused = request(
            engine,
            "ada",
            "objection",
            at,
            verified=True,
            purposes=["office_search"],
            law=LawTerms(compelling_grounds="a booking dispute"),
        )
        assert refused.decision.outcome == "refused"
        assert list(store.subject_events("ada")) == []
        granted = request(engine, "ada", "objection", at, verified=True, purposes=["office_search"])
        assert granted.decision.outcome == "granted"
        later = engine.may_process("c1", "office_search", utc(2026, 6, 1, 10))
        assert later.outcome == "denied"
        assert "uk-gdpr.art21_1" in later.rules


# --- lint --against --------------------------------------------------------------------------

NAMED = {
    "transfers_framed_as_eu",
    "marketing_email_without_consent",
    "no_lawful_basis_stated",
    "no_retention_period",
    "privacy_shield",
    "right_narrowed",
    "no_complaints_process",
}


def test_lint_against_reports_the_named_findings_with_both_texts(flexi: Policy) -> None:
    findings = lint_against(flexi, load_law("uk-gdpr"))
    codes = {f.code for f in findings}
    assert codes >= NAMED
    for f in findings:
        assert f.law.startswith(load_law("uk-gdpr").rule_index()[f.law_rule].cite)
        assert f.notice, f.code  # flexioffices describes every right: each finding quotes it
    handbook = [f for f in findings if f.code == "marketing_email_without_consent"]
    assert any("handbook_download" in f.message for f in handbook)
    calls = [f for f in findings if f.code == "no_lawful_basis_stated"]
    assert any("call_training_monitoring" in f.message for f in calls)


def test_lint_against_judges_complaints_by_the_date_given(flexi: Policy) -> None:
    law = load_law("uk-gdpr")
    before = {f.code: f for f in lint_against(flexi, law, dt.date(2026, 6, 18))}
    after = {f.code: f for f in lint_against(flexi, law, dt.date(2026, 6, 19))}
    assert before["no_complaints_process"].severity == "warning"
    assert "required from 2026-06-19" in before["no_complaints_process"].message
    assert after["no_complaints_process"].severity == "error"


def test_lint_against_an_imaginary_controllers_notice() -> None:
    policy = load_policy(ROOT / "rules" / "uk-gdpr" / "example")
    codes = [f.code for f in lint_against(policy, load_law("uk-gdpr"))]
    assert "privacy_shield" in codes
    assert "marketing_email_without_consent" in codes
    assert codes.count("right_omitted") == 2  # restriction and portability
    assert "transfers_framed_as_eu" not in codes


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_cli_lint_against(fmt: str) -> None:
    result = CliRunner().invoke(
        main, ["lint", "flexioffices", "--against", "uk-gdpr", "--format", fmt]
    )
    assert result.exit_code == 1, result.output
    if fmt == "json":
        doc = json.loads(result.output)
        assert doc["law"] == "uk-gdpr"
        assert {f["code"] for f in doc["findings"]} >= NAMED
        assert all(f["law"] for f in doc["findings"])
    elif fmt == "markdown":
        assert result.output.startswith("# flexioffices against uk-gdpr")
        assert "> **Notice** (safeguard.privacy_shield)" in result.output
        assert "> **Law** (uk-gdpr.art44_46)" in result.output
    else:
        assert 'notice: "Do we transfer your personal data outside of the EU or EEA?"' in (
            result.output
        )
        assert "    law: PECR reg 22(2), (3)" in result.output


def test_cli_lint_against_an_unknown_law_exits_2() -> None:
    result = CliRunner().invoke(main, ["lint", "flexioffices", "--against", "nope"])
    assert result.exit_code == 2
    assert "no law layer named 'nope'" in result.output


def test_cli_scenarios_run_with_law() -> None:
    path = str(FLEXI_SCENARIOS / "purpose-handbook-download.toml")
    assert CliRunner().invoke(main, ["scenarios", "run", path]).exit_code == 0
    beneath = CliRunner().invoke(main, ["scenarios", "run", path, "--law", "uk-gdpr"])
    assert beneath.exit_code == 1
    assert "uk-gdpr.pecr_reg22 -> pecr_reg22_consent_required" in beneath.output


def test_a_scenario_naming_an_unknown_law_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        textwrap.dedent(
            """\
            [scenario]
            title = "bad law"
            policy = "flexioffices"
            law = "uk-gpdr"
            now = 2026-11-21T10:00:00Z
            """
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["scenarios", "run", str(path)])
    assert result.exit_code == 2
    assert "scenario.law: law 'uk-gpdr' could not be loaded" in result.output


def test_render_text_quotes_both_texts(flexi: Policy) -> None:
    law = load_law("uk-gdpr")
    text = render(lint_against(flexi, law), flexi, law, "text")
    assert text.splitlines()[-1].startswith("flexioffices against uk-gdpr: ")


# --- fairproc request --law ------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from fairproc import Record
    from fairproc.storage import open_store

    url = f"sqlite:///{tmp_path}/law.db"
    store = open_store(url)
    store.apply(
        ChangeSet(
            put_records=[
                Record(
                    "q1",
                    "ada",
                    "quick_quote",
                    utc(2026, 1, 10, 10),
                    {"name": "Ada", "email": "ada@example.com"},
                )
            ]
        )
    )
    store.close()
    return url


def _request(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["request", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_cli_request_follows_the_laws_clock(sqlite_url: str) -> None:
    at = ["--store", sqlite_url, "--at", "2026-03-02T09:00:00Z"]
    waiting = _request("ada", "access", *at, "--law", "uk-gdpr")
    assert waiting["outcome"] == "awaiting_identity" and "due" not in waiting
    notice = _request("ada", "access", *at)
    assert notice["outcome"] == "refused"
    confirmed = _request(
        "ada", "access", *at, "--law", "uk-gdpr", "--identity-confirmed-at", "2026-03-10T15:00:00Z"
    )
    assert confirmed["outcome"] == "granted"
    assert confirmed["due"] == "2026-04-10T14:00:00Z"
    refused = _request(
        "ada", "erasure", *at, "--law", "uk-gdpr", "--verified", "--manifestly", "unfounded"
    )
    assert refused["outcome"] == "refused" and refused["reasons"] == ["manifestly_unfounded"]


def test_cli_request_with_a_naive_law_instant_exits_2(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        main,
        [
            "request",
            "ada",
            "access",
            "--store",
            sqlite_url,
            "--at",
            "2026-03-02T09:00:00Z",
            "--law",
            "uk-gdpr",
            "--fee-received-at",
            "2026-03-03T09:00:00",
        ],
    )
    assert result.exit_code == 2
    assert "--fee-received-at" in result.output

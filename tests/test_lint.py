"""lint: the gaps and legal risks in what a notice says, found in its policy."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from fairproc import Engine, LintFinding, Policy, lint, load_policy
from fairproc.lint import SEVERITIES, at_least
from helpers import london, write_policy

ROOT = Path(__file__).resolve().parent.parent

# The notice's gaps, as the reference policy encodes them: (code, rule) -> severity
REFERENCE_GAPS = {
    ("source_without_categories", "source.office_calculator"): "warning",
    ("basis_not_stated", "purpose.call_training_monitoring"): "warning",
    ("basis_not_stated", "purpose.office_search"): "warning",  # the 48-hour handbook call
    ("no_retention_period", "retention.undeclared"): "warning",  # call recordings
    ("no_retention_period", "source.office_calculator"): "warning",
    ("invalid_safeguard", "safeguard.privacy_shield"): "warning",
    ("pecr_consent_required", "purpose.retargeting"): "warning",
    ("pecr_consent_required", "purpose.analytics"): "info",
    ("basis_referred_unused", "right.erasure"): "warning",
    ("basis_referred_unused", "right.portability"): "warning",
}


@pytest.fixture(scope="module")
def findings() -> list[LintFinding]:
    return lint(load_policy("flexioffices"))


def _by(findings: list[LintFinding], code: str, rule: str) -> list[LintFinding]:
    return [f for f in findings if f.code == code and f.rule == rule]


@pytest.mark.parametrize(("code", "rule"), REFERENCE_GAPS)
def test_lint_finds_each_gap_of_the_notice(
    findings: list[LintFinding], code: str, rule: str
) -> None:
    found = _by(findings, code, rule)
    assert found, f"{code} on {rule} not found"
    assert {f.severity for f in found} == {REFERENCE_GAPS[(code, rule)]}
    for f in found:
        assert f.clause, "a finding quotes the notice"
        assert f.message


def test_lint_finds_nothing_else_worth_a_warning(findings: list[LintFinding]) -> None:
    serious = {(f.code, f.rule) for f in at_least(findings, "warning")}
    expected = {key for key, severity in REFERENCE_GAPS.items() if severity != "info"}
    assert serious == expected


def test_the_source_without_categories_is_the_calculator(findings: list[LintFinding]) -> None:
    (f,) = [f for f in findings if f.code == "source_without_categories"]
    assert "office_calculator" in f.message
    assert f.clause == "Use the office space calculator tool"


def test_basis_not_stated_for_call_recording_and_the_handbook_call(
    findings: list[LintFinding],
) -> None:
    (calls,) = _by(findings, "basis_not_stated", "purpose.call_training_monitoring")
    assert "phone_call" in calls.message and "legitimate_interests" in calls.message
    (handbook,) = _by(findings, "basis_not_stated", "purpose.office_search")
    assert "handbook_download" in handbook.message
    assert "48 hours" in (handbook.clause or "")


def test_invalid_safeguard_names_the_recipients_and_successors(
    findings: list[LintFinding],
) -> None:
    shield = _by(findings, "invalid_safeguard", "safeguard.privacy_shield")
    assert {f.message.split(" ")[0] for f in shield} == {"cloud_it_provider", "email_service"}
    for f in shield:
        assert "invalid from 2020-07-16" in f.message
        assert "Schrems II" in f.message
        assert "EU-US Data Privacy Framework (from 2023-07-10)" in f.message
        assert "UK Extension to the EU-US Data Privacy Framework (from 2023-10-12)" in f.message
    # appropriate agreements remain: no recipient is left without a valid safeguard
    assert not [f for f in findings if f.code == "transfer_without_valid_safeguard"]


@pytest.mark.parametrize(
    ("on", "invalid"),
    [
        (dt.date(2020, 7, 15), False),
        (dt.date(2020, 7, 16), True),
        (dt.date(2026, 3, 4), True),
    ],
)
def test_lint_judges_safeguards_as_of_a_date(flexi: Policy, on: dt.date, invalid: bool) -> None:
    codes = {f.code for f in lint(flexi, on)}
    assert ("invalid_safeguard" in codes) is invalid


def test_pecr_retargeting_is_a_warning_analytics_information(
    findings: list[LintFinding],
) -> None:
    (retargeting,) = _by(findings, "pecr_consent_required", "purpose.retargeting")
    assert "PECR regulation 6" in retargeting.message
    (analytics,) = _by(findings, "pecr_consent_required", "purpose.analytics")
    assert analytics.severity == "info"


def test_consent_is_referred_to_but_never_used(findings: list[LintFinding]) -> None:
    for f in findings:
        if f.code == "basis_referred_unused":
            assert "consent" in f.message
            assert "no purpose runs on consent" in f.message


def test_findings_come_most_severe_first(findings: list[LintFinding]) -> None:
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    assert ranks == sorted(ranks, reverse=True)


def test_a_finding_reads_as_a_ticket(findings: list[LintFinding]) -> None:
    (f,) = [f for f in findings if f.code == "source_without_categories"]
    assert str(f) == (
        "warning: source_without_categories [source.office_calculator]: "
        f"{f.message}\n"
        '    notice: "Use the office space calculator tool"'
    )


def test_dpv_terms_missing_are_information_only(findings: list[LintFinding]) -> None:
    missing = [f for f in findings if f.code == "dpv_term_missing"]
    assert missing
    assert {f.severity for f in missing} == {"info"}
    assert "category.other_people" not in {f.rule for f in missing}  # about others: no term
    assert "category.email" not in {f.rule for f in missing}  # pd:EmailAddress


# --- a small policy with other mistakes -------------------------------------------------------

SMALL = {
    "data.toml": """
        [category.email]
        title = "Email"
        dpv = "pd:EmailAddress"
        clause = "your email"

        [category.shoe_size]
        title = "Shoe size"
        dpv = "pd:PhysicalCharacteristic"
        clause = "your shoe size"

        [category.receipt]
        title = "Receipt"
        dpv = "pd:Purchase"
        clause = "your receipt"

        [source.signup]
        title = "Sign-up"
        categories = ["email", "shoe_size"]
        clause = "when you sign up we ask your email and shoe size"

        [source.till]
        title = "The till"
        categories = ["receipt"]
        clause = "we print a receipt"

        [source.kiosk]
        title = "The kiosk"
        categories = ["email"]
        clause = "the kiosk asks your email"
    """,
    "purposes.toml": """
        [purpose.news]
        title = "News"
        dpv = "dpv:DirectMarketing"
        categories = ["email"]
        clause = "we send news"
        [[purpose.news.bases]]
        basis = "legitimate_interests"
        sources = ["signup"]
        clause = "in our interest"

        [purpose.tax]
        title = "Tax records"
        dpv = "dpv:LegalCompliance"
        clause = "the law makes us keep receipts"
        [[purpose.tax.bases]]
        basis = "legal_obligation"
        sources = ["till"]
        clause = "the law"
    """,
    "retention.toml": """
        [[retention]]
        id = "retention.all"
        sources = ["signup", "till", "kiosk"]
        from = "record.collected_at"
        keep = "P1Y"
        clause = "we keep everything a year"
    """,
    "sharing.toml": """
        [recipient.mailer]
        title = "Mailer"
        dpv = "dpv:DataProcessor"
        categories = ["email"]
        location = "USA"
        clause = "our mailer in the USA"

        [recipient.printer]
        title = "Printer"
        dpv = "dpv:DataProcessor"
        categories = ["email"]
        location = "UK"
        clause = "our printer"
    """,
    "policy.toml": """
        [policy]
        id = "small"
        title = "Small"
        timezone = "Europe/London"
        adequate_locations = ["UK"]

        [controller]
        name = "Small Ltd"
        clause = "We are Small Ltd."
    """,
}


@pytest.fixture
def small(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, SMALL))


def test_lint_on_a_small_policy(small: Policy) -> None:
    serious = {(f.code, f.rule) for f in at_least(lint(small), "warning")}
    assert serious == {
        # collected at sign-up, used by no purpose
        ("category_unused", "category.shoe_size"),
        # only a legal obligation keeps the receipt: that is no use of it
        ("category_unused", "category.receipt"),
        # the kiosk's records serve no purpose at all
        ("source_without_purpose", "source.kiosk"),
        # data goes to the USA with nothing to make the transfer lawful
        ("transfer_without_safeguard", "recipient.mailer"),
    }


def test_transfer_without_safeguard_is_an_error(small: Policy) -> None:
    (f,) = [f for f in lint(small) if f.code == "transfer_without_safeguard"]
    assert f.severity == "error"
    assert f.message == "mailer receives data in USA with no safeguard"
    assert lint(small)[0] == f  # most severe first


def test_the_engine_refuses_the_transfer_lint_warns_about(small: Policy) -> None:
    engine = Engine(small)
    decision = engine.transfer("mailer", london(2026, 3, 4))
    assert decision.outcome == "denied"
    assert decision.reasons == ("no_valid_safeguard",)
    assert [c.reason for c in decision.failed] == ["no_safeguard"]
    assert engine.transfer("printer", london(2026, 3, 4)).outcome == "allowed"


def test_a_category_a_purpose_uses_is_not_unused(tmp_path: Path) -> None:
    files = dict(SMALL)
    files["purposes.toml"] = SMALL["purposes.toml"].replace(
        'categories = ["email"]', 'categories = ["email", "shoe_size"]'
    )
    policy = load_policy(write_policy(tmp_path, files))
    rules = {f.rule for f in lint(policy) if f.code == "category_unused"}
    assert rules == {"category.receipt"}


def test_a_retention_period_no_date_can_carry_is_an_error(tmp_path: Path) -> None:
    """keep = "P8000Y" would fail every decision that weighs it: lint says so first."""
    folder = tmp_path / "flexioffices"
    shutil.copytree(ROOT / "rules" / "flexioffices", folder)
    retention = folder / "retention.toml"
    text = retention.read_text(encoding="utf-8")
    retention.write_text(text.replace('keep = "P12M"', 'keep = "P8000Y"'), encoding="utf-8")
    findings = [f for f in lint(load_policy(folder)) if f.code == "period_out_of_range"]
    assert [(f.rule, f.severity) for f in findings] == [("retention.cookies", "error")]
    assert "P8000Y" in findings[0].message and "9999" in findings[0].message
    assert not [f for f in lint(load_policy("flexioffices")) if f.code == "period_out_of_range"]

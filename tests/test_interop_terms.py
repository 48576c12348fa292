"""Lint checks every W3C DPV term of a policy against the packaged DPV 2.3 term list."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairproc import lint, load_policy
from fairproc.interop.terms import DPV_NAMESPACES, dpv_iri, dpv_terms, suggest_dpv
from fairproc.model import BASIS_DPV
from helpers import ACME, write_policy

SHARED_TERM_LIST = Path("/work/shared/data/dpv-2.3-terms.txt")


def test_the_packaged_term_list_is_dpv_2_3() -> None:
    terms = dpv_terms()
    assert len(terms) == 1930
    # classes and properties of each vocabulary the list covers
    for term in ("dpv:DataProcessor", "dpv:hasPurpose", "pd:EmailAddress", "eu-gdpr:A15"):
        assert term in terms
    assert {t.partition(":")[0] for t in terms} == set(DPV_NAMESPACES)
    assert "dpv:Processor" not in terms


@pytest.mark.skipif(not SHARED_TERM_LIST.exists(), reason="the shared copy is not on this machine")
def test_the_packaged_term_list_is_the_shared_one() -> None:
    lines = SHARED_TERM_LIST.read_text(encoding="utf-8").splitlines()
    assert dpv_terms() == {line for line in lines if line and not line.startswith("#")}


def test_the_shipped_policy_uses_no_unknown_dpv_term() -> None:
    findings = lint(load_policy("flexioffices"))
    assert [f for f in findings if f.code == "dpv_term_unknown"] == []
    assert [f for f in lint(load_policy(ACME)) if f.code == "dpv_term_unknown"] == []


# A policy using the three wrong terms the shipped policy once used
WRONG_TERMS = {
    "data.toml": """
        [category.email]
        title = "Email"
        dpv = "pd:EmailAddress"
        clause = "your email"

        [category.employer]
        title = "Employer"
        dpv = "pd:Employer"
        clause = "who you work for"

        [source.signup]
        title = "Sign-up"
        categories = ["email", "employer"]
        clause = "when you sign up"
    """,
    "sharing.toml": """
        [recipient.mailer]
        title = "Mailer"
        dpv = "dpv:Processor"
        categories = ["email"]
        clause = "our mailer"

        [safeguard.sccs]
        title = "SCCs"
        dpv = "dpv:StandardContractualClauses"
        clause = "standard clauses"
    """,
}


def test_an_unknown_dpv_term_is_a_finding_with_the_nearest_real_one(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, WRONG_TERMS))
    unknown = {f.rule: f for f in lint(policy) if f.code == "dpv_term_unknown"}
    assert set(unknown) == {"recipient.mailer", "safeguard.sccs", "category.employer"}
    mailer = unknown["recipient.mailer"]
    assert mailer.severity == "warning"
    assert mailer.clause == "our mailer"
    assert "dpv:Processor is not a W3C DPV 2.3 term" in mailer.message
    assert "did you mean dpv:DataProcessor" in mailer.message
    assert "did you mean eu-gdpr:StandardContractualClauses" in unknown["safeguard.sccs"].message
    assert "pd:Employer" in unknown["category.employer"].message


@pytest.mark.parametrize(
    ("unknown", "first"),
    [
        ("dpv:Processor", "dpv:DataProcessor"),  # the same name, qualified
        ("dpv:StandardContractualClauses", "eu-gdpr:StandardContractualClauses"),  # elsewhere
        ("dpv:DirectMarketting", "dpv:DirectMarketing"),  # a misspelling
        ("pd:Emailaddress", "pd:EmailAddress"),
    ],
)
def test_suggestions_put_what_the_author_meant_first(unknown: str, first: str) -> None:
    suggestions = suggest_dpv(unknown)
    assert suggestions[0] == first
    assert all(s in dpv_terms() for s in suggestions)


def test_no_suggestion_for_nothing_alike() -> None:
    assert suggest_dpv("dpv:Zzzzqqqq") == []


def test_every_lawful_basis_term_of_the_model_is_a_dpv_term() -> None:
    assert {basis: term in dpv_terms() for basis, term in BASIS_DPV.items()} == dict.fromkeys(
        BASIS_DPV, True
    )


def test_iris_expand_by_the_list_namespaces() -> None:
    assert dpv_iri("pd:EmailAddress") == "https://w3id.org/dpv/pd#EmailAddress"
    assert dpv_iri("eu-gdpr:A15") == "https://w3id.org/dpv/legal/eu/gdpr#A15"

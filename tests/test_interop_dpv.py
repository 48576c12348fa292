"""fairproc export dpv: the policy as W3C DPV JSON-LD, read back by a real RDF store (rdflib).

Every question is asked of the exported graph in SPARQL and answered again from the Policy
object itself; the two must agree, on the shipped policy and on a second one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairproc import Policy, load_policy
from fairproc.cli import main
from fairproc.errors import PolicyError
from fairproc.interop.dpv import default_base, dumps, export_dpv
from fairproc.interop.terms import DPV_NAMESPACES, dpv_terms
from fairproc.model import BASIS_DPV
from helpers import ACME, write_policy
from test_interop_terms import WRONG_TERMS

rdflib = pytest.importorskip("rdflib")

PREFIXES = """
PREFIX dpv: <https://w3id.org/dpv#>
PREFIX pd: <https://w3id.org/dpv/pd#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
"""
SKOS = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")


def _duration(text: str) -> object:
    return rdflib.Literal(text, datatype=rdflib.XSD.duration).toPython()


def graph_of(policy: Policy) -> rdflib.Graph:
    return rdflib.Graph().parse(data=dumps(export_dpv(policy)), format="json-ld")


def ask(graph: rdflib.Graph, query: str) -> set[tuple[str, ...]]:
    return {tuple(str(v) for v in row) for row in graph.query(PREFIXES + query)}


@pytest.fixture(scope="module", params=["flexioffices", "acme"])
def policy(request: pytest.FixtureRequest) -> Policy:
    return load_policy("flexioffices" if request.param == "flexioffices" else ACME)


@pytest.fixture(scope="module")
def graph(policy: Policy) -> rdflib.Graph:
    return graph_of(policy)


def test_the_document_parses_into_one_process_per_purpose_basis_and_source(
    policy: Policy, graph: rdflib.Graph
) -> None:
    expected = {
        f"{purpose.id}/{index}/{source}"
        for purpose in policy.purposes.values()
        for index, grant in enumerate(purpose.bases)
        for source in (policy.sources if grant.sources is None else grant.sources)
    }
    found = ask(
        graph, "SELECT ?id WHERE { ?p a dpv:Process ; dct:identifier ?id ; dpv:hasLegalBasis ?b }"
    )
    assert {row[0] for row in found} == expected
    disclosures = ask(
        graph,
        "SELECT ?id WHERE { ?p a dpv:Process ; dpv:hasProcessing dpv:Disclose ; "
        "dpv:hasRecipient/dct:identifier ?id }",
    )
    assert {row[0] for row in disclosures} == set(policy.recipients)


def test_which_purposes_rest_on_legitimate_interests(policy: Policy, graph: rdflib.Graph) -> None:
    answer = ask(
        graph,
        """SELECT DISTINCT ?purpose WHERE {
             ?process dpv:hasPurpose ?p ; dpv:hasLegalBasis dpv:LegitimateInterest .
             ?p dct:identifier ?purpose }""",
    )
    expected = {
        p.id
        for p in policy.purposes.values()
        if any(g.basis == "legitimate_interests" for g in p.bases)
    }
    assert expected, "the policy has legitimate-interests purposes to find"
    assert {row[0] for row in answer} == expected


def test_which_recipients_receive_email_addresses(policy: Policy, graph: rdflib.Graph) -> None:
    answer = ask(
        graph,
        """SELECT DISTINCT ?recipient WHERE {
             ?disclosure dpv:hasProcessing dpv:Disclose ; dpv:hasRecipient ?r ;
                         dpv:hasPersonalData ?data .
             ?data a pd:EmailAddress .
             ?r dct:identifier ?recipient }""",
    )
    email = {c.id for c in policy.categories.values() if c.dpv == "pd:EmailAddress"}
    expected = {
        r.id
        for r in policy.recipients.values()
        if r.categories is None or email & set(r.categories)
    }
    assert expected and expected != set(policy.recipients), "some do, some do not"
    assert {row[0] for row in answer} == expected


def test_which_recipients_are_abroad_and_on_which_safeguards(
    policy: Policy, graph: rdflib.Graph
) -> None:
    answer = ask(
        graph,
        """SELECT ?recipient ?country ?safeguard WHERE {
             ?disclosure dpv:hasProcessing dpv:Disclose ; dpv:hasRecipient ?r ;
                         dpv:hasThirdCountry ?c .
             ?r dct:identifier ?recipient .
             ?c skos:prefLabel ?country .
             OPTIONAL { ?disclosure dpv:hasTechnicalOrganisationalMeasure ?s .
                        ?s dct:identifier ?safeguard } }""",
    )
    expected = {
        (r.id, r.location, s)
        for r in policy.recipients.values()
        if r.location is not None and r.location not in policy.adequate_locations
        for s in r.safeguards
    }
    assert expected
    assert answer == expected


def test_how_long_each_source_is_kept(policy: Policy, graph: rdflib.Graph) -> None:
    for source in policy.sources:
        answer = ask(
            graph,
            f"""SELECT DISTINCT ?rule ?period WHERE {{
                 ?process dpv:hasDataSource ?s ; dpv:hasStorageCondition ?storage .
                 ?s dct:identifier "{source}" .
                 ?storage dct:identifier ?rule .
                 OPTIONAL {{ ?storage dpv:hasDuration ?d . ?d rdf:value ?period }} }}""",
        )
        covered = any(
            g.sources is None or source in g.sources
            for p in policy.purposes.values()
            for g in p.bases
        )
        expected = {
            (r.id, None if r.keep is None else _duration(str(r.keep)))
            for r in policy.retention
            if r.applies_to == "records" and (r.sources is None or source in r.sources)
        }
        # compared as durations: rdflib reads "P12M" back as the equal "P1Y"
        found = {(rule, None if period == "None" else _duration(period)) for rule, period in answer}
        assert found == (expected if covered else set())


def test_each_rule_carries_the_notice_words(policy: Policy, graph: rdflib.Graph) -> None:
    base = default_base(policy)
    items = [
        *(("category", c.id, c.clause) for c in policy.categories.values()),
        *(("purpose", p.id, p.clause) for p in policy.purposes.values()),
        *(("recipient", r.id, r.clause) for r in policy.recipients.values()),
        *(("safeguard", s.id, s.clause) for s in policy.safeguards.values()),
        *(("retention", r.id, r.clause) for r in policy.retention),
    ]
    for kind, ident, clause in items:
        node = rdflib.URIRef(f"{base}{kind}/{ident}")
        assert (node, SKOS.note, rdflib.Literal(clause)) in graph, (kind, ident)
    for purpose in policy.purposes.values():
        for index, grant in enumerate(purpose.bases):
            for source in policy.sources if grant.sources is None else grant.sources:
                node = rdflib.URIRef(f"{base}process/{purpose.id}/{index}/{source}")
                assert (node, SKOS.note, rdflib.Literal(grant.clause)) in graph
                assert (
                    node,
                    rdflib.URIRef("https://w3id.org/dpv#hasLegalBasis"),
                    rdflib.URIRef(BASIS_DPV[grant.basis].replace("dpv:", DPV_NAMESPACES["dpv"])),
                ) in graph


def test_every_dpv_term_in_the_document_is_a_dpv_2_3_term(graph: rdflib.Graph) -> None:
    by_namespace = {iri: prefix for prefix, iri in DPV_NAMESPACES.items()}
    used = set()
    for triple in graph:
        for term in triple:
            if not isinstance(term, rdflib.URIRef):
                continue
            for namespace, prefix in by_namespace.items():
                if str(term).startswith(namespace):
                    used.add(f"{prefix}:{str(term)[len(namespace) :]}")
    assert used
    assert used - dpv_terms() == set()


def test_data_subjects_come_from_the_policy_interop_file() -> None:
    graph = graph_of(load_policy("flexioffices"))
    answer = ask(
        graph,
        """SELECT DISTINCT ?source ?subject WHERE {
             ?process dpv:hasDataSource ?s ; dpv:hasDataSubject ?d .
             ?s dct:identifier ?source . ?d dct:identifier ?subject }""",
    )
    assert ("website_visit", "website_visitor") in answer
    assert ("quick_quote", "customer") in answer
    assert ("website_visit", "customer") not in answer
    subject_types = ask(graph, "SELECT ?t WHERE { ?d dct:identifier 'customer' ; a ?t }")
    assert ("https://w3id.org/dpv#Customer",) in subject_types


def test_a_policy_with_an_unknown_dpv_term_is_refused(tmp_path: Path) -> None:
    folder = write_policy(tmp_path, WRONG_TERMS)
    with pytest.raises(PolicyError, match=r"dpv:Processor is not a W3C DPV 2.3 term") as caught:
        export_dpv(load_policy(folder))
    assert {p.path for p in caught.value.problems} == {
        ("category", "employer", "dpv"),
        ("recipient", "mailer", "dpv"),
        ("safeguard", "sccs", "dpv"),
    }


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "policy.jsonld"
    result = CliRunner().invoke(
        main, ["export", "dpv", "flexioffices", "-o", str(out), "--base", "https://example.org/"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["@context"]["fp"] == "https://example.org/"
    graph = rdflib.Graph().parse(data=out.read_text(encoding="utf-8"), format="json-ld")
    assert (rdflib.URIRef("https://example.org/purpose/analytics"), None, None) in graph
    assert [p.name for p in tmp_path.iterdir()] == ["policy.jsonld"]  # no temporary left


def test_the_command_refuses_an_unknown_policy() -> None:
    result = CliRunner().invoke(main, ["export", "dpv", "no_such_policy"])
    assert result.exit_code == 2
    assert "no policy named 'no_such_policy'" in result.output


def test_week_periods_are_written_as_days() -> None:
    # xsd:duration has no weeks
    from fairproc.clock import Period
    from fairproc.interop.dpv import _xsd_duration

    assert _xsd_duration(Period.parse("P2W")) == "P14D"
    assert _xsd_duration(Period.parse("P1Y2W3D")) == "P1Y17D"
    assert _xsd_duration(Period.parse("P10Y")) == "P10Y"

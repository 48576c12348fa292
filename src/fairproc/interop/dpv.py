"""A policy as W3C Data Privacy Vocabulary (DPV 2.3) JSON-LD.

The document is a ``@graph`` of nodes under one inline ``@context`` (no network needed to read
it). Each policy item is a node whose ``dct:identifier`` is its fairproc id, typed with the
DPV class of its kind and, where the policy gives one, its own ``dpv`` term:

- one ``dpv:Process`` per purpose, lawful-basis grant and source (DPV 2.x's equivalent of the
  ``dpv:PersonalDataHandling`` of DPV 1, which DPV 2.3 marks "sunset" and says to replace by
  ``dpv:Process``), with its purpose, data source, personal data, legal basis, data subjects,
  the recipients that may receive its data, their third countries and safeguards, its storage
  conditions, and the grant's clause as ``skos:note``;
- one more ``dpv:Process`` per recipient, with ``dpv:hasProcessing dpv:Disclose``: exactly the
  categories that recipient may see, where it is, and the safeguards it relies on;
- the retention rules as ``dpv:StorageDuration`` nodes, the safeguards as
  ``dpv:SafeguardForDataTransfer``, the controller as ``dpv:DataController``.

Every rule's clause is its node's ``skos:note``; the policy's own readings (``note``) and what
DPV cannot say (conditions, validity dates, a basis the notice does not state) are
``skos:editorialNote`` or ``skos:scopeNote``. Conditions stay text: DPV has no condition
language. docs/interop.md says what maps to what and what is lost.

A policy whose ``dpv`` terms DPV 2.3 does not define is refused (``fairproc lint`` names them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from fairproc.clock import Period
from fairproc.errors import PolicyError, Problem
from fairproc.interop.flows import (
    describe_retention,
    grant_sources,
    is_transfer,
    processing_categories,
    received_categories,
    recipients_of,
    retention_of,
)
from fairproc.interop.mapping import Interop, load_interop
from fairproc.interop.terms import DPV_NAMESPACES, DPV_VERSION, unknown_dpv_terms
from fairproc.model import BASIS_DPV, Policy, Purpose, Recipient, RetentionRule

CONTEXT: dict[str, str] = {
    **DPV_NAMESPACES,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

Node = dict[str, Any]


def default_base(policy: Policy) -> str:
    """Where the policy's own nodes live unless the caller names a base IRI."""
    return f"urn:fairproc:{policy.id}:"


def export_dpv(policy: Policy, *, base: str | None = None) -> dict[str, Any]:
    """``policy`` as a DPV JSON-LD document (a dict ready for :func:`json.dumps`)."""
    _refuse_unknown_terms(policy)
    return _Exporter(policy, load_interop(policy), base or default_base(policy)).document()


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _refuse_unknown_terms(policy: Policy) -> None:
    problems = [
        Problem(
            f"{item.dpv} is not a W3C DPV {DPV_VERSION} term (fairproc lint suggests the nearest)",
            file=policy.path,
            path=(kind, ident, "dpv"),
        )
        for kind, ident, item in unknown_dpv_terms(policy)
    ]
    if problems:
        raise PolicyError(problems)


class _Described(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def clause(self) -> str: ...
    @property
    def note(self) -> str | None: ...
    @property
    def dpv(self) -> str | None: ...


def _described(item: _Described) -> dict[str, Any]:
    """What every exported item says of itself: its title, the notice's words, its reading."""
    return {"skos:prefLabel": item.title, "skos:note": item.clause, "skos:editorialNote": item.note}


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _refs(iris: Iterable[str]) -> list[dict[str, str]]:
    return [_ref(i) for i in iris]


def _xsd_duration(keep: Period) -> str:
    # xsd:duration has no weeks: P2W is P14D there
    if not keep.weeks:
        return str(keep)
    return str(attrs.evolve(keep, weeks=0, days=keep.days + 7 * keep.weeks))


class _Exporter:
    def __init__(self, policy: Policy, interop: Interop, base: str):
        self.policy = policy
        self.interop = interop
        self.base = base
        self.nodes: list[Node] = []

    def iri(self, kind: str, ident: str) -> str:
        return f"{self.base}{kind}/{ident}"

    def add(
        self, kind: str, ident: str, types: Iterable[str | None], values: Mapping[str, Any]
    ) -> str:
        """A node for ``ident`` of ``kind``, typed ``types``; empty values are left out."""
        iri = self.iri(kind, ident)
        node: Node = {"@id": iri, "@type": [t for t in types if t is not None]}
        node["dct:identifier"] = ident
        node.update({k: v for k, v in values.items() if v not in (None, [])})
        self.nodes.append(node)
        return iri

    # -- the document --

    def document(self) -> dict[str, Any]:
        p = self.policy
        controller = self.add(
            "controller",
            "controller",
            ["dpv:DataController"],
            {
                "dpv:hasName": p.info.controller.name,
                "skos:note": p.info.controller.clause,
            },
        )
        described: list[tuple[str, str, Mapping[str, _Described]]] = [
            ("category", "dpv:PersonalData", p.categories),
            ("source", "dpv:DataSource", p.sources),
            ("purpose", "dpv:Purpose", p.purposes),
            ("subject", "dpv:DataSubject", self.interop.subjects or {}),
        ]
        for kind, dpv_class, items in described:
            for item in items.values():
                self.add(kind, item.id, [dpv_class, item.dpv], _described(item))
        for safeguard in p.safeguards.values():
            validity = []
            if safeguard.valid_from is not None:
                validity.append(f"valid from {safeguard.valid_from.isoformat()}")
            if safeguard.valid_until is not None:
                validity.append(f"invalid from {safeguard.valid_until.isoformat()}")
            if safeguard.invalidated_by:
                validity.append(f"invalidated by {safeguard.invalidated_by}")
            validity.extend(
                f"succeeded by {s.name} (from {s.valid_from.isoformat()})"
                for s in safeguard.successors
            )
            self.add(
                "safeguard",
                safeguard.id,
                ["dpv:SafeguardForDataTransfer", safeguard.dpv],
                {
                    **_described(safeguard),
                    "skos:scopeNote": "; ".join(validity) or None,
                },
            )
        for rule in p.retention:
            self.add(
                "retention",
                rule.id,
                ["dpv:StorageDuration"],
                {
                    "dpv:hasDuration": self.duration(rule),
                    "skos:note": rule.clause,
                    "skos:editorialNote": rule.note,
                },
            )
        for recipient in p.recipients.values():
            self.recipient(recipient, controller)
        for purpose in p.purposes.values():
            for index, grant in enumerate(purpose.bases):
                for source_id in grant_sources(p, grant):
                    self.process(purpose, index, source_id, controller)
        return {"@context": {**CONTEXT, "fp": self.base}, "@graph": self.nodes}

    @staticmethod
    def duration(rule: RetentionRule) -> Node:
        if rule.forever:
            node: Node = {"@type": "dpv:EndlessDuration"}
        elif rule.review or rule.keep is None:
            node = {"@type": "dpv:IndeterminateDuration"}
        else:
            node = {
                "@type": "dpv:TemporalDuration",
                "rdf:value": {"@value": _xsd_duration(rule.keep), "@type": "xsd:duration"},
            }
        description = describe_retention(rule)
        if rule.applies_to != "records":
            description += f" (the {rule.applies_to} list)"
        node["dct:description"] = description
        return node

    def located(self, recipient: Recipient) -> tuple[list[str], list[str]]:
        """The recipient's third countries and the safeguards it relies on there."""
        if not is_transfer(self.policy, recipient):
            return [], []
        assert recipient.location is not None  # a transfer has a place
        country = self.iri("country", recipient.location)
        if not any(n["@id"] == country for n in self.nodes):
            self.nodes.append(
                {
                    "@id": country,
                    "@type": ["dpv:ThirdCountry"],
                    "skos:prefLabel": recipient.location,
                }
            )
        return [country], [self.iri("safeguard", s) for s in recipient.safeguards]

    def recipient(self, recipient: Recipient, controller: str) -> None:
        p = self.policy
        scope = []
        if recipient.when is not None:
            scope.append(f"receives data only when {recipient.when.text}")
        if recipient.requires_purpose is not None:
            scope.append(f"only while {recipient.requires_purpose} is permitted")
        location = []
        if recipient.location is not None and recipient.location in p.adequate_locations:
            location = [{"@type": "dpv:Location", "skos:prefLabel": recipient.location}]
        iri = self.add(
            "recipient",
            recipient.id,
            ["dpv:Recipient", recipient.dpv],
            {
                **_described(recipient),
                "skos:scopeNote": "; ".join(scope) or None,
                "dpv:hasLocation": location,
            },
        )
        countries, safeguards = self.located(recipient)
        categories = received_categories(p, recipient)
        self.add(
            "disclosure",
            recipient.id,
            ["dpv:Process"],
            {
                "skos:prefLabel": f"Disclosure to {recipient.title}",
                "skos:note": recipient.clause,
                "dpv:hasDataController": _ref(controller),
                "dpv:hasProcessing": _ref("dpv:Disclose"),
                "dpv:hasRecipient": _ref(iri),
                "dpv:hasPersonalData": _refs(self.iri("category", c) for c in categories),
                "dpv:hasPurpose": (
                    _ref(self.iri("purpose", recipient.requires_purpose))
                    if recipient.requires_purpose is not None
                    else None
                ),
                "dpv:hasThirdCountry": _refs(countries),
                "dpv:hasTechnicalOrganisationalMeasure": _refs(safeguards),
            },
        )

    def process(self, purpose: Purpose, index: int, source: str, controller: str) -> None:
        p = self.policy
        grant = purpose.bases[index]
        categories = processing_categories(p, purpose, [source])
        recipients = recipients_of(p, purpose, categories)
        countries: list[str] = []
        safeguards: list[str] = []
        for r in recipients:
            found_countries, found_safeguards = self.located(r)
            countries += [c for c in found_countries if c not in countries]
            safeguards += [s for s in found_safeguards if s not in safeguards]
        scope = []
        if grant.when is not None:
            scope.append(f"only when {grant.when.text}")
        if not grant.stated:
            scope.append(f"the notice states no lawful basis; the policy reads {grant.basis}")
        self.add(
            "process",
            f"{purpose.id}/{index}/{source}",
            ["dpv:Process"],
            {
                "skos:prefLabel": f"{purpose.title}: {p.sources[source].title}",
                "skos:note": grant.clause,
                "skos:editorialNote": grant.note,
                "skos:scopeNote": "; ".join(scope) or None,
                "dpv:hasDataController": _ref(controller),
                "dpv:hasPurpose": _ref(self.iri("purpose", purpose.id)),
                "dpv:hasDataSource": _ref(self.iri("source", source)),
                "dpv:hasPersonalData": _refs(self.iri("category", c) for c in categories),
                "dpv:hasLegalBasis": _ref(BASIS_DPV[grant.basis]),
                "dpv:hasDataSubject": _refs(
                    self.iri("subject", s.id) for s in self.interop.subjects_of(source)
                ),
                "dpv:hasRecipient": _refs(self.iri("recipient", r.id) for r in recipients),
                "dpv:hasThirdCountry": _refs(countries),
                "dpv:hasTechnicalOrganisationalMeasure": _refs(safeguards),
                "dpv:hasStorageCondition": _refs(
                    self.iri("retention", r.id) for r in retention_of(p, [source])
                ),
            },
        )

"""A policy as a Fides system manifest (fideslang), in YAML.

One ``system`` for the policy, and one privacy declaration per purpose and lawful basis (a
Fides declaration holds one legal basis; a purpose run on two bases has two declarations, each
naming its basis). A declaration states:

- ``data_use``: the purpose's fideslang data use, from the policy's ``interop/fides.toml``;
- ``data_categories``: the fideslang keys of the categories the purpose uses from its sources'
  records; a category the table declares unmapped is left out, and the manifest's opening
  comments list every one left out, with the table's reason;
- ``data_subjects``: the fideslang keys of the subjects ``interop/subjects.toml`` gives for
  those sources;
- ``legal_basis_for_processing`` (fideslang's Art 6 names), not flexible: the notice fixes it;
- ``retention_period``: the retention rules covering those sources, in words;
- ``data_shared_with_third_parties``, ``third_parties`` (the recipients, with where they are)
  and ``shared_categories`` (the fideslang keys of what they may see).

The system states the controller (``legal_name``, ``legal_address``, ``dpo``), whether data
goes abroad and on what (``does_international_transfers``, ``legal_basis_for_transfers``: the
safeguards' titles), and cookie use. fideslang's own models validate the result in the tests
(``System.model_validate``). docs/interop.md says what maps to what and what is lost.

The export refuses a policy whose table is missing, leaves an id out, or names a key not in
fideslang's default taxonomy: ``fairproc lint`` lists each, with suggestions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fairproc.errors import PolicyError, Problem
from fairproc.interop import yamlout
from fairproc.interop.flows import (
    describe_retention,
    grant_sources,
    is_transfer,
    processing_categories,
    recipients_of,
    retention_of,
)
from fairproc.interop.mapping import FIDES_FILE, FIDES_TABLES, FidesEntry, Interop, load_interop
from fairproc.interop.terms import fides_keys
from fairproc.model import Policy, Purpose, Recipient

# fideslang's LegalBasisForProcessingEnum values (GDPR Art 6), by fairproc basis
LEGAL_BASIS = {
    "consent": "Consent",
    "contract": "Contract",
    "legal_obligation": "Legal obligations",
    "vital_interests": "Vital interests",
    "public_task": "Public interest",
    "legitimate_interests": "Legitimate interests",
}
BASIS_TITLES = {
    "consent": "consent",
    "contract": "contract",
    "legal_obligation": "legal obligation",
    "vital_interests": "vital interests",
    "public_task": "public task",
    "legitimate_interests": "legitimate interests",
}


def system_key(policy: Policy) -> str:
    """A fides_key for the policy's system (fideslang keys: letters, digits, ``._<>-``)."""
    return re.sub(r"[^A-Za-z0-9_.<>-]", "_", policy.id)


def export_fides(policy: Policy) -> tuple[dict[str, Any], list[str]]:
    """The manifest (``{"system": [...]}``) and the lines saying what it leaves out."""
    interop = load_interop(policy)
    table = _checked_table(policy, interop)
    return _Exporter(policy, interop, table).manifest()


def dumps(policy: Policy) -> str:
    """The manifest as YAML, after comments naming the policy and what it leaves out."""
    manifest, left_out = export_fides(policy)
    comments = [
        f"Fides system manifest of the fairproc policy {policy.id} ({policy.info.title}),",
        "in fideslang's default taxonomy. Written by fairproc export fides.",
    ]
    if left_out:
        comments.append("Left out, as the policy's interop/fides.toml says (no fideslang key):")
        comments.extend(f"  {line}" for line in left_out)
    return yamlout.dump(manifest, comments)


def _checked_table(policy: Policy, interop: Interop) -> Mapping[str, Mapping[str, FidesEntry]]:
    if interop.fides is None:
        raise PolicyError(
            [
                Problem(
                    f"no Fides mapping: the policy folder needs interop/{FIDES_FILE} (see "
                    "docs/interop.md)",
                    file=policy.path,
                )
            ]
        )
    items: dict[str, Mapping[str, Any]] = {
        "category": policy.categories,
        "purpose": policy.purposes,
    }
    problems = []
    for table, kind in FIDES_TABLES.items():
        for ident in items[table]:
            entry = interop.fides[table].get(ident)
            if entry is None:
                problems.append(
                    Problem(
                        f"{table} {ident} has no entry: give its fideslang {kind} key, or say "
                        "why there is none",
                        file=interop.fides_file,
                        path=(table,),
                    )
                )
            elif entry.key is not None and entry.key not in fides_keys(kind):
                problems.append(
                    Problem(
                        f"{entry.key} is not a {kind} of fideslang's default taxonomy "
                        "(fairproc lint suggests the nearest)",
                        file=interop.fides_file,
                        path=(table, ident),
                        line=entry.line,
                    )
                )
    for subject in (interop.subjects or {}).values():
        if subject.fides is not None and subject.fides not in fides_keys("data_subject"):
            problems.append(
                Problem(
                    f"{subject.fides} is not a data_subject of fideslang's default taxonomy",
                    file=interop.subjects_file,
                    path=("subject", subject.id, "fides"),
                )
            )
    if problems:
        raise PolicyError(problems)
    return interop.fides


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class _Exporter:
    def __init__(
        self, policy: Policy, interop: Interop, table: Mapping[str, Mapping[str, FidesEntry]]
    ):
        self.policy = policy
        self.interop = interop
        self.table = table

    def category_keys(self, categories: list[str]) -> list[str]:
        entries = self.table["category"]
        return _unique([k for c in categories if (k := entries[c].key) is not None])

    def manifest(self) -> tuple[dict[str, Any], list[str]]:
        p = self.policy
        declarations = []
        left_out: list[str] = []
        for purpose in p.purposes.values():
            entry = self.table["purpose"][purpose.id]
            if entry.key is None:
                left_out.append(f"purpose {purpose.id}: {entry.unmapped}")
                continue
            bases = _unique([g.basis for g in purpose.bases])
            for basis in bases:
                declarations.append(self.declaration(purpose, entry.key, basis, len(bases) > 1))
        for ident, entry in self.table["category"].items():
            if entry.key is None:
                left_out.append(f"category {ident}: {entry.unmapped}")
        transfers = [r for r in p.recipients.values() if is_transfer(p, r)]
        controller = p.info.controller
        system: dict[str, Any] = {
            "fides_key": system_key(p),
            "name": p.info.title,
            "description": f"The processing the notice {p.info.title!r} declares, as the "
            f"fairproc policy {p.id}.",
            "system_type": "Service",
            "legal_name": controller.name,
            "legal_address": ", ".join(controller.address) or None,
            "responsibility": ["Controller"],
            "dpo": (
                ", ".join(x for x in (p.info.dpo.name, p.info.dpo.phone, p.info.dpo.email) if x)
                if p.info.dpo is not None
                else None
            ),
            "processes_personal_data": True,
            "does_international_transfers": bool(transfers),
            "legal_basis_for_transfers": _unique(
                [self.safeguard(s) for r in transfers for s in r.safeguards]
            ),
            "uses_cookies": any(purpose.cookies for purpose in p.purposes.values()),
            "privacy_declarations": declarations,
        }
        return {"system": [{k: v for k, v in system.items() if v is not None}]}, left_out

    def declaration(self, purpose: Purpose, data_use: str, basis: str, named_basis: bool) -> Any:
        p = self.policy
        grants = [g for g in purpose.bases if g.basis == basis]
        sources = _unique([s for g in grants for s in grant_sources(p, g)])
        categories = processing_categories(p, purpose, sources)
        recipients = recipients_of(p, purpose, categories)
        subjects = _unique(
            [
                s.fides
                for source in sources
                for s in self.interop.subjects_of(source)
                if s.fides is not None
            ]
        )
        retention = [f"{r.id}: {describe_retention(r)}" for r in retention_of(p, sources)]
        shared = self.category_keys([c for r in recipients for c in self.received(r, categories)])
        return {
            "name": purpose.title + (f" ({BASIS_TITLES[basis]})" if named_basis else ""),
            "data_use": data_use,
            "data_categories": self.category_keys(categories),
            "data_subjects": subjects,
            "legal_basis_for_processing": LEGAL_BASIS[basis],
            "flexible_legal_basis_for_processing": False,
            "retention_period": "; ".join(retention) or "no retention rule covers these records",
            "data_shared_with_third_parties": bool(recipients),
            "third_parties": "; ".join(self.third_party(r) for r in recipients) or None,
            "shared_categories": shared,
        }

    @staticmethod
    def received(recipient: Recipient, categories: list[str]) -> list[str]:
        if recipient.categories is None:
            return categories
        return [c for c in categories if c in recipient.categories]

    def third_party(self, recipient: Recipient) -> str:
        return recipient.title + (f" ({recipient.location})" if recipient.location else "")

    def safeguard(self, ident: str) -> str:
        """A safeguard's title, with the date it stopped being valid when it has one."""
        safeguard = self.policy.safeguards[ident]
        if safeguard.valid_until is None:
            return safeguard.title
        return f"{safeguard.title} (invalid from {safeguard.valid_until.isoformat()})"

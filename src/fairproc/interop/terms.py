"""The two outside vocabularies fairproc checks and exports: their term lists, and suggestions.

Both lists are packaged data (``data/``, with their sources and licences in ``data/NOTICE.md``),
read once, so lint and the exports never need the network or the vocabularies' own packages:

- every class and property of the W3C Data Privacy Vocabulary (DPV) 2.3, as ``prefix:Name``;
- the keys of fideslang's default taxonomy (data categories, data uses, data subjects).

A term is known exactly as it is spelled there (DPV names are case-sensitive IRIs).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Protocol

from fairproc.model import Policy

DPV_VERSION = "2.3"
DPV_FILE = "dpv-2.3-terms.txt"
FIDES_FILE = "fideslang-default-taxonomy.txt"
FIDES_KINDS = ("data_category", "data_use", "data_subject")

# The namespaces of the prefixes the DPV term list uses (its header says the same).
DPV_NAMESPACES = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
    "eu-rights": "https://w3id.org/dpv/legal/eu/rights#",
    "legal-gb": "https://w3id.org/dpv/legal/gb#",
    "tech": "https://w3id.org/dpv/tech#",
}


def _lines(name: str) -> list[str]:
    text = (resources.files("fairproc.interop") / "data" / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@functools.cache
def dpv_terms() -> frozenset[str]:
    """Every class and property DPV 2.3 defines, as ``prefix:Name``."""
    return frozenset(_lines(DPV_FILE))


@functools.cache
def fides_keys(kind: str) -> frozenset[str]:
    """The keys of fideslang's default taxonomy of one kind (see :data:`FIDES_KINDS`)."""
    if kind not in FIDES_KINDS:
        raise ValueError(f"unknown fideslang kind {kind!r} (kinds: {', '.join(FIDES_KINDS)})")
    keys = set()
    for line in _lines(FIDES_FILE):
        line_kind, _, key = line.partition(" ")
        if line_kind == kind:
            keys.add(key)
    return frozenset(keys)


def dpv_iri(term: str) -> str:
    """The full IRI of a known DPV term (``pd:EmailAddress`` -> ``https://w3id.org/dpv/pd#EmailAddress``)."""
    prefix, _, name = term.partition(":")
    return DPV_NAMESPACES[prefix] + name


def suggest_dpv(term: str, n: int = 2) -> list[str]:
    """The real DPV terms nearest an unknown one, best first.

    Spelling distance alone suggests ``dpv:Process`` for ``dpv:Processor``; what a policy author
    usually means is the same name qualified in the same vocabulary (``dpv:DataProcessor``), or
    the same name in another DPV vocabulary (``eu-gdpr:StandardContractualClauses``), so those
    come first, then the nearest spellings in the same vocabulary, then in any.
    """
    terms = dpv_terms()
    prefix, _, name = term.partition(":")
    if not name:
        prefix, name = "", prefix
    is_class = name[:1].isupper()

    def local(t: str) -> str:
        return t.partition(":")[2]

    qualified = sorted(
        (
            t
            for t in terms
            if t.startswith(prefix + ":")
            and local(t) != name
            and local(t).endswith(name)
            and local(t)[:1].isupper() == is_class
        ),
        key=lambda t: (len(t), t),
    )
    elsewhere = sorted(t for t in terms if local(t) == name and t != term)
    same_vocabulary = sorted(t for t in terms if t.startswith(prefix + ":"))
    close = difflib.get_close_matches(term, same_vocabulary, n=n, cutoff=0.6)
    close += difflib.get_close_matches(term, sorted(terms), n=n, cutoff=0.6)
    ranked: list[str] = []
    # the best of each kind first, then the rest in the same order
    for candidate in (*qualified[:1], *elsewhere[:1], *close[:1], *qualified, *elsewhere, *close):
        if candidate not in ranked:
            ranked.append(candidate)
    return ranked[:n]


def suggest_fides(kind: str, key: str) -> list[str]:
    """The fideslang keys of ``kind`` nearest an unknown one, best first."""
    return difflib.get_close_matches(key, sorted(fides_keys(kind)), n=2, cutoff=0.6)


class _Termed(Protocol):
    @property
    def dpv(self) -> str | None: ...
    @property
    def clause(self) -> str: ...


def unknown_dpv_terms(
    policy: Policy, subjects: Mapping[str, _Termed] | None = None
) -> Iterator[tuple[str, str, _Termed]]:
    """(kind, id, item) of every item of ``policy`` (and of ``subjects``) whose ``dpv`` term
    DPV 2.3 does not define."""
    for kind, items in (
        ("category", policy.categories),
        ("source", policy.sources),
        ("purpose", policy.purposes),
        ("recipient", policy.recipients),
        ("safeguard", policy.safeguards),
        ("right", policy.rights),
        ("subject", subjects or {}),
    ):
        for ident, item in items.items():
            if item.dpv is not None and item.dpv not in dpv_terms():
                yield kind, ident, item

"""Findings about a policy itself: the gaps and legal risks in what the notice says.

A policy that loads is consistent; lint says whether it is sound. Each finding names its
severity, the rule it concerns and the notice's words, so it can be filed as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from fairproc.errors import PolicyError, ProblemsError, suggesting
from fairproc.interop.mapping import FIDES_TABLES, Interop, interop_folder, load_interop
from fairproc.interop.terms import (
    DPV_VERSION,
    fides_keys,
    suggest_dpv,
    suggest_fides,
    unknown_dpv_terms,
)
from fairproc.model import Policy
from fairproc.values import Value

SEVERITIES = ("info", "warning", "error")


@attrs.frozen(repr=False)
class LintFinding(Value):
    code: str
    severity: str  # info, warning or error
    message: str
    rule: str | None = None
    clause: str | None = None

    def __str__(self) -> str:
        where = f" [{self.rule}]" if self.rule else ""
        text = f"{self.severity}: {self.code}{where}: {self.message}"
        if self.clause:
            text += f'\n    notice: "{self.clause}"'
        return text


def at_least(findings: Iterable[LintFinding], severity: str) -> list[LintFinding]:
    floor = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= floor]


def lint(policy: Policy, at: dt.date | None = None) -> list[LintFinding]:
    """Every finding about ``policy``, most severe first.

    ``at``: judge safeguards as of this date; by default a safeguard that has an end date is
    treated as already invalid (lint is about the policy as it stands, not one moment).
    """
    out: list[LintFinding] = []
    add = out.append

    for source in policy.sources.values():
        if not source.categories:
            add(
                LintFinding(
                    "source_without_categories",
                    "warning",
                    f"source {source.id} ({source.title}) declares no categories: the "
                    "notice names it but not what it collects",
                    f"source.{source.id}",
                    source.clause,
                )
            )

    covered: set[str] = set()
    used: set[str] = set()
    for purpose in policy.purposes.values():
        for grant in purpose.bases:
            srcs = policy.sources if grant.sources is None else grant.sources
            covered.update(srcs)
            if grant.basis != "legal_obligation":
                for s in srcs:
                    cats = policy.sources[s].categories
                    used.update(
                        cats if purpose.categories is None else set(cats) & set(purpose.categories)
                    )
            if not grant.stated:
                add(
                    LintFinding(
                        "basis_not_stated",
                        "warning",
                        f"{purpose.id} for {', '.join(grant.sources or ['every source'])} records "
                        f"has no lawful basis in the notice; the policy reads {grant.basis}",
                        purpose.rule_id,
                        grant.clause,
                    )
                )
        if purpose.cookies and any(g.basis != "consent" for g in purpose.bases):
            if purpose.direct_marketing:
                add(
                    LintFinding(
                        "pecr_consent_required",
                        "warning",
                        f"{purpose.id} reads or stores tracking cookies on legitimate interests; "
                        "PECR regulation 6 asks for consent for cookies that are not strictly "
                        "necessary, and advertising cookies are not",
                        purpose.rule_id,
                        purpose.clause,
                    )
                )
            else:
                add(
                    LintFinding(
                        "pecr_consent_required",
                        "info",
                        f"{purpose.id} reads or stores cookies on legitimate interests; PECR "
                        "regulation 6 asks for consent unless an exemption applies (since the Data "
                        "(Use and Access) Act 2025, cookies for statistical purposes with clear "
                        "information and a simple way to refuse)",
                        purpose.rule_id,
                        purpose.clause,
                    )
                )

    for source in policy.sources.values():
        if source.categories and source.id not in covered:
            add(
                LintFinding(
                    "source_without_purpose",
                    "warning",
                    f"records from {source.id} serve no declared purpose",
                    f"source.{source.id}",
                    source.clause,
                )
            )
    collected = {c for s in policy.sources.values() for c in s.categories}
    for cat in sorted(collected - used):
        category = policy.categories[cat]
        add(
            LintFinding(
                "category_unused",
                "warning",
                f"category {cat} is collected but no purpose uses it",
                f"category.{cat}",
                category.clause,
            )
        )

    record_rules = [r for r in policy.retention if r.applies_to == "records"]
    for source in policy.sources.values():
        rules = [r for r in record_rules if r.sources is None or source.id in r.sources]
        own = [r for r in rules if r.sources is not None]
        if not own:
            add(
                LintFinding(
                    "no_retention_period",
                    "warning",
                    f"records from {source.id} have no retention rule of their own",
                    f"source.{source.id}",
                    source.clause,
                )
            )
    for rule in record_rules:
        if rule.review:
            add(
                LintFinding(
                    "no_retention_period",
                    "warning",
                    f"{', '.join(rule.sources or ['every'])} records: the notice declares "
                    "no retention period; they fall to review",
                    rule.id,
                    rule.clause,
                )
            )

    for recipient in policy.recipients.values():
        if recipient.location is None or recipient.location in policy.adequate_locations:
            continue
        if not recipient.safeguards:
            add(
                LintFinding(
                    "transfer_without_safeguard",
                    "error",
                    f"{recipient.id} receives data in {recipient.location} with no safeguard",
                    recipient.rule_id,
                    recipient.clause,
                )
            )
            continue
        valid = []
        for sid in recipient.safeguards:
            sg = policy.safeguards[sid]
            ok = sg.valid_on(at) if at is not None else sg.valid_until is None
            if ok:
                valid.append(sid)
                continue
            successors = "; ".join(
                f"{s.name} (from {s.valid_from.isoformat()})" for s in sg.successors
            )
            add(
                LintFinding(
                    "invalid_safeguard",
                    "warning",
                    f"{recipient.id} ({recipient.location}) relies on {sg.title}, "
                    + (
                        f"valid only from {sg.valid_from.isoformat()}"
                        if sg.valid_from is not None and at is not None and at < sg.valid_from
                        else f"invalid from {sg.valid_until.isoformat() if sg.valid_until else '?'}"
                    )
                    + (f" ({sg.invalidated_by})" if sg.invalidated_by else "")
                    + (f"; successors: {successors}" if successors else ""),
                    sg.rule_id,
                    sg.clause,
                )
            )
        if not valid:
            add(
                LintFinding(
                    "transfer_without_valid_safeguard",
                    "error",
                    f"every safeguard {recipient.id} relies on is invalid",
                    recipient.rule_id,
                    recipient.clause,
                )
            )

    # A period no date can carry (keep = "P8000Y") would fail every decision that weighs it:
    # tried from the start of this century, as a record collected then would be.
    since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    for rule in policy.retention:
        if rule.keep is None:
            continue
        try:
            rule.keep.add_to(since, policy.tz)
        except ProblemsError as exc:
            add(
                LintFinding(
                    "period_out_of_range",
                    "error",
                    f"keep = {rule.keep} cannot be counted from a record's date: "
                    + exc.problems[0].message,
                    rule.id,
                    rule.clause,
                )
            )

    used_bases = {g.basis for p in policy.purposes.values() for g in p.bases}
    for right in policy.rights.values():
        for basis in right.refers_to_bases:
            if basis not in used_bases:
                add(
                    LintFinding(
                        "basis_referred_unused",
                        "warning",
                        f"the {right.id} right refers to {basis}, but no purpose runs on {basis}",
                        right.rule_id,
                        right.clause,
                    )
                )

    for kind, items in (
        ("category", policy.categories),
        ("purpose", policy.purposes),
        ("right", policy.rights),
        ("recipient", policy.recipients),
    ):
        for ident, item in items.items():
            if getattr(item, "dpv", None) is None and not getattr(item, "about_others", False):
                add(
                    LintFinding(
                        "dpv_term_missing",
                        "info",
                        f"{kind} {ident} carries no W3C DPV term",
                        f"{kind}.{ident}",
                    )
                )

    try:
        interop = load_interop(policy)
    except PolicyError as exc:
        # a broken mapping file is a finding about the policy, not a reason to stop linting
        out.extend(
            LintFinding("interop_file_invalid", "error", str(problem)) for problem in exc.problems
        )
        out.extend(_unknown_dpv_terms(policy, Interop(None, None)))
    else:
        out.extend(_unknown_dpv_terms(policy, interop))
        out.extend(_interop_findings(policy, interop))
    out.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return out


def _unknown_dpv_terms(policy: Policy, interop: Interop) -> Iterator[LintFinding]:
    """Every ``dpv`` term of the policy and of its data subjects that DPV 2.3 does not define,
    with the nearest real ones."""
    for kind, ident, item in unknown_dpv_terms(policy, interop.subjects):
        term = str(item.dpv)
        nearest = suggest_dpv(term)
        yield LintFinding(
            "dpv_term_unknown",
            "warning",
            f"{kind} {ident}: {term} is not a W3C DPV {DPV_VERSION} term"
            + suggesting(nearest, quoted=False),
            f"{kind}.{ident}",
            item.clause,
        )


def _interop_findings(policy: Policy, interop: Interop) -> Iterator[LintFinding]:
    """The policy's ``interop/`` files: who its data subjects are, and its Fides keys."""
    folder = interop_folder(policy)
    where = f"{folder}/" if folder is not None else "interop/"
    if interop.subjects is None:
        yield LintFinding(
            "data_subjects_undeclared",
            "info",
            f"the policy names no data subjects ({where}subjects.toml): the DPV and Fides "
            "exports state none",
        )
    else:
        for ident, subject in interop.subjects.items():
            if subject.fides is not None and subject.fides not in fides_keys("data_subject"):
                yield _unknown_fides_key("subject", ident, "data_subject", subject.fides)
        for source in policy.sources.values():
            if not interop.subjects_of(source.id):
                yield LintFinding(
                    "data_subjects_undeclared",
                    "warning",
                    f"no data subject in {where}subjects.toml covers source {source.id}",
                    f"source.{source.id}",
                    source.clause,
                )
    if interop.fides is None:
        yield LintFinding(
            "fides_mapping_missing",
            "info",
            f"the policy has no Fides mapping ({where}fides.toml): fairproc export fides needs one",
        )
        return
    items: dict[str, Mapping[str, Any]] = {
        "category": policy.categories,
        "purpose": policy.purposes,
    }
    for table, kind in FIDES_TABLES.items():
        entries = interop.fides[table]
        for ident, item in items[table].items():
            entry = entries.get(ident)
            rule = f"{table}.{ident}"
            if entry is None:
                yield LintFinding(
                    "fides_not_mapped",
                    "warning",
                    f"{table} {ident} is missing from {where}fides.toml: give its fideslang "
                    f'{kind} key, or {{ unmapped = "why" }} where fideslang has none',
                    rule,
                    item.clause,
                )
            elif entry.key is None:
                yield LintFinding(
                    "fides_unmapped",
                    "info",
                    f"{table} {ident} has no fideslang {kind}: {entry.unmapped}; the Fides "
                    "export leaves it out",
                    rule,
                    item.clause,
                )
            elif entry.key not in fides_keys(kind):
                yield _unknown_fides_key(table, ident, kind, entry.key, item.clause)


def _unknown_fides_key(
    table: str, ident: str, kind: str, key: str, clause: str | None = None
) -> LintFinding:
    nearest = suggest_fides(kind, key)
    return LintFinding(
        "fides_key_unknown",
        "warning",
        f"{table} {ident}: {key} is not a {kind} of fideslang's default taxonomy"
        + suggesting(nearest, quoted=False),
        f"{table}.{ident}",
        clause,
    )

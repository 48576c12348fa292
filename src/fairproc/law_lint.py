"""``fairproc lint NOTICE --against LAW``: where a notice is broader than the law, narrower, or
silent, each finding quoting the notice's words and the law's (:mod:`fairproc.law`).

Lint reads what the policy declares (bases, sources, retention rules, safeguards, rights) and
the notice's own text (for how it frames transfers and complaints); it judges the notice as it
stands on ``at`` (a law rule not yet in force on that date reports nothing).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from fairproc.law import Law, LawRule, sale_or_negotiation_sources, words_in
from fairproc.model import Policy
from fairproc.values import Value

__all__ = ["LawFinding", "lint_against", "render"]


@attrs.frozen(repr=False)
class LawFinding(Value):
    code: str
    severity: str  # info, warning or error
    message: str
    law_rule: str
    law: str  # the law's words (cite and quote)
    notice: str | None = None  # the notice's words
    rule: str | None = None  # the policy rule the notice's words belong to

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _notice_lines(policy: Policy) -> list[str]:
    if policy.path is None or policy.info.notice is None:
        return []
    path = Path(policy.path) / policy.info.notice
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def lint_against(policy: Policy, law: Law, at: dt.date | None = None) -> list[LawFinding]:
    """Every finding about ``policy`` beneath ``law``, errors first; ``at``: judge the law as in
    force on that day (by default, every rule as enacted, commenced or not)."""
    found = list(_findings(policy, law, at))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


def _rules(law: Law, test: str, day: dt.date | None) -> list[LawRule]:
    """The rules of ``test`` in force on ``day``; with no day, every rule as enacted (lint
    never reads the clock)."""
    return [r for r in law.by_test(test) if day is None or r.in_force_on(day)]


def _findings(policy: Policy, law: Law, day: dt.date | None) -> Iterator[LawFinding]:
    lines = _notice_lines(policy)

    for rule in _rules(law, "soft_opt_in", day):
        sale = sale_or_negotiation_sources(policy)
        for purpose in policy.purposes.values():
            if not purpose.marketing_contact:
                continue
            for grant in purpose.bases:
                if grant.basis == "consent":
                    continue
                sources = policy.sources if grant.sources is None else grant.sources
                outside = sorted(s for s in sources if s not in sale)
                if outside:
                    yield LawFinding(
                        "marketing_email_without_consent",
                        "error",
                        f"{purpose.id} emails people whose details came from "
                        f"{', '.join(outside)} on {grant.basis}; those details are not obtained "
                        "in a sale or its negotiation, so PECR reg 22 asks for consent (the "
                        "soft opt-in does not reach them)",
                        rule.id,
                        rule.clause,
                        grant.clause,
                        purpose.rule_id,
                    )

    for rule in _rules(law, "cookie_consent", day):
        for purpose in policy.purposes.values():
            if purpose.cookies and any(g.basis != "consent" for g in purpose.bases):
                yield LawFinding(
                    "cookies_on_legitimate_interests",
                    "warning",
                    f"{purpose.id} stores or reads cookies on legitimate interests; PECR reg 6 "
                    "asks for consent unless an exception in Sch A1 applies",
                    rule.id,
                    rule.clause,
                    purpose.bases[0].clause if purpose.bases else purpose.clause,
                    purpose.rule_id,
                )

    for rule in _rules(law, "lawful_basis", day):
        for purpose in policy.purposes.values():
            for grant in purpose.bases:
                if not grant.stated:
                    yield LawFinding(
                        "no_lawful_basis_stated",
                        "error",
                        f"the notice states no lawful basis for {purpose.id} "
                        f"({', '.join(grant.sources or ['every source'])}); the policy reads "
                        f"{grant.basis} into it",
                        rule.id,
                        rule.clause,
                        grant.clause,
                        purpose.rule_id,
                    )

    for rule in [
        *_rules(law, "storage_limitation", day),
        *_rules(law, "transparency_retention", day),
    ]:
        for retention in policy.retention:
            if retention.applies_to == "records" and retention.review:
                yield LawFinding(
                    "no_retention_period",
                    "error" if rule.test == "storage_limitation" else "warning",
                    f"{', '.join(retention.sources or ['every'])} records: the notice states "
                    "no retention period or criteria",
                    rule.id,
                    rule.clause,
                    retention.clause,
                    retention.id,
                )

    for rule in _rules(law, "transfer_framing", day):
        for line in lines:
            if words_in(line, ["EU", "EEA", "European Economic Area"]) and words_in(
                line, ["transfer", "outside"]
            ):
                yield LawFinding(
                    "transfers_framed_as_eu",
                    "warning",
                    "the notice frames transfers as leaving the EU or EEA; a UK controller "
                    "makes restricted transfers out of the UK (UK GDPR Chapter V)",
                    rule.id,
                    rule.clause,
                    line,
                )
    for rule in _rules(law, "restricted_transfer", day):
        mechanisms = rule.params.get("mechanisms", {})
        for sg in policy.safeguards.values():
            text = " ".join(x or "" for x in (sg.id, sg.title, sg.note, sg.dpv)).lower()
            if "privacy shield" in text or "privacy_shield" in text:
                yield LawFinding(
                    "privacy_shield",
                    "error",
                    f"{sg.title}: not a UK transfer mechanism, and invalid since 16 July 2020 "
                    "(Schrems II); a UK exporter relies on UK adequacy regulations (the UK "
                    "Extension to the Data Privacy Framework for certified US organisations, "
                    "from 12 October 2023), the IDTA or the Addendum",
                    rule.id,
                    rule.clause,
                    sg.clause,
                    sg.rule_id,
                )
                continue
            hit = any(
                str(w).lower() in text
                for spec in mechanisms.values()
                for w in spec.get("words", [])
            )
            if not hit:
                yield LawFinding(
                    "safeguard_not_uk_mechanism",
                    "warning",
                    f"{sg.title}: the notice does not say it is the IDTA, the Addendum or "
                    "another UK mechanism",
                    rule.id,
                    rule.clause,
                    sg.clause,
                    sg.rule_id,
                )

    for rule in _rules(law, "rights_listed", day):
        wanted = [str(r) for r in rule.params.get("rights", [])]
        for right_id in wanted:
            right = policy.rights.get(right_id)
            if right is None:
                yield LawFinding(
                    "right_omitted",
                    "error",
                    f"the notice does not describe the right to {right_id}",
                    rule.id,
                    rule.clause,
                )
        restriction = policy.rights.get("restriction")
        if restriction is not None and restriction.bases is not None:
            yield LawFinding(
                "right_narrowed",
                "warning",
                "the notice ties restriction to "
                f"{', '.join(restriction.bases)} only; Art 18(1) gives it on four grounds "
                "(accuracy contested, unlawful processing, needed for legal claims, objection "
                "pending), whatever the basis",
                rule.id,
                rule.clause,
                restriction.clause,
                restriction.rule_id,
            )

    for rule in _rules(law, "complaints", day) or _complaint_rules_ahead(law, day):
        complaint = policy.rights.get("complaint")
        text = " ".join(lines)
        if not words_in(text, ["complaint form", "complaints procedure", "acknowledge"]):
            ahead = day is not None and not rule.in_force_on(day)
            # a line about complaining that points at the controller ("write to us")
            to_us = any(
                words_in(line, ["complain", "complaint", "concerned"])
                and words_in(line, ["us", "our privacy team"])
                for line in lines
            )
            yield LawFinding(
                "no_complaints_process",
                "warning" if ahead else "error",
                (
                    "the notice invites complaints to the controller but describes no process"
                    if to_us
                    else "the notice describes no way to complain to the controller itself"
                )
                + (
                    f" (required from {rule.in_force.isoformat()})"
                    if ahead and rule.in_force
                    else ""
                )
                + ": DPA 2018 s. 164A asks the controller to facilitate complaints (e.g. an "
                "electronic complaint form), acknowledge them within 30 days and respond "
                "without undue delay",
                rule.id,
                rule.clause,
                complaint.clause if complaint else None,
                complaint.rule_id if complaint else None,
            )


def _complaint_rules_ahead(law: Law, day: dt.date | None) -> list[LawRule]:
    """Complaint rules not yet in force: reported as a warning about what is coming."""
    if day is None:
        return []
    return [r for r in law.by_test("complaints") if not r.in_force_on(day)]


def render(findings: Sequence[LawFinding], policy: Policy, law: Law, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {"policy": policy.id, "law": law.id, "findings": [f.to_dict() for f in findings]},
            indent=2,
            ensure_ascii=False,
        )
    if fmt == "markdown":
        out = [f"# {policy.id} against {law.id}", "", f"{law.title}. Not legal advice.", ""]
        for f in findings:
            out += [f"## {f.severity}: {f.code}", "", f.message, ""]
            if f.notice:
                out += [f"> **Notice** ({f.rule or 'notice text'}): {f.notice}", ""]
            out += [f"> **Law** ({f.law_rule}): {f.law}", ""]
        out.append(_summary(findings, policy, law))
        return "\n".join(out)
    lines = []
    for f in findings:
        lines.append(f"{f.severity}: {f.code} [{f.law_rule}]: {f.message}")
        if f.notice:
            lines.append(f'    notice: "{f.notice}"' + (f" ({f.rule})" if f.rule else ""))
        lines.append(f"    law: {f.law}")
    lines.append(_summary(findings, policy, law))
    return "\n".join(lines)


def _summary(findings: Sequence[LawFinding], policy: Policy, law: Law) -> str:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")}
    return (
        f"{policy.id} against {law.id}: {counts['error']} errors, {counts['warning']} warnings, "
        f"{counts['info']} notes"
    )

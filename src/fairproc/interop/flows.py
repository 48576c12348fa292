"""What each processing of a policy involves, as both exports state it.

A processing is a purpose run on one lawful-basis grant for records from its sources. Its
categories are what those sources collect (narrowed to the purpose's own categories, when it
names them); the recipients that may receive its data are those tied to the purpose
(``requires_purpose``) and those tied to none that may see one of its categories (whether a
recipient's own ``when`` holds is decided per record by the engine, so the exports keep it as
text); its storage is every record retention rule that covers one of its sources.
"""

from __future__ import annotations

from collections.abc import Iterable

from fairproc.model import BasisGrant, Policy, Purpose, Recipient, RetentionRule


def grant_sources(policy: Policy, grant: BasisGrant) -> tuple[str, ...]:
    return tuple(policy.sources) if grant.sources is None else grant.sources


def processing_categories(policy: Policy, purpose: Purpose, sources: Iterable[str]) -> list[str]:
    """The categories a purpose uses from records of ``sources``, in the policy's order."""
    collected = {c for s in sources for c in policy.sources[s].categories}
    return [
        c
        for c in policy.categories
        if c in collected and (purpose.categories is None or c in purpose.categories)
    ]


def recipients_of(policy: Policy, purpose: Purpose, categories: Iterable[str]) -> list[Recipient]:
    """The recipients that may receive data of this processing (see the module's header)."""
    used = set(categories)
    return [
        r
        for r in policy.recipients.values()
        if (r.requires_purpose is None or r.requires_purpose == purpose.id)
        and (r.requires_purpose == purpose.id or r.categories is None or used & set(r.categories))
    ]


def received_categories(policy: Policy, recipient: Recipient) -> list[str]:
    return list(policy.categories) if recipient.categories is None else list(recipient.categories)


def is_transfer(policy: Policy, recipient: Recipient) -> bool:
    """Whether data going to ``recipient`` leaves the area the policy deems adequate."""
    return recipient.location is not None and recipient.location not in policy.adequate_locations


def retention_of(policy: Policy, sources: Iterable[str]) -> list[RetentionRule]:
    """The record retention rules that cover any of ``sources``, in the policy's order."""
    wanted = set(sources)
    return [
        r
        for r in policy.retention
        if r.applies_to == "records" and (r.sources is None or wanted & set(r.sources))
    ]


def describe_retention(rule: RetentionRule) -> str:
    """A retention rule in words: ``P10Y counted from record.resolved_at``."""
    if rule.forever:
        text = "kept indefinitely"
    elif rule.review or rule.keep is None:
        text = "no period declared: review"
    else:
        text = str(rule.keep)
        if rule.from_ is not None:
            text += f" counted from {rule.from_.text}"
    if rule.when is not None:
        text += f", when {rule.when.text}"
    return text

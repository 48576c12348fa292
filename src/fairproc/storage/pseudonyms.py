"""How the audit log names a subject: by an HMAC pseudonym under the store's own key
(:class:`fairproc.storage.interface.AuditKeys`), so that an id which is itself personal data
(an email address) does not outlive the subject's erasure in the log.

Pure: imports :mod:`fairproc.storage.values` and the interface; no I/O of its own (the key
lives in the store).
"""

from __future__ import annotations

import hashlib
import hmac

import attrs

from fairproc.storage.interface import AuditKeys, Store
from fairproc.storage.values import AuditEntry, ChangeSet

PSEUDONYM = "hmac-sha256:"
"""How a pseudonymised subject in the audit log begins."""


def subject_pseudonym(key: bytes, subject: str) -> str:
    """``subject`` as the audit log names it: an HMAC-SHA256 of the id under ``key`` (128
    bits of it, in hex, after :data:`PSEUDONYM`)."""
    digest = hmac.new(key, subject.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return PSEUDONYM + digest.hexdigest()[:32]


def audit_subject(store: object, subject: str) -> str:
    """How ``store``'s audit log names ``subject``: its pseudonym under the store's key, or
    the id itself for a store that keeps no key (:class:`AuditKeys`)."""
    if isinstance(store, AuditKeys) and not subject.startswith(PSEUDONYM):
        return subject_pseudonym(store.audit_key(), subject)
    return subject


def pseudonymised(changes: ChangeSet, store: object) -> ChangeSet:
    """``changes`` with each audit entry's subject as ``store``'s log names it."""
    if not isinstance(store, AuditKeys) or not any(a.subject for a in changes.audit):
        return changes
    return attrs.evolve(
        changes,
        audit=[
            a if a.subject is None else attrs.evolve(a, subject=audit_subject(store, a.subject))
            for a in changes.audit
        ],
    )


def subject_audit(store: Store, subject: str) -> list[AuditEntry]:
    """Every audit entry about ``subject`` (given by its id), in the order written: was the
    subject erased, when, under which rule (``[(a.at, a.rule, a.record) for a in ... if
    a.action == "erase"]``)."""
    return list(store.audit_entries(audit_subject(store, subject)))

"""Data-subject rights: what a request decides, the copy it discloses, the changes it makes.

:func:`plan_request` is pure: it reads a subject's history through the engine and returns the
decision, the export (access, portability) and the :class:`~fairproc.storage.ChangeSet` to
apply. :func:`request` applies them too, all or nothing, through the store's ``apply``.

Due dates follow the ICO: one calendar month after receipt (three when complex), the
corresponding date in the later month or its last day where there is none, moved past
weekends and England and Wales bank holidays to the next working day, same London clock time.
Bank holidays come from the ``holidays`` package, which tracks each year's proclamations.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import attrs

from fairproc.clock import Period, require_aware
from fairproc.conditions.vocabulary import Ctx
from fairproc.decisions import Check, Decision
from fairproc.engine import Engine
from fairproc.errors import InputError, did_you_mean
from fairproc.model import Event, Policy, Record, Right, SuppressionEntry, normalise_email
from fairproc.storage import AuditEntry, ChangeSet
from fairproc.values import Value
from fairproc.world import HistorySource, SubjectHistory

RIGHTS = (
    "access",
    "rectification",
    "erasure",
    "objection",
    "restriction",
    "portability",
    "complaint",
)


# The rights that act on the subject's records, and what a request for one does to them: a
# subject of whom no record is held is refused with ``no_records`` (a complaint is answered
# whatever is held).
_ACTS_ON_RECORDS = {
    "access": "disclose",
    "rectification": "correct",
    "erasure": "erase",
    "objection": "object to",
    "restriction": "restrict",
    "portability": "export",
}


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_working_day(day: dt.date) -> bool:
    """Not a Saturday, Sunday or England and Wales bank holiday."""
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def due_date(received: dt.datetime, period: Period, tz: dt.tzinfo) -> dt.datetime:
    """When a request received at ``received`` must be answered (see the module docstring)."""
    received = require_aware(received, "received")
    due = period.add_to(received, tz).astimezone(tz)
    wall = due.replace(tzinfo=None)
    while not is_working_day(wall.date()):
        wall += dt.timedelta(days=1)
    return wall.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


@attrs.frozen(repr=False)
class RequestResult(Value):
    decision: Decision
    changes: ChangeSet = attrs.field(factory=ChangeSet)
    export: Mapping[str, Any] | None = None  # access copy or portable data, as plain data

    def export_json(self) -> str:
        return json.dumps(self.export, indent=2, ensure_ascii=False, default=str)


@attrs.frozen(repr=False)
class LawTerms(Value):
    """What a request's handling under a law layer reads (``fairproc.law``), beyond the notice:
    when identity was confirmed and a fee received (Art 12A starts the clock at the latest of
    those and receipt), when clarification was asked for and given (those days do not count),
    whether the request is manifestly ``"unfounded"`` or ``"excessive"`` and whether the
    controller then ``"refuse"``s or ``"charge"``s (Art 12(5)), the restriction ground (Art
    18(1)) and compelling grounds for continuing despite an objection (Art 21(1))."""

    identity_confirmed_at: dt.datetime | None = None
    fee_received_at: dt.datetime | None = None
    clarification_requested_at: dt.datetime | None = None
    clarification_received_at: dt.datetime | None = None
    manifestly: str | None = None  # "unfounded" or "excessive"
    manifest_action: str = "refuse"  # or "charge"
    ground: str | None = None  # restriction: accuracy_contested, unlawful_processing, ...
    compelling_grounds: str | None = None


def _right(policy: Policy, right: str) -> Right:
    found = policy.rights.get(right)
    if found is None:
        known = ", ".join(sorted(policy.rights)) or "none"
        raise InputError.one(
            f"unknown right {right!r}{did_you_mean(right, policy.rights)} "
            f"(this policy declares: {known})"
        )
    return found


def plan_request(
    engine: Engine,
    subject: str,
    right: str,
    at: dt.datetime,
    *,
    verified: bool = False,
    complex: bool = False,
    purposes: Sequence[str] | None = None,
    corrections: Mapping[str, Mapping[str, Any]] | None = None,
    law: LawTerms | None = None,
) -> RequestResult:
    """Decide a request received at ``at``; nothing is changed until the result is applied.

    ``law``: what the law's clocks and grounds read (identity confirmed, fee, clarification,
    manifestly unfounded, restriction ground, compelling grounds); used only when the engine
    has a law layer."""
    plan = partial(
        _snapshot_plan,
        engine,
        subject,
        right,
        at,
        verified=verified,
        complex=complex,
        purposes=purposes,
        corrections=corrections,
        law=law,
    )
    return _logged(engine, plan)


def _logged(engine: Engine, ask: Callable[[], RequestResult]) -> RequestResult:
    if engine.log is not None:  # the request is logged, the questions it asked on the way not
        return engine.log.around(engine, ask, lambda result: result.decision)
    return ask()


def _snapshot_plan(
    engine: Engine, subject: str, right: str, at: dt.datetime, **options: Any
) -> RequestResult:
    # One request reads the store as it stands: its revision once, not once per question.
    options["law"] = options.get("law") or LawTerms()
    with engine.snapshot():
        return _plan_request(engine, subject, right, at, **options)


def _plan_request(
    engine: Engine,
    subject: str,
    right: str,
    at: dt.datetime,
    *,
    verified: bool,
    complex: bool,
    purposes: Sequence[str] | None,
    corrections: Mapping[str, Mapping[str, Any]] | None,
    law: LawTerms,
) -> RequestResult:
    at = require_aware(at)
    policy = engine.policy
    r = _right(policy, right)
    history = engine.history(subject)
    asked: dict[str, Any] = {"subject": subject, "right": right}
    if engine.law is not None:
        from fairproc.law_rights import plan_under_law

        under = plan_under_law(engine, engine.law, history, r, at, asked, complex, verified, law)
        if under.result is not None:
            return under.result
        assert under.due is not None and under.base is not None
        due, base = under.due, under.base
        verified = verified or under.identity_confirmed
    else:
        due = due_date(at, r.due_complex if complex else r.due, engine.tz)
        base = Check(
            r.rule_id,
            True,
            r.clause,
            r.note,
            detail=f"due {due.isoformat()} ({'complex' if complex else 'not complex'})",
        )
    if not verified:
        refused = attrs.evolve(
            base,
            passed=False,
            reason="identity_not_verified",
            detail="the requester's identity is not verified: nothing is disclosed or changed",
        )
        return RequestResult(
            Decision(
                "request",
                "refused",
                at,
                asked,
                due=due,
                reasons=("identity_not_verified",),
                checks=(refused,),
                tz=engine.tz,
            )
        )
    planner = _Planner(engine, history, r, at, due, asked, base)
    result = _nothing_held(planner, right, subject, history)
    if result is None:
        handler = getattr(planner, f"_{right}", None)
        if handler is None:
            raise InputError.one(
                f"fairproc does not know how to carry out a {right!r} request "
                f"(it knows: {', '.join(RIGHTS)})"
            )
        result = handler(purposes=purposes, corrections=corrections)
    if engine.law is not None:
        from fairproc.law_rights import after_under_law

        return after_under_law(engine, engine.law, planner, result, law, under.checks)
    return result


def _nothing_held(
    planner: _Planner, right: str, subject: str, history: SubjectHistory
) -> RequestResult | None:
    """A request about a subject of whom no record is held, refused with ``no_records`` and
    said plainly, never a silent "granted" with nothing in it; None when there is something
    to act on. An access request is answered by confirming that nothing is held (Art 15(1):
    "confirmation as to whether or not personal data ... are being processed"); a subject
    with events but no records is granted a copy of its timeline."""
    if right not in _ACTS_ON_RECORDS or history.records:
        return None
    if right != "access":
        return planner.refuse(
            "no_records",
            f"no records about {subject!r} are held: there is nothing to {_ACTS_ON_RECORDS[right]}",
        )
    if history.events:
        return None
    return planner.refuse(
        "no_records",
        f"no records or events about {subject!r} are held: nothing to disclose; "
        "tell the requester that no personal data about them is held",
    )


class _Planner:
    def __init__(
        self,
        engine: Engine,
        history: SubjectHistory,
        right: Right,
        at: dt.datetime,
        due: dt.datetime,
        asked: dict[str, Any],
        base: Check,
    ):
        self.engine = engine
        self.policy = engine.policy
        self.history = history
        self.right = right
        self.at = at
        self.due = due
        self.asked = asked
        self.base = base

    def decision(self, outcome: str, checks: Sequence[Check] = (), **extra: Any) -> Decision:
        base = self.base if outcome != "refused" else attrs.evolve(self.base, passed=False)
        return Decision(
            "request",
            outcome,
            self.at,
            self.asked,
            due=self.due,
            checks=(base, *checks),
            tz=self.engine.tz,
            **extra,
        )

    def refuse(self, reason: str, detail: str) -> RequestResult:
        """A refusal naming why; it changes nothing."""
        check = Check(self.right.rule_id, False, self.right.clause, reason=reason, detail=detail)
        return RequestResult(self.decision("refused", [check], reasons=(reason,)))

    # -- which bases a record is processed under, now --

    def bases(self, record: Record) -> dict[str, str]:
        """purpose -> basis, for each purpose whose grant covers the record at ``at``."""
        out: dict[str, str] = {}
        ctx = Ctx(self.at, self.history, record)
        for purpose in self.policy.purposes.values():
            for grant in purpose.bases:
                if grant.sources is not None and record.source not in grant.sources:
                    continue
                ctx.purpose = purpose.id
                if grant.when is None or grant.when.evaluate(ctx):
                    out[purpose.id] = grant.basis
                    break
        return out

    def others(self) -> set[str]:
        return {c.id for c in self.policy.categories.values() if c.about_others}

    def own_data(self, record: Record) -> dict[str, Any]:
        others = self.others()
        return {k: v for k, v in record.data.items() if k not in others}

    def emails(self) -> list[str]:
        return list(self.history.emails)

    def suppress(self, reason: str) -> tuple[SuppressionEntry, ...]:
        """Suppression entries for the subject's addresses not on the list yet."""
        entries = self.engine.store.suppression_entries(self.history.emails)
        listed = {normalise_email(e.email) for e in entries}
        return tuple(
            SuppressionEntry(e, self.at, reason) for e in self.history.emails if e not in listed
        )

    # -- the rights --

    def _access(self, **_: Any) -> RequestResult:
        records = []
        redacted: set[str] = set()
        for rec in self.history.records:
            redacted |= set(rec.data) & self.others()
            retention = self.engine.retention(rec, self.at)
            recipients = {}
            for rid in self.policy.recipients:
                share = self.engine.may_share(rec, rid, self.at)
                if share.allowed and share.categories:
                    recipients[rid] = list(share.categories)
            records.append(
                {
                    "id": rec.id,
                    "source": rec.source,
                    "collected_at": _iso(rec.collected_at),
                    "data": self.own_data(rec),
                    "purposes": [{"purpose": p, "basis": b} for p, b in self.bases(rec).items()],
                    "recipients": recipients,
                    "retention": {
                        "outcome": retention.outcome,
                        "until": _iso(retention.until) if retention.until else None,
                    },
                }
            )
        export = {
            "subject": self.history.subject,
            "controller": attrs.asdict(self.policy.info.controller),
            "received_at": _iso(self.at),
            "due": _iso(self.due),
            "records": records,
            "events": [
                {"kind": e.kind, "at": _iso(e.at), "record": e.record, "purpose": e.purpose}
                for e in self.history.events
            ],
            "suppressed": self.history.suppressed(self.at.timestamp()),
            "redacted": sorted(redacted),
        }
        return RequestResult(
            self.decision("granted", redacted=tuple(sorted(redacted))), export=export
        )

    def _portability(self, **_: Any) -> RequestResult:
        allowed = set(self.right.bases or ("contract", "consent"))
        portable = []
        per_record = {}
        checks = []
        for rec in self.history.records:
            bases = self.bases(rec)
            hit = sorted(p for p, b in bases.items() if b in allowed)
            per_record[rec.id] = "exported" if hit else "not_portable"
            checks.append(
                Check(
                    self.right.rule_id,
                    bool(hit),
                    self.right.clause,
                    scope=rec.id,
                    detail=("processed under " + ", ".join(f"{p} ({bases[p]})" for p in hit))
                    if hit
                    else "processed under no contract or consent basis",
                )
            )
            if hit:
                portable.append(
                    {
                        "id": rec.id,
                        "source": rec.source,
                        "collected_at": _iso(rec.collected_at),
                        "data": self.own_data(rec),
                    }
                )
        if not portable:
            return RequestResult(
                self.decision(
                    "refused", checks, per_record=per_record, reasons=("nothing_portable",)
                )
            )
        export = {
            "subject": self.history.subject,
            "records": portable,
            "csv": portable_csv(portable),
        }
        return RequestResult(self.decision("granted", checks, per_record=per_record), export=export)

    def _erasure(self, **_: Any) -> RequestResult:
        erasable = set(self.right.erase_sources or self.policy.sources)
        per_record: dict[str, str] = {}
        checks: list[Check] = []
        erased: list[Record] = []
        for rec in self.history.records:
            retention = self.engine.retention(rec, self.at)
            keeping = [
                c
                for c in retention.checks
                if c.rule in self.right.kept_by and c.passed is not False
            ]
            if keeping:
                per_record[rec.id] = "kept"
                checks.append(
                    attrs.evolve(
                        keeping[0], scope=rec.id, detail="kept: " + (keeping[0].detail or "")
                    )
                )
            elif rec.source not in erasable:
                per_record[rec.id] = "kept"
                checks.append(
                    Check(
                        self.right.rule_id,
                        False,
                        self.right.clause,
                        scope=rec.id,
                        reason="not_erasable",
                        detail=f"{rec.source} records are not erased",
                    )
                )
            else:
                per_record[rec.id] = "erased"
                erased.append(rec)
                checks.append(
                    Check(
                        self.right.rule_id, True, self.right.clause, scope=rec.id, detail="erased"
                    )
                )
        suppression = self.suppress("erasure")
        rule = next((r for r in self.policy.retention if r.applies_to == "suppression"), None)
        if rule is not None and self.history.emails:
            checks.append(
                Check(
                    rule.id,
                    True,
                    rule.clause,
                    rule.note,
                    detail="the email stays on the suppression list",
                )
            )
        outcome = (
            "granted"
            if len(erased) == len(self.history.records)
            else "partially_granted"
            if erased
            else "refused"
        )
        erased_ids = sorted(r.id for r in erased)
        everything = bool(erased) and len(erased) == len(self.history.records)
        # Events name records and carry the timeline: those of erased records go; when every
        # record goes, the whole timeline goes, leaving one marker that the subject was erased.
        marker = self.policy.events_with("erase")
        subject = self.history.subject
        add_events = (Event(subject, marker[0], self.at),) if marker and erased else ()
        audit = tuple(
            AuditEntry(self.at, "erase", subject, record=rid, rule=self.right.rule_id)
            for rid in erased_ids
        )
        changes = ChangeSet(
            delete_records=erased_ids,
            delete_subject_events=(subject,) if everything else (),
            delete_record_events=() if everything else erased_ids,
            add_events=add_events,
            add_suppression=suppression,
            audit=audit,
        )
        return RequestResult(self.decision(outcome, checks, per_record=per_record), changes)

    def _rectification(
        self, corrections: Mapping[str, Mapping[str, Any]] | None = None, **_: Any
    ) -> RequestResult:
        corrections = corrections or {}
        own = {r.id: r for r in self.history.records}
        replaced = []
        audit = []
        checks = []
        for rid, fields in corrections.items():
            rec = own.get(rid)
            if rec is None:
                raise InputError.one(
                    f"rectification: record {rid!r} is not one of "
                    f"{self.history.subject!r}'s records"
                )
            allowed = set(self.policy.sources[rec.source].categories)
            for field in fields:
                if field not in allowed:
                    raise InputError.one(
                        f"rectification: {rec.source} records hold no "
                        f"{field!r} (they hold: {', '.join(sorted(allowed))})"
                    )
            data = {**rec.data, **fields}
            replaced.append(attrs.evolve(rec, data=data))
            for field in sorted(fields):
                audit.append(
                    AuditEntry(
                        self.at,
                        "rectify",
                        self.history.subject,
                        record=rid,
                        rule=self.right.rule_id,
                        field=field,
                    )
                )
            checks.append(
                Check(
                    self.right.rule_id,
                    True,
                    self.right.clause,
                    scope=rid,
                    detail="corrected: " + ", ".join(sorted(fields)),
                )
            )
        changes = ChangeSet(put_records=tuple(replaced), audit=tuple(audit))
        per_record = {r.id: "rectified" for r in replaced}
        return RequestResult(self.decision("granted", checks, per_record=per_record), changes)

    def _objection(self, purposes: Sequence[str] | None = None, **_: Any) -> RequestResult:
        named = list(purposes) if purposes else None
        for p in named or ():
            if p not in self.policy.purposes:
                raise InputError.one(
                    f"objection: unknown purpose {p!r}{did_you_mean(p, self.policy.purposes)}"
                )
        allowed = set(self.right.bases or ("legitimate_interests",))
        li = [
            p.id for p in self.policy.purposes.values() if any(g.basis in allowed for g in p.bases)
        ]
        targets = li if named is None else [p for p in named if p in li]
        if not targets:
            return self.refuse(
                "no_legitimate_interests_purpose",
                "every purpose named runs on contract or legal obligation",
            )
        kinds = self.policy.events_with("object")
        if not kinds:
            raise InputError.one("the policy declares no event with the 'object' effect")
        events = (
            (Event(self.history.subject, kinds[0], self.at),)
            if named is None
            else tuple(Event(self.history.subject, kinds[0], self.at, purpose=p) for p in targets)
        )
        marketing = self.policy.suppressing_purposes()
        suppress = self.suppress("objected") if named is None or marketing & set(targets) else ()
        audit = tuple(
            AuditEntry(self.at, "object", self.history.subject, rule=self.right.rule_id)
            for _ in events
        )
        checks = [
            Check(
                self.right.rule_id,
                True,
                self.right.clause,
                detail="objection recorded to " + ", ".join(targets),
            )
        ]
        return RequestResult(
            self.decision("granted", checks),
            ChangeSet(add_events=events, add_suppression=suppress, audit=audit),
        )

    def _restriction(self, **_: Any) -> RequestResult:
        allowed = set(self.right.bases or ("legitimate_interests",))
        hits = [
            r.id for r in self.history.records if any(b in allowed for b in self.bases(r).values())
        ]
        if not hits:
            return self.refuse(
                "no_legitimate_interests_processing",
                "no record is processed under legitimate interests",
            )
        kinds = self.policy.events_with("restrict")
        if not kinds:
            raise InputError.one("the policy declares no event with the 'restrict' effect")
        checks = [
            Check(
                self.right.rule_id,
                True,
                self.right.clause,
                detail="restricted: only storage is allowed while it is in force",
            )
        ]
        return RequestResult(
            self.decision("granted", checks),
            ChangeSet(
                add_events=(Event(self.history.subject, kinds[0], self.at),),
                audit=(
                    AuditEntry(self.at, "restrict", self.history.subject, rule=self.right.rule_id),
                ),
            ),
        )

    def _complaint(self, **_: Any) -> RequestResult:
        authority = self.policy.info.supervisory_authority
        export = attrs.asdict(authority) if authority is not None else None
        detail = "complain to " + (authority.name if authority else "the supervisory authority")
        return RequestResult(
            self.decision(
                "granted", [Check(self.right.rule_id, True, self.right.clause, detail=detail)]
            ),
            export=export,
        )


def request(
    engine: Engine,
    subject: str,
    right: str,
    at: dt.datetime,
    *,
    verified: bool = False,
    complex: bool = False,
    purposes: Sequence[str] | None = None,
    corrections: Mapping[str, Mapping[str, Any]] | None = None,
    law: LawTerms | None = None,
) -> RequestResult:
    """Decide a request and carry it out on the engine's store, all of it or none of it.

    An unverified request (``verified`` is false unless said) is refused and changes nothing.
    """

    plan = partial(
        _snapshot_plan,
        engine,
        subject,
        right,
        at,
        verified=verified,
        complex=complex,
        purposes=purposes,
        corrections=corrections,
        law=law,
    )

    def carry_out() -> RequestResult:
        result = plan()
        if not result.changes:
            return result  # it writes nothing: no need to hold the store
        # Decided again as part of the write: a concurrent request (two erasures of one
        # subject) has then either written first, and this one sees it, or waits; nothing is
        # done twice.
        decided: list[RequestResult] = []

        def decide(_: HistorySource) -> ChangeSet:
            decided.append(plan())
            return decided[-1].changes

        engine.apply(decide)
        return decided[-1]

    return _logged(engine, carry_out)  # logged once: the request as carried out


def portable_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """The portable records as CSV, one row per record and category; safe in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["record", "source", "collected_at", "category", "value"])
    for rec in records:
        for category, value in rec["data"].items():
            writer.writerow(
                [
                    spreadsheet_safe(v)
                    for v in (rec["id"], rec["source"], rec["collected_at"], category, value)
                ]
            )
    return out.getvalue()


def spreadsheet_safe(value: Any) -> str:
    """A cell value that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _kept_line(retention: Mapping[str, Any]) -> str:
    """How long a record is kept, in words: a record past its date is overdue, not kept."""
    outcome, until = retention["outcome"], retention["until"]
    if outcome == "delete":
        return "Overdue for deletion" + (f" since {until}" if until else "")
    if outcome == "review":
        return "Kept: no retention period is stated for it; its retention is under review"
    return f"Kept until {until}" if until else "Kept: no end date yet"


def access_report(export: Mapping[str, Any]) -> str:
    """An access copy as a readable Markdown report."""
    lines = [
        f"# Your personal data held by {export['controller']['name']}",
        "",
        f"Request received {export['received_at']}; answered by {export['due']}.",
        "",
    ]
    for rec in export["records"]:
        lines += [f"## Record {rec['id']} ({rec['source']}, collected {rec['collected_at']})", ""]
        lines += [f"- **{k}**: {v}" for k, v in rec["data"].items()]
        lines += [
            "",
            "Used for: "
            + (
                ", ".join(f"{p['purpose']} ({p['basis']})" for p in rec["purposes"])
                or "nothing now"
            ),
            "Shared with: " + (", ".join(rec["recipients"]) or "no one"),
            _kept_line(rec["retention"]),
            "",
        ]
    if export["events"]:
        lines += ["## Timeline", ""]
        lines += [
            f"- {e['at']}: {e['kind']}" + (f" ({e['record']})" if e["record"] else "")
            for e in export["events"]
        ]
        lines.append("")
    if export["redacted"]:
        lines.append(
            "Information about other people was removed: " + ", ".join(export["redacted"]) + "."
        )
    return "\n".join(lines)

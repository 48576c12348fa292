"""The law beneath a notice: a law layer (``rules/uk-gdpr/law.toml``) and how it bears on the
decisions a notice's policy takes.

A law layer is a set of rules, each citing its article or regulation (``cite``), a short
quote of it (``quote``), the primary source it was checked against (``source``) and, where it
depends on commencement, the date it applies from (``in_force``). What a rule tests is one of
a closed set of named tests (``test``) written here in Python: the condition language speaks
one notice's vocabulary (its sources, purposes and facts), and a law must judge any notice, so
its tests read the notice's declarations (a purpose marked direct marketing, a source the
notice processes under contract, a safeguard's name) rather than one notice's ids.

Semantics every caller relies on:

* The law only takes away. A decision the notice allows and a law rule forbids is ``denied``,
  naming the law's rule; a decision the notice denies stays denied; nothing is ever allowed by
  the law alone. The law's checks are appended to the notice's, marked ``layer = "law"``.
* A rule whose ``in_force`` date is after the question's local date does not apply (its check
  says so and neither passes nor fails).
* Rights requests follow the law's clocks (Art 12A) when the engine has a law: see
  :mod:`fairproc.rights`, which asks :meth:`LawLayer.response_due` for the due date.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from fairproc.clock import Period, to_local
from fairproc.decisions import Check, Decision, LazyChecks
from fairproc.errors import PolicyError, Problem
from fairproc.values import Value

if TYPE_CHECKING:
    from fairproc.engine import Engine
    from fairproc.model import Policy, Purpose, Recipient, Record, Safeguard

__all__ = ["LAW_TESTS", "Law", "LawLayer", "LawRule", "load_law", "shipped_laws"]

# What each named test judges; a law file naming any other test is refused on load.
LAW_TESTS: Mapping[str, str] = {
    "soft_opt_in": "may_process / may_email / may_share: marketing email needs consent or the "
    "soft opt-in",
    "objection": "may_process: an objection stops legitimate-interests processing",
    "cookie_consent": "may_process: storage or access in terminal equipment needs consent",
    "restricted_transfer": "transfer / may_share: a UK adequacy regulation or a UK mechanism",
    "response_clock": "request: when the response period starts, pauses and ends",
    "manifestly_unfounded": "request: a manifestly unfounded or excessive request",
    "erasure_exceptions": "request: erasure and the records kept by legal obligation or claims",
    "restriction_grounds": "request: restriction on its four grounds, each with its end",
    "objection_rights": "request: objection, compelling grounds and direct marketing",
    "complaints": "request: complaints to the controller",
    "lawful_basis": "lint: a lawful basis for every purpose",
    "storage_limitation": "lint: a retention period for every record",
    "transfer_framing": "lint: restricted transfers framed as a UK exporter's",
    "rights_listed": "lint: the rights a notice must describe",
    "transparency_retention": "lint: the retention period is stated",
}

# The answers a rights request may give under a law, beside the notice's own.
AWAITING = ("awaiting_identity", "awaiting_fee", "awaiting_clarification")

RESTRICTION_GROUNDS: Mapping[str, str] = {
    "accuracy_contested": "ends when the controller has verified the accuracy of the data (a "
    "rectification request decided, or accuracy_verified)",
    "unlawful_processing": "ends when the data subject asks for erasure instead (an erasure "
    "request decided) or withdraws it (withdrawn)",
    "legal_claims": "ends when the legal claims are resolved (legal_claims_resolved)",
    "objection_pending": "ends when it is decided whether the controller's legitimate grounds "
    "override the data subject's (an objection request decided, or objection_verified)",
}

# The ends a restriction request may record instead of a ground (``ground = "<end>"``), and
# the ground each ends; ``withdrawn`` (the data subject lifts the restriction) ends them all.
RESTRICTION_ENDS: Mapping[str, tuple[str, ...]] = {
    "accuracy_verified": ("accuracy_contested",),
    "legal_claims_resolved": ("legal_claims",),
    "objection_verified": ("objection_pending",),
    "withdrawn": tuple(RESTRICTION_GROUNDS),
}

# A request of these rights, once decided, is the end of the ground it names.
RESTRICTION_ENDED_BY: Mapping[str, str] = {
    "rectification": "accuracy_contested",
    "erasure": "unlawful_processing",
    "objection": "objection_pending",
}


@attrs.frozen(repr=False)
class LawRule(Value):
    """One rule of the law: what it tests and the primary text behind it."""

    key: str
    law: str
    title: str
    test: str
    cite: str
    quote: str
    source: str
    reason: str | None = None
    in_force: dt.date | None = None
    confirmed: bool = True  # every date and quote checked against the source named
    note: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def id(self) -> str:
        return f"{self.law}.{self.key}"

    @property
    def clause(self) -> str:
        return f'{self.cite}: "{self.quote}"'

    @property
    def reading(self) -> str:
        parts = [self.note] if self.note else []
        if self.in_force is not None:
            parts.append(f"in force from {self.in_force.isoformat()}")
        parts.append(
            f"source: {self.source}"
            if self.confirmed
            else f"NOT CONFIRMED against a primary source; looked at: {self.source}"
        )
        return "; ".join(parts)

    def in_force_on(self, day: dt.date) -> bool:
        return self.in_force is None or day >= self.in_force

    def check(
        self,
        passed: bool | None,
        detail: str,
        scope: str | None = None,
        reason: str | None = None,
    ) -> Check:
        return Check(
            self.id,
            passed,
            self.clause,
            self.reading,
            reason=(reason or self.reason) if passed is False else None,
            detail=detail,
            scope=scope,
            layer="law",
        )


@attrs.frozen(repr=False)
class Law(Value):
    id: str
    title: str
    timezone: str
    rules: Mapping[str, LawRule]  # by key
    note: str | None = None
    path: str | None = None

    def by_test(self, test: str) -> tuple[LawRule, ...]:
        return tuple(r for r in self.rules.values() if r.test == test)

    def rule_index(self) -> dict[str, LawRule]:
        return {r.id: r for r in self.rules.values()}


# --- loading ---------------------------------------------------------------------------------

_LAW_KEYS = {"id", "title", "timezone", "note"}
_RULE_KEYS = {
    "title",
    "test",
    "cite",
    "quote",
    "source",
    "reason",
    "in_force",
    "confirmed",
    "note",
    "params",
}
_RULE_REQUIRED = ("title", "test", "cite", "quote", "source")


def shipped_laws() -> list[str]:
    """Names of the law layers that ship with fairproc (a rules folder with a ``law.toml``)."""
    root = resources.files("fairproc.rules")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "law.toml").is_file())


def _law_file(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.is_dir() and (candidate / "law.toml").is_file():
        return candidate / "law.toml"
    text = str(name_or_path)
    if "/" not in text and "\\" not in text:
        shipped = resources.files("fairproc.rules") / text / "law.toml"
        if shipped.is_file():
            return Path(str(shipped))
        names = shipped_laws()
        raise PolicyError(
            [Problem(f"no law layer named {text!r} (shipped: {', '.join(names) or 'none'})")]
        )
    raise PolicyError([Problem("no law.toml here", file=str(candidate))])


_loaded: dict[str, Law] = {}


def load_law(name_or_path: str | Path | Law) -> Law:
    """A law layer by shipped name (``"uk-gdpr"``), folder or ``law.toml`` path."""
    if isinstance(name_or_path, Law):
        return name_or_path
    path = _law_file(name_or_path)
    key = f"{path.resolve()}:{path.stat().st_mtime_ns}"
    cached = _loaded.get(key)
    if cached is not None:
        return cached
    file = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError([Problem(f"cannot be read: {exc}", file=file)]) from None
    problems: list[Problem] = []
    head = doc.get("law")
    if not isinstance(head, dict):
        raise PolicyError([Problem("expected a [law] table", file=file)])
    for key_ in head:
        if key_ not in _LAW_KEYS:
            problems.append(Problem(f"unknown key {key_!r}", file=file, path=("law", key_)))
    for key_ in ("id", "title", "timezone"):
        if not isinstance(head.get(key_), str):
            problems.append(Problem("required: a string", file=file, path=("law", key_)))
    law_id = str(head.get("id", "?"))
    rules: dict[str, LawRule] = {}
    table = doc.get("rule", {})
    if not isinstance(table, dict):
        problems.append(Problem("expected [rule.<id>] tables", file=file, path=("rule",)))
        table = {}
    for rkey, raw in table.items():
        where = ("rule", rkey)
        if not isinstance(raw, dict):
            problems.append(Problem("expected a table", file=file, path=where))
            continue
        unknown = [k for k in raw if k not in _RULE_KEYS]
        for k in unknown:
            problems.append(Problem(f"unknown key {k!r}", file=file, path=(*where, k)))
        missing = [k for k in _RULE_REQUIRED if not isinstance(raw.get(k), str)]
        for k in missing:
            problems.append(Problem("required: a string", file=file, path=(*where, k)))
        if raw.get("test") not in LAW_TESTS and "test" not in missing:
            problems.append(
                Problem(
                    f"unknown test {raw.get('test')!r} (known: {', '.join(sorted(LAW_TESTS))})",
                    file=file,
                    path=(*where, "test"),
                )
            )
        in_force = raw.get("in_force")
        if in_force is not None and (
            not isinstance(in_force, dt.date) or isinstance(in_force, dt.datetime)
        ):
            problems.append(
                Problem("expected a date (YYYY-MM-DD)", file=file, path=(*where, "in_force"))
            )
            in_force = None
        if unknown or missing:
            continue
        rules[rkey] = LawRule(
            rkey,
            law_id,
            raw["title"],
            raw["test"],
            raw["cite"],
            raw["quote"],
            raw["source"],
            raw.get("reason"),
            in_force,
            bool(raw.get("confirmed", True)),
            raw.get("note"),
            dict(raw.get("params", {})),
        )
    if problems:
        raise PolicyError(problems)
    law = Law(law_id, head["title"], head["timezone"], rules, head.get("note"), str(path))
    _loaded[key] = law
    return law


# --- what the law reads from a notice --------------------------------------------------------


def sale_or_negotiation_sources(policy: Policy) -> frozenset[str]:
    """The sources whose details the notice says it obtains in a sale or its negotiation:
    those it processes under ``contract`` for some purpose (pre-contract steps included)."""
    out: set[str] = set()
    for purpose in policy.purposes.values():
        for grant in purpose.bases:
            if grant.basis == "contract" and grant.when is None:
                out.update(policy.sources if grant.sources is None else grant.sources)
    return frozenset(out)


def _safeguard_text(sg: Safeguard) -> str:
    return " ".join(
        x for x in (sg.id, sg.title, sg.note or "", getattr(sg, "dpv", None) or "") if x
    ).lower()


# --- the layer -------------------------------------------------------------------------------


class LawLayer:
    """A law as it bears on one policy's decisions (built once per engine)."""

    def __init__(self, law: Law, policy: Policy):
        self.law = law
        self.policy = policy
        self.sale_sources = sale_or_negotiation_sources(policy)

    def _day(self, at: dt.datetime) -> dt.date:
        return to_local(at, self.policy.tz).date()

    def _rules(self, test: str) -> tuple[LawRule, ...]:
        return self.law.by_test(test)

    # -- processing --

    def process_checks(
        self, engine: Engine, rec: Record, purpose: Purpose, basis: str | None, at: dt.datetime
    ) -> list[Check]:
        """The law's checks on processing ``rec`` for ``purpose`` on the notice's ``basis``."""
        day = self._day(at)
        checks: list[Check] = []
        if basis is None:
            return checks  # the notice gives no basis: denied already, the law adds nothing
        if purpose.marketing_contact:
            for rule in self._rules("soft_opt_in"):
                if not rule.in_force_on(day):
                    continue
                if basis == "consent":
                    checks.append(rule.check(True, "marketing email on the subject's consent"))
                elif rec.source in self.sale_sources:
                    checks.append(
                        rule.check(
                            True,
                            f"soft opt-in: {rec.source} details were obtained in the course of "
                            "a sale or negotiations for one (the notice processes them under "
                            "contract); the opt-out is the notice's unsubscribe",
                        )
                    )
                else:
                    checks.append(
                        rule.check(
                            False,
                            f"marketing email on {basis} to details from {rec.source}, which "
                            "the notice does not obtain in a sale or its negotiation: no soft "
                            "opt-in, so consent is needed",
                        )
                    )
        if basis == "legitimate_interests":
            history = engine.history(rec.subject)
            if history.objected(purpose.id, at.timestamp()):
                for rule in self._rules("objection"):
                    absolute = rule.params.get("direct_marketing", False)
                    if bool(absolute) != bool(purpose.direct_marketing):
                        continue
                    if not rule.in_force_on(day):
                        continue
                    checks.append(
                        rule.check(
                            False,
                            f"the subject objected to {purpose.id}"
                            + (
                                " (direct marketing: the objection is absolute)"
                                if purpose.direct_marketing
                                else " and no compelling legitimate grounds are recorded"
                            ),
                        )
                    )
        if purpose.cookies:
            for rule in self._rules("cookie_consent"):
                if rule.in_force_on(day):
                    checks.append(
                        rule.check(
                            None,
                            f"{purpose.id} stores or reads cookies: consent is read from the "
                            "notice's own cookie rules (the law layer does not re-derive it)",
                        )
                    )
        return checks

    def beneath(self, decision: Decision, law_checks: Sequence[Check]) -> Decision:
        """``decision`` with the law's checks appended: denied where a law check failed."""
        if not law_checks:
            return decision
        failed = tuple(c.reason for c in law_checks if c.passed is False and c.reason)
        notice_checks = decision.checks
        outcome = decision.outcome
        if failed and outcome == "allowed":
            outcome = "denied"
        reasons = decision.reasons
        if failed:
            reasons = tuple(dict.fromkeys((*reasons, *failed)))
        return attrs.evolve(
            decision,
            outcome=outcome,
            reasons=reasons,
            categories=None if outcome != "allowed" else decision.categories,
            addresses=None if outcome != "allowed" else decision.addresses,
            checks=LazyChecks(_joined, notice_checks, tuple(law_checks)),
        )

    def email(self, engine: Engine, decision: Decision, subject: str, at: dt.datetime) -> Decision:
        """may_email beneath the law: allowed only by a record both notice and law allow."""
        from fairproc.engine import _has_value  # the engine's test of a usable address

        info = self.policy.info
        assert info.marketing_purpose is not None and info.email_category is not None
        history = engine.history(subject)
        ts = at.timestamp()
        usable: list[Record] = []
        law_checks: list[Check] = []
        for rec in history.records:
            if rec.collected_at.timestamp() > ts or not _has_value(
                rec.data.get(info.email_category)
            ):
                continue
            d = engine.may_process(rec, info.marketing_purpose, at)
            mine = [attrs.evolve(c, scope=rec.id) for c in d.checks if c.layer == "law"]
            law_checks.extend(mine)
            if d.allowed:
                usable.append(rec)
        if not decision.allowed:
            return self.beneath(decision, law_checks)
        if usable:
            # A record the law stops, beside one it allows, informs the decision without
            # failing it (as an invalid safeguard beside a valid one does a transfer).
            informing = [
                attrs.evolve(c, passed=None) if c.passed is False else c for c in law_checks
            ]
            combined = self.beneath(decision, informing)
            return attrs.evolve(combined, addresses=history.usable_addresses(usable, ts))
        return self.beneath(decision, law_checks)

    def share_checks(
        self, engine: Engine, rec: Record, recipient: Recipient, at: dt.datetime
    ) -> list[Check]:
        checks: list[Check] = []
        if recipient.requires_purpose is not None:
            d = engine.may_process(rec, recipient.requires_purpose, at)
            checks.extend(
                attrs.evolve(c, scope=recipient.requires_purpose)
                for c in d.checks
                if c.layer == "law"
            )
        checks.extend(self.transfer_checks(recipient, at))
        return checks

    # -- transfers --

    def transfer_checks(self, recipient: Recipient, at: dt.datetime) -> list[Check]:
        """A restricted transfer (UK GDPR Arts 44-46) as a UK exporter makes it: to a place
        the UK's adequacy regulations cover, or under a UK mechanism (the IDTA, the Addendum)."""
        day = self._day(at)
        checks: list[Check] = []
        for rule in self._rules("restricted_transfer"):
            if not rule.in_force_on(day):
                continue
            where = recipient.location
            adequate = [str(x) for x in rule.params.get("adequate", ["UK"])]
            if where is None or where in adequate:
                checks.append(
                    rule.check(
                        True, f"no restricted transfer ({where or 'in the UK'}): UK adequacy"
                    )
                )
                continue
            mechanisms: Mapping[str, Any] = rule.params.get("mechanisms", {})
            recognised: list[str] = []
            refused: list[str] = []
            for sid in recipient.safeguards:
                sg = self.policy.safeguards[sid]
                if not sg.valid_on(day):
                    refused.append(f"{sg.title} (not valid on {day.isoformat()})")
                    continue
                text = _safeguard_text(sg)
                hit = None
                for name, spec in mechanisms.items():
                    words = [str(w).lower() for w in spec.get("words", [])]
                    since, until = spec.get("from"), spec.get("until")  # until: exclusive
                    if (
                        any(w in text for w in words)
                        and (since is None or day >= since)
                        and (until is None or day < until)
                    ):
                        hit = name
                        break
                if hit is not None:
                    recognised.append(f"{sg.title} read as {hit}")
                else:
                    refused.append(f"{sg.title} (not a UK transfer mechanism)")
            if recognised:
                checks.append(
                    rule.check(
                        True,
                        f"restricted transfer to {where}: " + "; ".join(recognised),
                    )
                )
            else:
                checks.append(
                    rule.check(
                        False,
                        f"restricted transfer to {where} with no UK adequacy regulation and no UK "
                        "mechanism: " + ("; ".join(refused) or "no safeguard named"),
                    )
                )
        return checks

    # -- rights requests --

    def clock_rule(self) -> LawRule | None:
        rules = self._rules("response_clock")
        return rules[0] if rules else None

    def response_due(
        self,
        received: dt.datetime,
        period: Period,
        *,
        identity_confirmed_at: dt.datetime | None,
        fee_received_at: dt.datetime | None,
        clarification_requested_at: dt.datetime | None,
        clarification_received_at: dt.datetime | None,
    ) -> tuple[dt.datetime, str]:
        """When a request must be answered (Art 12A), and how that was worked out.

        The period starts at the latest of receipt, confirmation of identity and receipt of a
        fee; the days from the day clarification was asked for to the day it arrived do not
        count, so the end moves on by that many days; then to the next working day.
        """
        from fairproc.rights import due_date

        tz = self.policy.tz
        starts = {"receipt": received}
        if identity_confirmed_at is not None:
            starts["identity confirmed"] = identity_confirmed_at
        if fee_received_at is not None:
            starts["fee received"] = fee_received_at
        which, start = max(starts.items(), key=lambda kv: kv[1])
        paused = 0
        if clarification_requested_at is not None and clarification_received_at is not None:
            asked = to_local(clarification_requested_at, tz).date()
            answered = to_local(clarification_received_at, tz).date()
            paused = (answered - asked).days + 1
        due = due_date(start + dt.timedelta(days=paused), period, tz)
        how = f"starts at {which} ({start.astimezone(dt.UTC).isoformat()})"
        if paused:
            how += f"; paused {paused} day{'s' if paused != 1 else ''} for clarification"
        return due, how


def _joined(first: Sequence[Check], second: Sequence[Check]) -> list[Check]:
    return [*first, *second]


def restriction_ground_text(ground: str) -> str:
    return RESTRICTION_GROUNDS[ground]


def words_in(text: str | None, words: Iterable[str]) -> bool:
    """Whether ``text`` holds any of ``words`` (case-insensitive, as whole phrases)."""
    if not text:
        return False
    low = text.lower()
    return any(re.search(r"\b" + re.escape(w.lower()) + r"\b", low) for w in words)

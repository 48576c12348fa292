"""Read a policy folder's TOML rule files into the model: structure and cross-check them,
every problem located by file, key path and line; the conditions are then built by
:class:`fairproc.loader.PolicyCompiler`.

Only a policy the compiled-policy cache does not hold is read, so this module (with tomllib,
cattrs and hashlib, which its functions import) is not imported with fairproc.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from fairproc.clock import WEEKDAYS, OfficeHours, zone
from fairproc.conditions import Condition, ConditionError
from fairproc.errors import PolicyError, Problem, did_you_mean
from fairproc.loader import PolicyCompiler, file_bytes
from fairproc.model import (
    BASES,
    EVENT_EFFECTS,
    REACTIONS,
    Category,
    Contact,
    EventKind,
    Fact,
    Policy,
    PolicyInfo,
    ProcessingRule,
    Purpose,
    Reaction,
    Recipient,
    RetentionRule,
    Right,
    RoutingRule,
    Rule,
    Safeguard,
    SharingRule,
    Source,
)
from fairproc.toml_lines import LineIndex
from fairproc.values import Value

if TYPE_CHECKING:
    from cattrs import Converter

T = TypeVar("T")

# top-level TOML tables: keyed tables ([purpose.<id>]) and arrays of tables ([[retention]])
KEYED: dict[str, type] = {
    "category": Category,
    "source": Source,
    "purpose": Purpose,
    "recipient": Recipient,
    "safeguard": Safeguard,
    "right": Right,
    "event": EventKind,
    "fact": Fact,
}
ARRAYS: dict[str, type] = {
    "processing": ProcessingRule,
    "sharing": SharingRule,
    "routing": RoutingRule,
    "retention": RetentionRule,
    "reaction": Reaction,
}
# names of the record built into the condition language: a record fact may not take one
RECORD_NAMES = (
    "id",
    "subject",
    "source",
    "collected_at",
    "categories",
    "resolved_at",
    "erased_at",
    "suppressed",
)
SINGLE = ("policy", "controller", "dpo", "supervisory_authority", "office_hours")


@attrs.frozen(repr=False)
class _PolicyDoc(Value):
    id: str
    title: str
    timezone: str
    marketing_purpose: str | None = None
    email_category: str | None = None
    notice: str | None = None
    adequate_locations: tuple[str, ...] = ()
    version: str | None = None


@attrs.frozen(repr=False)
class _OfficeHoursDoc(Value):
    id: str
    clause: str
    days: tuple[str, ...]
    opens: dt.time
    closes: dt.time
    closed_dates: tuple[dt.date, ...] = ()
    note: str | None = None


def _condition_hook(value: Any, _: Any) -> Condition:
    if not isinstance(value, str):
        raise ValueError(f"expected a condition (a string), got {type(value).__name__} {value!r}")
    try:
        return Condition.pending(value)
    except ConditionError as exc:
        raise ValueError(exc.problems[0].message) from None


_hooked = False


def _converter() -> Converter:
    """fairproc's cattrs converter with the rule files' hooks: cattrs is imported on the first
    load that reads TOML (a policy found in the cache never needs it)."""
    global _hooked
    from fairproc.convert import converter

    if not _hooked:
        from cattrs.gen import make_dict_structure_fn, override

        converter.register_structure_hook(Condition, _condition_hook)
        converter.register_structure_hook(
            Condition | None, lambda v, _: None if v is None else _condition_hook(v, _)
        )
        converter.register_structure_hook(
            RetentionRule,
            make_dict_structure_fn(
                RetentionRule,
                converter,
                from_=override(rename="from"),
                _cattrs_forbid_extra_keys=True,
            ),
        )
        _hooked = True
    return converter


class PolicyReader(PolicyCompiler):
    def add(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            message = p.message
            if p.path and p.path[-1] == "clause" and message == "required key is missing":
                message = "every rule needs clause: the words of the notice it encodes"
            self.problem(message, p.file, p.path)

    def digest(self, notice: str | None) -> str:
        """sha256 over the rule files and the notice, each by name and bytes, in name order."""
        names = [os.path.basename(p) for p in self.files]
        if notice is not None and os.path.isfile(os.path.join(self.folder, notice)):
            names.append(notice)
        import hashlib  # only when the rule files are read, not when the cache answers

        sha = hashlib.sha256()
        for name, content in sorted(file_bytes(self.folder, names).items()):
            sha.update(f"{name}\0{len(content)}\0".encode())
            sha.update(content)
        return "sha256:" + sha.hexdigest()

    # -- passes --

    def read(self) -> dict[str, Any]:
        import tomllib  # only when the rule files are read, not when the cache answers

        merged: dict[str, Any] = {}
        if not self.files:
            self.problems.append(
                Problem("no *.toml rule files in the policy folder", file=self.folder)
            )
        for name in self.files:
            try:
                with open(name, encoding="utf-8") as stream:
                    text = stream.read()
            except (OSError, UnicodeDecodeError) as exc:
                self.problems.append(Problem(f"cannot be read: {exc}", file=name))
                continue
            self.index[name] = LineIndex(text)
            try:
                doc = tomllib.loads(text)
            except (tomllib.TOMLDecodeError, RecursionError) as exc:
                # RecursionError: arrays or tables nested deeper than the parser can go.
                # tomllib says "(at line N, column M)", or "(at end of document)": the last line.
                match = re.search(r"line (\d+)", str(exc))
                line = int(match.group(1)) if match else max(1, len(text.splitlines()))
                self.problems.append(Problem(f"is not valid TOML: {exc}", file=name, line=line))
                continue
            for section, value in doc.items():
                if section not in KEYED and section not in ARRAYS and section not in SINGLE:
                    known = sorted([*KEYED, *ARRAYS, *SINGLE])
                    self.problem(
                        f"unknown section {section!r}"
                        + did_you_mean(section, known)
                        + f" (sections: {', '.join(known)})",
                        name,
                        (section,),
                    )
                    continue
                if section in ARRAYS:
                    if not isinstance(value, list):
                        self.problem(f"expected [[{section}]] tables", name, (section,))
                        continue
                    merged.setdefault(section, [])
                    for i, item in enumerate(value):
                        merged[section].append((name, i, item))
                    continue
                if section in SINGLE:
                    if section in merged:
                        self.problem(
                            f"[{section}] is also given in {self.origin[(section,)]}",
                            name,
                            (section,),
                        )
                        continue
                    merged[section] = value
                    self.origin[(section,)] = name
                    continue
                if not isinstance(value, dict):
                    self.problem(f"expected [{section}.<id>] tables", name, (section,))
                    continue
                bucket = merged.setdefault(section, {})
                for ident, table in value.items():
                    if ident in bucket:
                        self.problem(
                            f"duplicate {section} id {ident!r} (first given in "
                            f"{self.origin[(section, ident)]})",
                            name,
                            (section, ident),
                        )
                        continue
                    bucket[ident] = table
                    self.origin[(section, ident)] = name
        return merged

    def structure(
        self, data: Any, cl: type[T], file: str | None, path: tuple[str | int, ...]
    ) -> T | None:
        try:
            return _converter().structure(data, cl)
        except Exception as exc:  # cattrs gathers every failure of the entry
            from fairproc.convert import problems_from

            self.add(problems_from(exc, path, file))
            return None

    def keyed(self, merged: Mapping[str, Any], section: str, cl: type[T]) -> dict[str, T]:
        out: dict[str, T] = {}
        for ident, table in merged.get(section, {}).items():
            file = self.file_of(section, ident)
            if not isinstance(table, dict):
                self.problem("expected a table", file, (section, ident))
                continue
            if "id" in table:
                self.problem(
                    "the id is the table's name; remove the id key", file, (section, ident, "id")
                )
                continue
            if not re.fullmatch(r"[a-z][a-z0-9_]*", ident):
                self.problem(
                    "ids are lower-case words joined by _ (such as quick_quote)",
                    file,
                    (section, ident),
                )
            value = self.structure({"id": ident, **table}, cl, file, (section, ident))
            if value is not None:
                out[ident] = value
        return out

    def arrays(
        self, merged: Mapping[str, Any], section: str, cl: type[T]
    ) -> list[tuple[T, str, tuple[str | int, ...]]]:
        out: list[tuple[T, str, tuple[str | int, ...]]] = []
        seen: dict[str, str] = {}
        for file, i, table in merged.get(section, []):
            path: tuple[str | int, ...] = (section, i)
            value = self.structure(table, cl, file, path)
            if value is None:
                continue
            ident = value.id  # type: ignore[attr-defined]
            if ident in seen:
                self.problem(
                    f"duplicate rule id {ident!r} (first given in {seen[ident]})",
                    file,
                    (*path, "id"),
                )
                continue
            seen[ident] = file
            out.append((value, file, path))
        return out

    def load(self) -> Policy:
        merged = self.read()
        info_doc = None
        policy_file = self.file_of("policy")
        if "policy" not in merged:
            self.problems.append(
                Problem(
                    "no [policy] table (id, title, timezone) in any rule file",
                    file=self.folder,
                )
            )
        else:
            info_doc = self.structure(merged["policy"], _PolicyDoc, policy_file, ("policy",))
        contacts: dict[str, Contact | None] = {}
        for section in ("controller", "dpo", "supervisory_authority"):
            table = merged.get(section)
            contacts[section] = (
                None
                if table is None
                else self.structure(table, Contact, self.file_of(section), (section,))
            )
        hours_doc = None
        if "office_hours" in merged:
            hours_doc = self.structure(
                merged["office_hours"],
                _OfficeHoursDoc,
                self.file_of("office_hours"),
                ("office_hours",),
            )

        categories = self.keyed(merged, "category", Category)
        sources = self.keyed(merged, "source", Source)
        purposes = self.keyed(merged, "purpose", Purpose)
        recipients = self.keyed(merged, "recipient", Recipient)
        safeguards = self.keyed(merged, "safeguard", Safeguard)
        rights = self.keyed(merged, "right", Right)
        events = self.keyed(merged, "event", EventKind)
        facts = self.keyed(merged, "fact", Fact)
        processing = self.arrays(merged, "processing", ProcessingRule)
        self.sharing = self.arrays(merged, "sharing", SharingRule)
        routing = self.arrays(merged, "routing", RoutingRule)
        retention = self.arrays(merged, "retention", RetentionRule)
        self.reactions = self.arrays(merged, "reaction", Reaction)

        tz_name = info_doc.timezone if info_doc else "UTC"
        try:
            zone(tz_name)
        except ValueError as exc:
            self.problem(str(exc), policy_file, ("policy", "timezone"))
            tz_name = "UTC"

        hours = hours_rule = None
        if hours_doc is not None:
            file = self.file_of("office_hours")
            days = set()
            for i, day in enumerate(hours_doc.days):
                if day.lower() not in WEEKDAYS:
                    self.problem(
                        f"expected a weekday name ({', '.join(WEEKDAYS)}), got {day!r}",
                        file,
                        ("office_hours", "days", i),
                    )
                else:
                    days.add(WEEKDAYS.index(day.lower()))
            if hours_doc.opens >= hours_doc.closes:
                self.problem("opens must be before closes", file, ("office_hours", "closes"))
            hours = OfficeHours(
                frozenset(days),
                hours_doc.opens,
                hours_doc.closes,
                frozenset(hours_doc.closed_dates),
            )
            hours_rule = Rule(hours_doc.id, hours_doc.clause, hours_doc.note)

        controller = contacts["controller"]
        if controller is None and "controller" not in merged:
            self.problems.append(
                Problem("no [controller] table: who the controller is", file=self.folder)
            )
        info = PolicyInfo(
            id=info_doc.id if info_doc else os.path.basename(self.folder),
            title=info_doc.title if info_doc else os.path.basename(self.folder),
            timezone=tz_name,
            controller=controller or Contact(name="?"),
            dpo=contacts["dpo"],
            supervisory_authority=contacts["supervisory_authority"],
            office_hours=hours,
            office_hours_rule=hours_rule,
            marketing_purpose=info_doc.marketing_purpose if info_doc else None,
            email_category=info_doc.email_category if info_doc else None,
            notice=info_doc.notice if info_doc else None,
            version=info_doc.version if info_doc else None,
        )
        policy = Policy(
            info=info,
            categories=categories,
            sources=sources,
            purposes=purposes,
            processing=tuple(r for r, _, _ in processing),
            recipients=recipients,
            safeguards=safeguards,
            routing=tuple(r for r, _, _ in routing),
            retention=tuple(r for r, _, _ in retention),
            reactions=tuple(r for r, _, _ in self.reactions),
            sharing=tuple(r for r, _, _ in self.sharing),
            rights=rights,
            events=events,
            facts=facts,
            adequate_locations=info_doc.adequate_locations if info_doc else (),
            path=self.folder,
            digest=self.digest(info_doc.notice if info_doc else None),
        )
        self.cross_check(policy, processing, routing, retention)
        structured = policy
        # Compile even when problems were found, so condition errors are reported with them.
        policy = self.compile(policy, processing, routing, retention)
        if self.problems:
            raise PolicyError(self.problems)
        self.structured = structured
        return policy

    # -- cross references --

    def ids(
        self,
        known: Iterable[str],
        what: str,
        values: Iterable[str] | str | None,
        file: str | None,
        path: tuple[str | int, ...],
    ) -> None:
        """Report each of ``values`` not in ``known``: a list's items at ``path[i]``, a single
        id (a string) at ``path`` itself."""
        if values is None:
            return
        known = list(known)
        items = (
            [(path, values)]
            if isinstance(values, str)
            else [((*path, i), value) for i, value in enumerate(values)]
        )
        for at, value in items:
            if value not in known:
                self.problem(
                    f"unknown {what} {value!r}"
                    + did_you_mean(value, known)
                    + f" (known: {', '.join(sorted(known)) or 'none'})",
                    file,
                    at,
                )

    def cross_check(
        self,
        policy: Policy,
        processing: Sequence[tuple[ProcessingRule, str, Any]],
        routing: Sequence[tuple[RoutingRule, str, Any]],
        retention: Sequence[tuple[RetentionRule, str, Any]],
    ) -> None:
        cats, srcs = list(policy.categories), list(policy.sources)
        for reaction, rfile, rpath in self.reactions:
            if reaction.on not in ("record", "event"):
                self.problem(
                    f"on is 'record' (a record collected) or 'event' (an event posted), "
                    f"got {reaction.on!r}",
                    rfile,
                    (*rpath, "on"),
                )
            if reaction.do not in REACTIONS:
                self.problem(
                    f"unknown reaction {reaction.do!r}{did_you_mean(reaction.do, REACTIONS)} "
                    f"(known: {', '.join(REACTIONS)})",
                    rfile,
                    (*rpath, "do"),
                )
            if reaction.do in ("record_objection", "record_restriction") and reaction.on != "event":
                self.problem(
                    f"do = {reaction.do!r} reacts to an event: on = 'event'",
                    rfile,
                    (*rpath, "on"),
                )
            if reaction.do == "route" and reaction.on != "record":
                self.problem(
                    "do = 'route' reacts to a record: on = 'record'", rfile, (*rpath, "on")
                )
        for s in policy.sources.values():
            self.ids(
                cats,
                "category",
                s.categories,
                self.file_of("source", s.id),
                ("source", s.id, "categories"),
            )
        for p in policy.purposes.values():
            file = self.file_of("purpose", p.id)
            self.ids(cats, "category", p.categories, file, ("purpose", p.id, "categories"))
            if not p.bases:
                self.problem(
                    "a purpose needs at least one [[purpose.<id>.bases]] entry: "
                    "its lawful basis and the sources it covers",
                    file,
                    ("purpose", p.id),
                )
            for i, g in enumerate(p.bases):
                self.ids(
                    BASES, "lawful basis", g.basis, file, ("purpose", p.id, "bases", i, "basis")
                )
                self.ids(srcs, "source", g.sources, file, ("purpose", p.id, "bases", i, "sources"))
        for rule, file, path in processing:
            self.ids(policy.purposes, "purpose", rule.purposes, file, (*path, "purposes"))
            self.ids(BASES, "lawful basis", rule.bases, file, (*path, "bases"))
        for share, file, path in self.sharing:
            self.ids(policy.recipients, "recipient", share.recipients, file, (*path, "recipients"))
        for r in policy.recipients.values():
            file = self.file_of("recipient", r.id)
            self.ids(cats, "category", r.categories, file, ("recipient", r.id, "categories"))
            if r.requires_purpose is not None:
                self.ids(
                    policy.purposes,
                    "purpose",
                    r.requires_purpose,
                    file,
                    ("recipient", r.id, "requires_purpose"),
                )
            self.ids(
                policy.safeguards,
                "safeguard",
                r.safeguards,
                file,
                ("recipient", r.id, "safeguards"),
            )
        for route, file, path in routing:
            self.ids(srcs, "source", route.sources, file, (*path, "sources"))
        retention_ids = [r.id for r, _, _ in retention]
        for keep, file, path in retention:
            self.ids(srcs, "source", keep.sources, file, (*path, "sources"))
            if keep.applies_to not in ("records", "suppression"):
                self.problem(
                    f"applies_to is 'records' or 'suppression', got {keep.applies_to!r}",
                    file,
                    (*path, "applies_to"),
                )
            modes = [keep.keep is not None, keep.review, keep.forever]
            if sum(modes) != 1:
                self.problem(
                    "a retention rule gives exactly one of keep (a period), "
                    "review = true (no period declared) or forever = true",
                    file,
                    path,
                )
            if keep.keep is not None and keep.from_ is None:
                self.problem(
                    "keep needs from: the instant the period counts from "
                    "(such as record.collected_at)",
                    file,
                    (*path, "keep"),
                )
            if keep.action not in ("delete", "anonymise"):
                self.problem(
                    f"action is 'delete' or 'anonymise', got {keep.action!r}",
                    file,
                    (*path, "action"),
                )
        for right in policy.rights.values():
            file = self.file_of("right", right.id)
            at = ("right", right.id)
            self.ids(BASES, "lawful basis", right.bases, file, (*at, "bases"))
            self.ids(BASES, "lawful basis", right.refers_to_bases, file, (*at, "refers_to_bases"))
            self.ids(srcs, "source", right.erase_sources, file, (*at, "erase_sources"))
            self.ids(retention_ids, "retention rule", right.kept_by, file, (*at, "kept_by"))
        for e in policy.events.values():
            self.ids(
                EVENT_EFFECTS,
                "event effect",
                e.effects,
                self.file_of("event", e.id),
                ("event", e.id, "effects"),
            )
        for f in policy.facts.values():
            file = self.file_of("fact", f.id)
            if (f.latest is None) == (f.latest_of is None):
                self.problem(
                    "a fact gives exactly one of latest = [kinds] (when it last "
                    "happened) or latest_of = [kinds] (which happened last)",
                    file,
                    ("fact", f.id),
                )
            self.ids(policy.events, "event kind", f.latest, file, ("fact", f.id, "latest"))
            self.ids(policy.events, "event kind", f.latest_of, file, ("fact", f.id, "latest_of"))
            built_in = RECORD_NAMES if f.of_record else ("id", "suppressed", "restricted")
            if f.id in built_in:
                self.problem(f"{f.name} is built in; choose another fact id", file, ("fact", f.id))
            if f.of_record and (f.latest is None or f.collections):
                self.problem(
                    "a fact of the record (of_record = true) gives latest = [kinds] of events "
                    "that name a record, and no collections",
                    file,
                    ("fact", f.id),
                )
        pfile = self.file_of("policy")
        if policy.info.marketing_purpose is not None:
            self.ids(
                policy.purposes,
                "purpose",
                policy.info.marketing_purpose,
                pfile,
                ("policy", "marketing_purpose"),
            )
        if policy.info.email_category is not None:
            self.ids(
                cats, "category", policy.info.email_category, pfile, ("policy", "email_category")
            )
        seen: dict[str, str] = {}
        for rule_id in [
            *(p.rule_id for p in policy.purposes.values()),
            *(r.id for r in policy.processing),
            *(r.id for r in policy.sharing),
            *(r.id for r in policy.routing),
            *retention_ids,
            *(r.rule_id for r in policy.recipients.values()),
            *(s.rule_id for s in policy.safeguards.values()),
            *(r.rule_id for r in policy.rights.values()),
            *([hours.id] if (hours := policy.info.office_hours_rule) else []),
        ]:
            if rule_id in seen:
                self.problems.append(Problem(f"rule id {rule_id!r} is used twice"))
            seen[rule_id] = rule_id
        for rule in self.all_rules(policy):
            clause = getattr(rule, "clause", None)
            if isinstance(clause, str) and not clause.strip():
                self.problems.append(
                    Problem(
                        f"rule {getattr(rule, 'id', '?')!r}: clause is empty; give the notice's "
                        "words it encodes"
                    )
                )

    @staticmethod
    def all_rules(policy: Policy) -> Iterable[Any]:
        yield from policy.categories.values()
        yield from policy.sources.values()
        yield from policy.purposes.values()
        yield from policy.processing
        yield from policy.sharing
        yield from policy.recipients.values()
        yield from policy.safeguards.values()
        yield from policy.routing
        yield from policy.retention
        yield from policy.rights.values()
        yield from policy.events.values()
        yield from policy.facts.values()

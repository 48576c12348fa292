"""Decisions that explain themselves: the outcome, every rule that took part, whether it
passed, the facts it read and the notice's words behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import attrs

from fairproc.clock import to_local
from fairproc.values import Value

_NO_FACTS: Mapping[str, Any] = {}


def _no_facts() -> Mapping[str, Any]:
    return _NO_FACTS


@attrs.frozen(repr=False)
class Check(Value):
    """One rule's part in a decision.

    ``passed`` is None for a rule that informs the decision without passing or failing it.
    The facts it read are computed on demand, so a decision nobody explains costs little.
    """

    rule: str
    passed: bool | None
    clause: str
    note: str | None = None
    reason: str | None = None  # the code a failed rule gives (suppressed, li_window_expired...)
    detail: str | None = None
    scope: str | None = None  # which record, in a decision about several
    # None for the notice's own rules; "law" for a law layer's (fairproc.law), whose clause
    # quotes the law rather than the notice
    layer: str | None = None
    facts_fn: Callable[[], Mapping[str, Any]] = attrs.field(default=_no_facts, eq=False, repr=False)

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.facts_fn()

    def to_dict(self) -> dict[str, Any]:
        from fairproc.convert import converter  # cattrs: imported when first rendered

        out: dict[str, Any] = {"rule": self.rule, "passed": self.passed}
        for key in ("reason", "detail", "scope"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["facts"] = {k: converter.unstructure(v) for k, v in self.facts.items()}
        out["clause"] = self.clause
        if self.layer is not None:
            out["layer"] = self.layer
        if self.note:
            out["note"] = self.note
        return out


class LazyChecks(Sequence[Check]):
    """A decision's checks, built the first time anyone reads them.

    The engine decides from booleans and keeps what explaining needs; most decisions are
    asked for their outcome only, so building a :class:`Check` per rule (with its detail text)
    on every call would be wasted. Once built, the checks compare, hash and print as the
    tuple they are.
    """

    __slots__ = ("_args", "_build", "_items", "_written")

    def __init__(self, build: Callable[..., Sequence[Check]], *args: Any):
        """``build(*args)`` gives the checks (arguments rather than a closure: cheaper to make,
        and a decision is made far more often than it is explained)."""
        self._build: Callable[..., Sequence[Check]] | None = build
        self._args = args
        self._items: tuple[Check, ...] | None = None
        self._written: tuple[dt.tzinfo | None, str] | None = None

    def _get(self) -> tuple[Check, ...]:
        items = self._items
        if items is None:
            assert self._build is not None
            items = self._items = tuple(self._build(*self._args))
            self._build, self._args = None, ()  # what they held may go
        return items

    def written(self, tz: dt.tzinfo | None) -> str:
        """The checks as an explanation shows them (:func:`write_checks`), written once: a
        compiled question gives the same checks to every decision of a stretch of time over
        which they cannot change (:mod:`fairproc.compiled`)."""
        found = self._written
        if found is None or found[0] is not tz:
            found = self._written = (tz, "\n".join(write_checks(self._get(), tz)))
        return found[1]

    @overload
    def __getitem__(self, index: int) -> Check: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Check, ...]: ...

    def __getitem__(self, index: int | slice) -> Check | tuple[Check, ...]:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[Check]:
        return iter(self._get())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyChecks):
            return self._get() == other._get()
        if isinstance(other, tuple):
            return self._get() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


@attrs.frozen(repr=False)
class Finding(Value):
    code: str
    message: str
    rule: str | None = None


# No slots: a frozen class with a ``__dict__`` is built by filling the dict, about half the cost
# of setting fifteen slots one by one, and a host may ask for a decision per record.
@attrs.frozen(slots=False, repr=False)
class Decision(Value):
    """The answer to one question, with its explanation."""

    question: str
    outcome: str
    at: dt.datetime
    asked: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    basis: str | None = None
    categories: tuple[str, ...] | None = None
    until: dt.datetime | None = None
    due: dt.datetime | None = None
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()
    # a tuple, or LazyChecks: the explanation is built when first read
    checks: Sequence[Check] = ()
    tz: dt.tzinfo | None = attrs.field(default=None, eq=False, repr=False)
    # a request about several records: each record's own outcome (erased, kept, exported...)
    per_record: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    redacted: tuple[str, ...] | None = None  # categories left out of a copy
    # may_email: the addresses (normalised) that may be used, when allowed
    addresses: tuple[str, ...] | None = None

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(r for r, o in self.per_record.items() if o == "kept")

    @property
    def erased(self) -> tuple[str, ...]:
        return tuple(r for r, o in self.per_record.items() if o == "erased")

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule id that took part, in order, each once."""
        return tuple(dict.fromkeys(c.rule for c in self.checks))

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    # -- rendering --

    def to_dict(self) -> dict[str, Any]:
        from fairproc.convert import converter  # cattrs: imported when first rendered

        out: dict[str, Any] = {
            "question": self.question,
            **dict(self.asked),
            "at": converter.unstructure(self.at),
            "outcome": self.outcome,
        }
        for key in ("basis", "categories", "until", "due"):
            value = getattr(self, key)
            if value is not None:
                out[key] = converter.unstructure(list(value) if key == "categories" else value)
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.per_record:
            out["records"] = dict(self.per_record)
        if self.redacted is not None:
            out["redacted"] = list(self.redacted)
        if self.addresses is not None:
            out["addresses"] = list(self.addresses)
        if self.findings:
            out["findings"] = [attrs.asdict(f) for f in self.findings]
        out["rules"] = list(self.rules)
        out["explanation"] = [c.to_dict() for c in self.checks]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        import json  # the JSON form is an edge's: not imported with the decisions

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def explain(self) -> str:
        """The decision and its trace, for a person: rendered on first read and kept (a
        decision never changes)."""
        fields = self.__dict__  # what is kept beside the fields (a frozen class's dict)
        found: str | None = fields.get("_explained")
        if found is None:
            before, after = fields.get("_explained_around") or self._around()
            found = fields["_explained"] = before + _when(self.at, self.tz) + after
        return found

    def at_instants(self) -> Callable[[dt.datetime], Decision]:
        """This decision, to be taken again at other instants: for each, every other field
        (the checks, and what was asked, too) and the explanation's text but for the instant
        are this one's. For a question whose answer, checks and facts hold over a stretch of
        time (:mod:`fairproc.compiled`): a copy of the fields, not a new build of each."""
        fields = dict(self.__dict__)
        fields.pop("_explained", None)
        if "_explained_around" not in fields:
            # written once, by this decision, for every decision made from it
            fields.setdefault("_explained_like", self)
        cls, new, mine = type(self), object.__new__, self.__dict__

        def at_instant(at: dt.datetime) -> Decision:
            again = new(cls)
            made = again.__dict__
            made.update(fields)
            made["at"] = at
            around = mine.get("_explained_around")
            if around is not None:  # written already
                made["_explained_around"] = around
            return again

        return at_instant

    def _around(self) -> tuple[str, str]:
        """The explanation's text before and after the instant asked about (the one place
        the instant shows), kept: a decision :meth:`at_instants` makes shares it."""
        fields = self.__dict__
        found: tuple[str, str] | None = fields.get("_explained_around")
        if found is None:
            like: Decision | None = fields.get("_explained_like")
            found = fields["_explained_around"] = (
                self._write_around()
                if like is None
                else (like.__dict__.get("_explained_around") or like._around())
            )
        return found

    def _write_around(self) -> tuple[str, str]:
        asked = ", ".join([f"{k}={v}" for k, v in self.asked.items()])
        lines = [f": {self.outcome.upper()}"]
        extras = []
        if self.basis:
            extras.append(f"basis {self.basis}")
        if self.categories is not None:
            extras.append("categories " + (", ".join(self.categories) or "none"))
        if self.addresses is not None:
            extras.append("addresses " + (", ".join(self.addresses) or "none"))
        if self.until is not None:
            extras.append(f"until {_when(self.until, self.tz)}")
        if self.due is not None:
            extras.append(f"due {_when(self.due, self.tz)}")
        if self.reasons:
            extras.append("reasons " + ", ".join(self.reasons))
        if self.per_record:
            extras.append("records " + ", ".join(f"{r} {o}" for r, o in self.per_record.items()))
        if self.redacted:
            extras.append("redacted " + ", ".join(self.redacted))
        if extras:
            lines.append("  " + "; ".join(extras))
        for finding in self.findings:
            lines.append(f"  finding {finding.code}: {finding.message}")
        checks = self.checks
        written = (
            checks.written(self.tz)
            if isinstance(checks, LazyChecks)
            else "\n".join(write_checks(checks, self.tz))
        )
        if written:
            lines.append(written)
        return f"{self.question}({asked}) at ", "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()


def write_checks(checks: Iterable[Check], tz: dt.tzinfo | None) -> list[str]:
    """The lines of an explanation that show ``checks``: each rule, its facts, its clause."""
    lines: list[str] = []
    for check in checks:
        head = f"  [{_MARKS[check.passed]}] {check.rule}"
        if check.scope:
            head += f" ({check.scope})"
        if check.reason and check.passed is False:
            head += f" -> {check.reason}"
        if check.detail:
            head += f": {check.detail}"
        lines.append(head)
        for name, value in check.facts.items():
            lines.append(f"         {name} = {_fact(value, tz)}")
        if check.layer == "law":
            lines.append(f"         law: {check.clause}")
        else:
            lines.append(f'         notice: "{check.clause}"')
        if check.note:
            lines.append(f"         reading: {check.note}")
    return lines


_MARKS = {True: "pass", False: "FAIL", None: "info"}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # strftime's %a, C locale
_WHEN_SIZE = 1024
_WHENS: dict[tuple[float, dt.tzinfo | None], str] = {}


# "MM:SS" for each second of an hour: formatting is the dearest step of writing an instant
_MINUTE_SECONDS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_HOURS: dict[tuple[int, int, int, int, dt.tzinfo | None], tuple[str, str] | None] = {}
_NO_HOUR = ("", "")
_UTC = dt.UTC  # a miss in _HOURS (None is an answer: the hour is written the long way)


def _when(value: dt.datetime, tz: dt.tzinfo | None) -> str:
    """``value`` as an explanation shows it: local (weekday, date, time, zone) and UTC.

    Written from the text its UTC hour begins with (:func:`_hour_heads`, kept per hour and
    zone) and its minutes and seconds: a host asking at ``now`` shows a new instant every
    time. An hour that cannot be written so is written in full (:func:`_written`), each
    instant once: an explanation shows the same few instants again and again."""
    utc = value if value.tzinfo is _UTC else value.astimezone(_UTC)
    key = (utc.year, utc.month, utc.day, utc.hour, tz)
    heads = _HOURS.get(key, _NO_HOUR)
    if heads is _NO_HOUR:
        if len(_HOURS) >= _WHEN_SIZE:
            _HOURS.clear()
        heads = _HOURS[key] = _hour_heads(utc, tz)
    if heads is None:
        return _written(value, tz)
    local_head, utc_head = heads
    seconds = _MINUTE_SECONDS[utc.minute * 60 + utc.second]
    if tz is None:
        return utc_head + seconds + "Z"
    return local_head + seconds + utc_head + seconds + "Z)"


def _hour_heads(utc: dt.datetime, tz: dt.tzinfo | None) -> tuple[str, str] | None:
    """The text every instant of ``utc``'s hour begins with, locally and in UTC, up to its
    minutes: ("Fri 2027-01-01 12:", " GMT (2027-01-01T12:"); without a zone ("",
    "2027-01-01T12:"). None when the hour's instants differ by more than their minutes and
    seconds: the zone's offset or name changes in the hour, the offset is not whole hours
    (the local minute is then not the UTC one), or a year before 1000 (written by strftime).
    Sampled at the hour's first and last instant: no zone changes its offset and back again
    within an hour (as :func:`fairproc.clock.day_offset_us` takes for a day)."""
    start = utc.replace(minute=0, second=0, microsecond=0)
    if start.year < 1000:
        return None
    utc_head = _stamp(start)[:-5]
    if tz is None:
        return "", utc_head
    try:
        end = start + dt.timedelta(hours=1, microseconds=-1)
        first, last = to_local(start, tz), to_local(end, tz)
    except OverflowError:  # the hour's local end lies past the dates a datetime holds
        return None
    offset = first.utcoffset()
    if (
        offset is None
        or offset != last.utcoffset()
        or offset % dt.timedelta(hours=1)
        or first.tzname() != last.tzname()
        or first.year < 1000
    ):
        return None
    local_head = f"{_WEEKDAYS[first.weekday()]} {_stamp(first, ' ')[:-5]}"
    return local_head, f" {first.tzname() or ''} ({utc_head}"


def _written(value: dt.datetime, tz: dt.tzinfo | None) -> str:
    """:func:`_when`'s text, written in full (``strftime`` is the dearest step), each instant
    once: remembered by instant and zone."""
    key = (value.timestamp(), tz)
    found = _WHENS.get(key)
    if found is None:
        utc = value.astimezone(dt.UTC)
        found = _stamp(utc) + "Z"
        if tz is not None:
            local = to_local(value, tz)
            found = (
                f"{_WEEKDAYS[local.weekday()]} {_stamp(local, ' ')} {local.tzname() or ''}"
                f" ({found})"
            )
        if len(_WHENS) >= _WHEN_SIZE:
            _WHENS.clear()
        _WHENS[key] = found
    return found


def _stamp(value: dt.datetime, sep: str = "T") -> str:
    """``%Y-%m-%d<sep>%H:%M:%S`` without strftime (which pads no year before 1000 here)."""
    if value.year < 1000:
        return value.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}{sep}"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


def _fact(value: Any, tz: dt.tzinfo | None) -> str:
    if isinstance(value, dt.datetime):
        return _when(value, tz)
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(sorted(map(str, value))) + "}"
    if value is None:
        return "(none)"
    return str(value)

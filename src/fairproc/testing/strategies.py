"""Hypothesis strategies that generate valid worlds for any loaded policy.

This module imports `hypothesis <https://hypothesis.readthedocs.io>`_, which fairproc itself
does not depend on: install it with fairproc's ``dev`` extra (``pip install "fairproc[dev]"``)
or on its own. Neither ``import fairproc`` nor the pytest plugin imports it.

Everything is derived from the policy, so the same strategies serve a host's own policy:

* :func:`instants`: timezone-aware datetimes, written with assorted offsets and zones, that
  favour the edges which break date code: the policy zone's daylight-saving changeovers (both
  sides of the gap and of the repeated hour), 29 February, month ends, office-hours boundaries
  and the policy's dated rules (a safeguard's validity);
* :func:`records`: a record with data for its source's categories;
* :func:`timelines`: a subject's events, in order (equal instants included);
* :func:`worlds`: records, timelines and suppression entries of a few subjects, as a
  :class:`GeneratedWorld` (a :class:`~fairproc.World` whose ``repr`` rebuilds it);
* :func:`instants_for`: instants that matter for one world: its own instants and their
  retention due dates and other periods of the policy, each to the microsecond either side;
* :func:`questions`: any question the engine answers, about a world, at such an instant.

>>> from hypothesis import given, settings
>>> from fairproc import Engine, load_policy
>>> from fairproc.testing import strategies as fst
>>> policy = load_policy("flexioffices")
>>> @settings(max_examples=20)
... @given(fst.worlds(policy).flatmap(lambda w: fst.questions(policy, w).map(lambda q: (w, q))))
... def test_every_question_is_answered(case):
...     world, question = case
...     assert question.ask(Engine(policy, world)).outcome
>>> test_every_question_is_answered()
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from fairproc.clock import Period
from fairproc.conditions import Condition
from fairproc.decisions import Decision
from fairproc.engine import Engine
from fairproc.model import Event, Policy, Record, SuppressionEntry
from fairproc.values import Value
from fairproc.world import World

__all__ = [
    "EMAILS",
    "GeneratedWorld",
    "Question",
    "category_values",
    "edge_instants",
    "emails",
    "instants",
    "instants_for",
    "near",
    "policy_periods",
    "questions",
    "records",
    "timelines",
    "timezones",
    "worlds",
]

UTC = dt.UTC
MIN_YEAR = 2016
MAX_YEAR = 2040

#: Zones and offsets an instant may be written in: the policy's own zone comes first. Odd
#: offsets (+05:45, -09:30), a zone with a 30-minute DST shift (Lord Howe), both ends of the
#: date line.
ZONES: tuple[dt.tzinfo, ...] = (
    UTC,
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("Pacific/Kiritimati"),
    ZoneInfo("Pacific/Pago_Pago"),
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(-dt.timedelta(hours=9, minutes=30)),
    dt.timezone(dt.timedelta(hours=5, minutes=45)),
)

#: The email addresses generated worlds use: few, so subjects share them and suppression
#: entries match; written with assorted case and spaces, which normalise to the same address.
EMAILS = ("ada@example.com", "grace@example.org", "alan@example.net")

_TINY = (dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(seconds=1))
_OFFSETS = (
    dt.timedelta(0),
    -dt.timedelta(microseconds=1),
    dt.timedelta(microseconds=1),
    -dt.timedelta(seconds=1),
    dt.timedelta(seconds=1),
    -dt.timedelta(minutes=30),
    dt.timedelta(minutes=30),
    -dt.timedelta(hours=1),
    dt.timedelta(hours=1),
    -dt.timedelta(days=1),
    dt.timedelta(days=1),
)


class _Item:
    """``items[i]``, with a short repr: hypothesis prints strategies when it reports, and a
    strategy holding thousands of instants would print them all."""

    def __init__(self, items: Sequence[Any], name: str):
        self.items = tuple(items)
        self.name = name

    def __call__(self, index: int) -> Any:
        return self.items[index]

    def __repr__(self) -> str:
        return f"<one of {len(self.items)} {self.name}>"


def _pick(items: Sequence[Any], name: str) -> st.SearchStrategy[Any]:
    """Like ``sampled_from(items)`` (shrinking to the first), with a short repr."""
    if not items:
        raise ValueError(f"no {name} to pick from")
    return st.integers(0, len(items) - 1).map(_Item(items, name))


# --- time ------------------------------------------------------------------------------------


def _policy_zone(policy: Policy | None) -> dt.tzinfo:
    return policy.tz if policy is not None else ZoneInfo("Europe/London")


def timezones(policy: Policy | None = None) -> st.SearchStrategy[dt.tzinfo]:
    """A zone or fixed offset to write an instant in: UTC, the policy's zone, or others."""
    local = _policy_zone(policy)
    others = tuple(z for z in ZONES if z is not UTC and z != local)
    # The local zone about one draw in four: its repeated hour is where naive code breaks.
    return st.sampled_from((UTC, local, *others[:3], local, *others[3:], local))


def _written_in(instant: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The same instant, written in ``tz`` (``astimezone`` sets ``fold`` in a repeated hour)."""
    return instant.astimezone(tz)


def _transitions(tz: dt.tzinfo, first_year: int, last_year: int) -> tuple[dt.datetime, ...]:
    key = getattr(tz, "key", None)
    if key is None:
        return ()
    return _zone_transitions(str(key), first_year, last_year)


@lru_cache(maxsize=32)
def _zone_transitions(key: str, first_year: int, last_year: int) -> tuple[dt.datetime, ...]:
    """The UTC instants at which ``key``'s offset changes (to the second)."""
    tz = ZoneInfo(key)
    out: list[dt.datetime] = []
    step = dt.timedelta(days=1)
    t = dt.datetime(first_year, 1, 1, tzinfo=UTC)
    end = dt.datetime(last_year + 1, 1, 1, tzinfo=UTC)
    offset = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + step
        new = nxt.astimezone(tz).utcoffset()
        if new != offset:
            lo, hi = t, nxt  # the change is in (lo, hi]
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
            offset = new
        t = nxt
    return tuple(out)


def _local(tz: dt.tzinfo, day: dt.date, time: dt.time, fold: int = 0) -> dt.datetime:
    """The instant of wall time ``time`` on ``day`` in ``tz`` (through UTC, so a wall time in a
    spring-forward gap becomes a real instant)."""
    wall = dt.datetime.combine(day, time).replace(tzinfo=tz, fold=fold)
    return wall.astimezone(UTC)


def _dated_rules(policy: Policy) -> list[dt.date]:
    days: list[dt.date] = []
    for safeguard in policy.safeguards.values():
        days.extend(d for d in (safeguard.valid_from, safeguard.valid_until) if d is not None)
        days.extend(s.valid_from for s in safeguard.successors)
    hours = policy.info.office_hours
    if hours is not None:
        days.extend(hours.closed_dates)
    return days


def _per_policy(policy: Policy | None, key: Any, make: Callable[[], Any]) -> Any:
    """``make()``, computed once per policy object and ``key`` (policies are not hashable)."""
    slot = (id(policy), key)
    hit = _CACHE.get(slot)
    if hit is None or hit[0] is not policy:
        hit = (policy, make())
        _CACHE[slot] = hit
    return hit[1]


_CACHE: dict[tuple[int, Any], tuple[Policy | None, Any]] = {}


def _edges(
    policy: Policy | None, first_year: int, last_year: int
) -> dict[str, tuple[tuple[dt.datetime, ...], ...]]:
    found: dict[str, tuple[tuple[dt.datetime, ...], ...]] = _per_policy(
        policy,
        ("edges", first_year, last_year),
        lambda: _make_edges(policy, first_year, last_year),
    )
    return found


def _make_edges(
    policy: Policy | None, first_year: int, last_year: int
) -> dict[str, tuple[tuple[dt.datetime, ...], ...]]:
    """Edge instants by kind: ``dst``, ``calendar``, ``dated`` (the policy's dated rules) and
    ``due`` (one group per period: a period before a dst or calendar edge)."""
    tz = _policy_zone(policy)
    dst: set[dt.datetime] = set()
    for change in _transitions(tz, first_year, last_year):
        dst.update(change + delta for delta in _OFFSETS)
    days: set[dt.datetime] = set()
    for year in range(first_year, last_year + 1):
        ends = [dt.date(year, 1, 31), dt.date(year, 12, 31), dt.date(year, 2, 28)]
        if calendar.isleap(year):
            ends.append(dt.date(year, 2, 29))
        for day in ends:
            for time in (dt.time(0), dt.time(12), dt.time(23, 59, 59, 999999)):
                days.add(_local(tz, day, time))
        for day in (dt.date(year, 1, 1), dt.date(year, 3, 1)):
            days.add(_local(tz, day, dt.time(0)))
    groups: dict[str, tuple[tuple[dt.datetime, ...], ...]] = {
        "dst": (tuple(sorted(dst)),) if dst else (),
        "calendar": (tuple(sorted(days)),),
    }
    if policy is not None:
        dated: set[dt.datetime] = set()
        for day in _dated_rules(policy):
            if first_year <= day.year <= last_year:
                midnight = _local(tz, day, dt.time(0))
                dated.update(midnight + d for d in _TINY)
                dated.add(midnight - dt.timedelta(microseconds=1))
        if dated:
            groups["dated"] = (tuple(sorted(dated)),)
        # A period before an edge: a record collected then, or an enquiry resolved then,
        # falls due on the edge.
        due: list[tuple[dt.datetime, ...]] = []
        for period in policy_periods(policy):
            earlier = {period.add_to(e, tz, sign=-1).astimezone(UTC) for e in dst | days}
            kept = tuple(sorted(e for e in earlier if e.year >= first_year))
            if kept:
                due.append(kept)
        if due:
            groups["due"] = tuple(due)
    return groups


def _sorted_edges(policy: Policy | None, first_year: int, last_year: int) -> list[dt.datetime]:
    every: list[dt.datetime] = _per_policy(
        policy,
        ("sorted", first_year, last_year),
        lambda: sorted(
            {e for kind in _edges(policy, first_year, last_year).values() for g in kind for e in g}
        ),
    )
    return every


def _falls_due_on_an_edge(
    policy: Policy, source: str, min_year: int, max_year: int
) -> st.SearchStrategy[dt.datetime] | None:
    """Instants a record from ``source`` collected then falls due on an edge: a period before
    a DST or calendar edge, the periods of the source's retention rules counting from the
    collection as likely as all the policy's others (a collection is an interaction too, and
    windows run from the last one)."""
    groups = _edges(policy, min_year, max_year)
    edges = [e for kind in ("dst", "calendar") for g in groups.get(kind, ()) for e in g]
    own = [
        rule.keep
        for rule in policy.retention
        if rule.keep is not None
        and rule.from_ is not None
        and rule.from_.text.strip() == "record.collected_at"
        and (rule.sources is None or source in rule.sources)
    ]
    every = list(policy_periods(policy))
    if not every or not edges:
        return None
    tz = policy.tz

    def before(edge: dt.datetime, period: Period) -> dt.datetime:
        return _written_in(period.add_to(edge, tz, sign=-1), tz)

    periods = st.sampled_from(every)
    if own:
        periods = st.one_of(st.sampled_from(own), periods)
    return st.builds(before, _pick(edges, "edges"), periods)


def edge_instants(
    policy: Policy | None = None, *, min_year: int = MIN_YEAR, max_year: int = MAX_YEAR
) -> st.SearchStrategy[dt.datetime]:
    """Instants at the edges (in UTC), each kind as likely as the others: the policy zone's
    DST changeovers and a microsecond, a second, half an hour, an hour and a day either side;
    28/29 February, 31 January and 31 December at 00:00, 12:00 and 23:59:59.999999 local, and
    1 January and 1 March at local midnight; the local midnights where one of the policy's
    dated rules (a safeguard) changes; and, for each period the policy counts with, the
    instants that period before one of those edges, so that what is counted from them falls
    due on an edge."""
    groups = _edges(policy, min_year, max_year)
    kinds = [
        st.one_of(*(_pick(group, "edge instants") for group in kind))
        for kind in groups.values()
        if kind
    ]
    return st.one_of(*kinds)


def _office_hours_edges(
    policy: Policy, min_year: int, max_year: int
) -> st.SearchStrategy[dt.datetime] | None:
    hours = policy.info.office_hours
    if hours is None:
        return None
    tz = policy.tz
    times: list[dt.time] = [dt.time(0), dt.time(23, 59, 59, 999999)]
    for t in (hours.opens, hours.closes):
        wall = dt.datetime.combine(dt.date(2000, 1, 3), t)
        times.extend((wall + d).time() for d in (-dt.timedelta(microseconds=1), dt.timedelta(0)))
        times.append((wall + dt.timedelta(seconds=1)).time())
    days = st.dates(dt.date(min_year, 1, 1), dt.date(max_year, 12, 31))
    if hours.closed_dates:
        days = st.one_of(days, st.sampled_from(sorted(hours.closed_dates)))
    return st.builds(
        lambda day, time, fold: _local(tz, day, time, fold),
        days,
        st.sampled_from(times),
        st.sampled_from((0, 1)),
    )


def instants(
    policy: Policy | None = None,
    *,
    min_year: int = MIN_YEAR,
    max_year: int = MAX_YEAR,
    around: Iterable[dt.datetime] = (),
) -> st.SearchStrategy[dt.datetime]:
    """Aware instants between ``min_year`` and ``max_year``, written in assorted zones and
    offsets, favouring edges: :func:`edge_instants`, the policy's office-hours boundaries (a
    microsecond before opening, opening, ... on any day, weekends included) and, when given,
    :func:`near` the instants ``around``. Wall times in a DST gap and both readings of a
    repeated hour are among them."""
    plain = st.datetimes(
        min_value=dt.datetime(min_year, 1, 1),
        max_value=dt.datetime(max_year, 12, 31, 23, 59, 59),
        timezones=timezones(policy),
    )
    edgy: list[st.SearchStrategy[dt.datetime]] = [
        edge_instants(policy, min_year=min_year, max_year=max_year)
    ]
    if policy is not None:
        hours = _office_hours_edges(policy, min_year, max_year)
        if hours is not None:
            edgy.append(hours)
    anchors = tuple(around)
    if anchors:
        edgy.append(near(anchors))
    # The edges of every kind twice as likely as office hours or the anchors, and edges of any
    # kind about two draws in three.
    edgy.insert(1, edgy[0])
    written = st.builds(_written_in, st.one_of(*edgy), timezones(policy))
    return st.one_of(plain, written, written)


def near(
    anchors: Sequence[dt.datetime] | dt.datetime,
    tz: Sequence[dt.tzinfo] | st.SearchStrategy[dt.tzinfo] = (),
) -> st.SearchStrategy[dt.datetime]:
    """An instant at one of ``anchors`` or just beside it (a microsecond, a second, half an
    hour, an hour or a day either side), written in an assorted zone (one of ``tz``, or
    :func:`timezones`)."""
    points = (anchors,) if isinstance(anchors, dt.datetime) else tuple(anchors)
    if not points:
        raise ValueError("near() needs at least one instant")
    if isinstance(tz, st.SearchStrategy):
        zones = tz
    else:
        zones = st.sampled_from(tuple(tz)) if tz else timezones()
    return st.builds(
        lambda a, d, z: _written_in(a.astimezone(UTC) + d, z),
        _pick(points, "instants"),
        st.sampled_from(_OFFSETS),
        zones,
    )


# --- records, events, worlds -----------------------------------------------------------------


def emails(pool: Sequence[str] = EMAILS) -> st.SearchStrategy[str]:
    """An address from ``pool``, sometimes with capitals or spaces around it, rarely blank."""

    def variant(address: str, how: int) -> str:
        return (address, address.upper(), f"  {address.title()} ", address)[how]

    return st.one_of(
        st.builds(variant, st.sampled_from(tuple(pool)), st.integers(0, 3)),
        st.sampled_from(("", "   ")),
    )


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)


def category_values(
    policy: Policy, category: str, pool: Sequence[str] = EMAILS
) -> st.SearchStrategy[Any]:
    """A value for ``category``: an address for the policy's email category, otherwise text
    or a number (a policy says nothing of a category's type)."""
    if category == policy.info.email_category:
        return emails(pool)
    return st.one_of(_TEXT, st.integers(0, 10_000))


@st.composite
def records(
    draw: st.DrawFn,
    policy: Policy,
    *,
    record_id: str = "r1",
    subject: str | st.SearchStrategy[str] = "ada",
    source: str | st.SearchStrategy[str] | None = None,
    collected_at: st.SearchStrategy[dt.datetime] | None = None,
    values: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> Record:
    """A record from one of the policy's sources (or ``source``) holding data for some of its
    categories (sometimes none, sometimes information about other people)."""
    who = draw(subject) if isinstance(subject, st.SearchStrategy) else subject
    if source is None:
        where = draw(st.sampled_from(sorted(policy.sources)))
    else:
        where = draw(source) if isinstance(source, st.SearchStrategy) else source
    when = draw(collected_at if collected_at is not None else instants(policy))
    declared = list(policy.sources[where].categories)
    others = [c.id for c in policy.categories.values() if c.about_others]
    chosen = draw(st.lists(st.sampled_from(declared), unique=True)) if declared else []
    if others and draw(st.integers(0, 9)) == 0:
        chosen.append(draw(st.sampled_from(others)))
    data = {}
    for category in chosen:
        strategy = (values or {}).get(category) or category_values(policy, category)
        data[category] = draw(strategy)
    return Record(record_id, who, where, when, data)


_GAPS = st.one_of(
    st.sampled_from((dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(seconds=1))),
    st.timedeltas(dt.timedelta(0), dt.timedelta(days=2)),
    st.timedeltas(dt.timedelta(days=1), dt.timedelta(days=800)),
    st.sampled_from(
        (dt.timedelta(days=365), dt.timedelta(days=366), dt.timedelta(days=4 * 365 + 1))
    ),
)


@st.composite
def timelines(
    draw: st.DrawFn,
    policy: Policy,
    subject: str = "ada",
    subject_records: Sequence[Record] = (),
    *,
    start: st.SearchStrategy[dt.datetime] | None = None,
    max_events: int = 8,
    kinds: Sequence[str] | None = None,
) -> list[Event]:
    """A subject's events, in order: each at or after the one before (equal instants too), each
    written in an assorted zone. An event kind that names a record names one of
    ``subject_records`` (and is left out when there are none); one that may name a purpose
    names one, or none."""
    allowed = [
        k
        for k in (kinds if kinds is not None else sorted(policy.events))
        if subject_records or not policy.events[k].names_record
    ]
    if not allowed:
        return []
    count = draw(st.integers(0, max_events))
    at = draw(start if start is not None else instants(policy)).astimezone(UTC)
    edges = _sorted_edges(policy, MIN_YEAR, MAX_YEAR)
    out: list[Event] = []
    for i in range(count):
        if i:
            upcoming = bisect.bisect_right(edges, at)
            if upcoming < len(edges) and draw(st.integers(0, 3)) == 0:
                # On to one of the next edges: a DST changeover, a month's end, a due date...
                at = edges[min(len(edges) - 1, upcoming + draw(st.integers(0, 15)))]
            else:
                at = at + draw(_GAPS)
        kind = draw(st.sampled_from(allowed))
        spec = policy.events[kind]
        record = (
            draw(st.sampled_from([r.id for r in subject_records])) if spec.names_record else None
        )
        purpose = None
        if spec.names_purpose:
            purpose = draw(st.none() | st.sampled_from(sorted(policy.purposes)))
        written = _written_in(at, draw(timezones(policy)))
        out.append(Event(subject, kind, written, record, purpose))
    return out


class GeneratedWorld(World):
    """A :class:`~fairproc.World` whose ``repr`` is the Python that rebuilds it, so that a
    falsifying example hypothesis prints can be pasted into a test."""

    __slots__ = ("_given",)

    def __init__(
        self,
        records: Iterable[Record] = (),
        events: Iterable[Event] = (),
        suppression: Iterable[SuppressionEntry] = (),
    ):
        given = (tuple(records), tuple(events), tuple(suppression))
        super().__init__(*given)
        self._given = given

    @property
    def suppression(self) -> Sequence[SuppressionEntry]:
        """Every suppression entry, in the order given."""
        return self._given[2]

    def __repr__(self) -> str:
        records, events, suppression = self._given
        lines = ["World(", "    records=["]
        lines.extend(
            f"        Record({r.id!r}, {r.subject!r}, {r.source!r}, {r.collected_at!r}, "
            f"{dict(r.data)!r}),"
            for r in records
        )
        lines.append("    ],")
        lines.append("    events=[")
        lines.extend(f"        {e!r}," for e in events)
        lines.append("    ],")
        lines.append("    suppression=[")
        lines.extend(f"        {s!r}," for s in suppression)
        lines.append("    ],")
        lines.append(")")
        return "\n".join(lines)


@st.composite
def worlds(
    draw: st.DrawFn,
    policy: Policy,
    *,
    subjects: Sequence[str] = ("ada", "grace", "alan"),
    max_records: int = 6,
    max_events: int = 8,
    max_suppression: int = 2,
    min_year: int = MIN_YEAR,
    max_year: int = MAX_YEAR,
    values: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> GeneratedWorld:
    """A valid world for ``policy``: up to ``max_records`` records of a few subjects, each
    subject's timeline in order (its first event near one of its records, or anywhere), and a
    few suppression entries for the addresses in play."""
    when = instants(policy, min_year=min_year, max_year=max_year)
    who = st.sampled_from(tuple(subjects))
    count = draw(st.integers(0, max_records))
    recs = []
    for i in range(count):
        source = draw(st.sampled_from(sorted(policy.sources)))
        due = _falls_due_on_an_edge(policy, source, min_year, max_year)
        collected = st.one_of(when, due) if due is not None else when
        recs.append(
            draw(
                records(
                    policy,
                    record_id=f"r{i}",
                    subject=who,
                    source=source,
                    collected_at=collected,
                    values=values,
                )
            )
        )
    events: list[Event] = []
    for subject in subjects:
        own = [r for r in recs if r.subject == subject]
        start = near([r.collected_at for r in own]) | when if own else when
        events.extend(draw(timelines(policy, subject, own, start=start, max_events=max_events)))
    suppression = draw(
        st.lists(
            st.builds(
                SuppressionEntry,
                emails(),
                when,
                st.sampled_from(("unsubscribed", "objected", "erased")),
            ),
            max_size=max_suppression,
        )
    )
    return GeneratedWorld(recs, events, suppression)


# --- instants that matter for a world, and questions ----------------------------------------

_PERIOD_TEXT = re.compile(r"\bP(?:\d+[YMWD])*(?:T(?:\d+[HMS])+)?\b")


def _conditions(policy: Policy) -> Iterable[Condition]:
    for purpose in policy.purposes.values():
        yield from (g.when for g in purpose.bases if g.when is not None)
    yield from (r.require for r in policy.processing)
    for rule in policy.routing:
        yield from (c for c in (rule.when, rule.due) if c is not None)
    for kept in policy.retention:
        yield from (c for c in (kept.when, kept.from_) if c is not None)
    yield from (r.when for r in policy.recipients.values() if r.when is not None)


def policy_periods(policy: Policy) -> tuple[Period, ...]:
    """Every period the policy counts with: retention periods, rights' due periods and the
    periods its conditions add (``P4Y`` in ``at < subject.last_interaction + P4Y``)."""
    periods: tuple[Period, ...] = _per_policy(policy, "periods", lambda: _periods(policy))
    return periods


def _periods(policy: Policy) -> tuple[Period, ...]:
    found: dict[Period, None] = {}
    for kept in policy.retention:
        if kept.keep is not None:
            found[kept.keep] = None
    for right in policy.rights.values():
        found[right.due] = None
        found[right.due_complex] = None
    for condition in _conditions(policy):
        for text in _PERIOD_TEXT.findall(condition.text):
            try:
                found[Period.parse(text)] = None
            except ValueError:  # pragma: no cover - the regex only finds periods
                continue
    return tuple(p for p in found if p != Period())


def _world_instants(world: World) -> list[dt.datetime]:
    points = [r.collected_at for r in world.records]
    points.extend(e.at for e in world.events)
    # an address going on the list is a moment an answer may change at, as an event is
    points.extend(entry.at for entry in world.suppression)
    return points


def instants_for(
    policy: Policy, world: World, *, min_year: int = MIN_YEAR, max_year: int = MAX_YEAR
) -> st.SearchStrategy[dt.datetime]:
    """Instants worth asking about ``world`` at: :func:`near` its own instants (collections,
    events, suppression entries), and near each of them moved on by each of
    :func:`policy_periods` (where retention falls due and legitimate-interest windows close),
    as well as any :func:`instants`."""
    points = _world_instants(world)
    tz = policy.tz
    due = [p.add_to(point, tz) for point in points for p in policy_periods(policy)]
    general = instants(policy, min_year=min_year, max_year=max_year)
    options: list[st.SearchStrategy[dt.datetime]] = [general]
    if points:
        options.append(near(points, timezones(policy)))
    if due:
        options.append(near(due, timezones(policy)))
    return st.one_of(*options)


@attrs.frozen(repr=False)
class Question(Value):
    """One question for the engine: ``question.ask(engine)`` returns its decision."""

    name: str
    params: Mapping[str, Any]
    at: dt.datetime

    def ask(self, engine: Engine) -> Decision:
        method: Callable[..., Decision] = getattr(engine, self.name)
        return method(**self.params, at=self.at)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Question({self.name}({args}, at={self.at!r}))"


_ASKS = ("may_process", "may_share", "transfer", "may_email", "retention", "route")


@st.composite
def questions(
    draw: st.DrawFn,
    policy: Policy,
    world: World,
    *,
    asks: Sequence[str] = _ASKS,
    at: st.SearchStrategy[dt.datetime] | None = None,
) -> Question:
    """A question about ``world`` (a record, subject, purpose or recipient of the policy), at
    an instant from :func:`instants_for` unless ``at`` is given. Questions about a record are
    left out when the world has none; ``may_email`` needs the policy's marketing purpose."""
    possible = [
        a
        for a in asks
        if (world.records or a in ("transfer", "may_email"))
        and (a != "may_email" or policy.info.marketing_purpose is not None)
        and (a not in ("transfer", "may_share") or policy.recipients)
    ]
    name = draw(st.sampled_from(possible))
    when = draw(at if at is not None else instants_for(policy, world))
    record_ids = sorted(r.id for r in world.records)
    params: dict[str, Any] = {}
    if name in ("may_process", "may_share", "retention", "route"):
        params["record"] = draw(st.sampled_from(record_ids))
    if name == "may_process":
        params["purpose"] = draw(st.sampled_from(sorted(policy.purposes)))
    if name in ("may_share", "transfer"):
        params["recipient"] = draw(st.sampled_from(sorted(policy.recipients)))
    if name == "may_share":
        params["court_order"] = draw(st.booleans())
    if name == "may_email":
        subjects = sorted(world.subjects) or ["nobody"]
        params["subject"] = draw(st.sampled_from([*subjects, "nobody"]))
    return Question(name, params, when)

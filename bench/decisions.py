"""Decision latency on the reference policy, beside the practical limit and three peers.

    python bench/decisions.py [--quick] [--repeat N]

Every question (may_process, route, may_email, retention, may_share) is timed four ways: at
the same instant every call (what the subject's history remembers per instant is reused) and
at a new instant every call (a host asking at ``now``: every fact and date afresh), each
without and with ``explain()`` (the decision and its text, a new decision every call). Beside
each, a hand-written Python function encoding the same rules for this one policy, at the same
two instants: the practical limit.

The peers decide the same ``may_process`` rule (marketing_updates for a handbook download):
durable-rules ``post`` written directly, the ``rule-engine`` package, and casbin ``enforce``
on an ABAC model of the rule (``enforce_ex``, which names the policy line that matched, as its
explained form). None of them can read a timeline, so the facts they need (restricted,
objected, suppressed, the days left in the legitimate-interests window) are computed in the
timed part, at a new instant each call, as fairproc computes its own. Peers that are not
installed are reported as such, not skipped silently (durable-rules only imports on
Python < 3.13).

Each figure is the median of ``--repeat`` (at least 5) runs of ``n`` calls, with the spread
(the fastest and the slowest run) beside it, in microseconds per call of this process's CPU
time (``time.process_time``: on a machine other work shares, wall time measures the others
too; every peer runs in this process, so each is measured alike). Before any time is
taken, every answer is checked against the hand-written function at several instants.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import statistics
import sys
import time
import timeit
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from dateutil.relativedelta import relativedelta

from fairproc import Engine, Event, Record, World, load_policy
from fairproc.compiled import compile_questions

UTC = dt.UTC
AT = dt.datetime(2027, 1, 1, 12, tzinfo=UTC)
POLICY = load_policy("flexioffices")
LONDON = POLICY.tz
MARKETING_SOURCES = frozenset(
    {"handbook_download", "quick_quote", "multiquote", "live_chat", "contact_form"}
)
ENQUIRY_SOURCES = frozenset(
    {"contact_form", "quick_quote", "multiquote", "live_chat", "search_follow_up"}
)
INTERACTIONS = frozenset({"website_visit", "staff_contact", "email_open", "email_click"})
SUPPRESSING_PURPOSES = POLICY.suppressing_purposes()


def world() -> tuple[Engine, Record, Record, Record, list[Record], list[Event]]:
    handbook = Record(
        "h1",
        "ada",
        "handbook_download",
        dt.datetime(2026, 11, 20, 10, tzinfo=UTC),
        {"name": "Ada", "email": "ada@example.com", "phone": "020 7946 0000"},
    )
    quote = Record(
        "q1",
        "ada",
        "quick_quote",
        dt.datetime(2026, 11, 21, 10, tzinfo=UTC),
        {"name": "Ada", "email": "ada@example.com"},
    )
    visit = Record(
        "w1",
        "ada",
        "website_visit",
        dt.datetime(2026, 11, 22, 10, tzinfo=UTC),
        {"ip_address": "203.0.113.7"},
    )
    events = [
        Event("ada", "email_open", dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
        Event("ada", "website_visit", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        Event("ada", "cookies_accepted", dt.datetime(2026, 11, 22, 10, tzinfo=UTC)),
    ]
    records = [handbook, quote, visit]
    return Engine(POLICY, World(records, events)), handbook, quote, visit, records, events


# --- the hand-written limit: the same rules, written for this one policy ----------------------
#
# What a careful developer writes for the Flexioffices notice alone, with today's semantics
# (reference-policy.md): a record's collection counts as an interaction only while the record
# is not past its own due date (a fixpoint), suppression is by address, retention and the
# legitimate-interests window both run from the last interaction.

FOUR_YEARS = relativedelta(years=4)
TEN_YEARS = relativedelta(years=10)
TWELVE_MONTHS = relativedelta(months=12)
FORTY_EIGHT_HOURS = dt.timedelta(hours=48)


def hand_add(instant: dt.datetime, delta: relativedelta) -> dt.datetime:
    """Calendar arithmetic on the London wall clock, as a careful hand would write it."""
    wall = instant.astimezone(LONDON).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=LONDON).astimezone(UTC)


def hand_latest(
    events: Sequence[Event], kinds: frozenset[str], at: dt.datetime
) -> dt.datetime | None:
    times = [e.at for e in events if e.kind in kinds and e.at <= at]
    return max(times) if times else None


def hand_due(
    record: Record, events: Sequence[Event], at: dt.datetime, last: dt.datetime | None
) -> dt.datetime | None:
    """When ``record`` falls due (None: kept with no date, or review). ``last``: the last
    interaction, the record's own collection counted."""
    let = hand_latest(events, frozenset({"office_let"}), at)
    if let is not None:
        return None if record.source == "phone_call" else _latest_due(record, events, at, last, let)
    return _own_due(record, events, at, last)


def _own_due(
    record: Record, events: Sequence[Event], at: dt.datetime, last: dt.datetime | None
) -> dt.datetime | None:
    if record.source == "website_visit":
        return hand_add(record.collected_at, TWELVE_MONTHS)
    if record.source == "handbook_download":
        return hand_add(last, FOUR_YEARS) if last is not None else None
    if record.source in ENQUIRY_SOURCES:
        resolved = [
            e.at
            for e in events
            if e.kind == "enquiry_resolved" and e.record == record.id and e.at <= at
        ]
        return hand_add(max(resolved), TEN_YEARS) if resolved else None
    return None


def _latest_due(
    record: Record,
    events: Sequence[Event],
    at: dt.datetime,
    last: dt.datetime | None,
    let: dt.datetime,
) -> dt.datetime | None:
    own = _own_due(record, events, at, last)
    letting = hand_add(let, TEN_YEARS)
    if own is None and record.source in ENQUIRY_SOURCES | {"handbook_download"}:
        return None
    return letting if own is None or letting > own else own


def hand_counted(
    records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> tuple[list[Record], dt.datetime | None]:
    """The records whose collection counts as an interaction at ``at`` (not past their own
    due date: dropped until none is), and the latest interaction event."""
    event_last = hand_latest(events, INTERACTIONS, at)
    counted = [r for r in records if r.collected_at <= at]
    while counted:
        latest = max(r.collected_at for r in counted)
        last = latest if event_last is None or latest > event_last else event_last
        kept = []
        for r in counted:
            due = hand_due(r, events, at, last)
            if due is None or at < due:
                kept.append(r)
        if len(kept) == len(counted):
            break
        counted = kept
    return counted, event_last


def hand_last_interaction(
    record: Record, records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> dt.datetime | None:
    counted, last = hand_counted(records, events, at)
    times = [r.collected_at for r in counted]
    if record.collected_at <= at:
        times.append(record.collected_at)
    if last is not None:
        times.append(last)
    return max(times) if times else None


def hand_state(events: Sequence[Event], at: dt.datetime) -> tuple[bool, bool, bool]:
    """(restricted, objected to marketing_updates, suppressed) at ``at``."""
    restricted = objected = suppressed = False
    for e in events:
        if e.at > at:
            continue
        if e.kind == "restricted":
            restricted = True
        elif e.kind == "restriction_lifted":
            restricted = False
        elif e.kind == "unsubscribed":
            suppressed = True
        elif e.kind == "objected":
            if e.purpose in (None, "marketing_updates"):
                objected = True
            if e.purpose is None or e.purpose in SUPPRESSING_PURPOSES:
                suppressed = True
    return restricted, objected, suppressed


def hand_may_process_marketing(
    record: Record,
    records: Sequence[Record],
    events: Sequence[Event],
    at: dt.datetime,
    listed: dict[str, dt.datetime] | None = None,
) -> bool:
    """marketing_updates for ``record``; ``listed``: the suppression list by address."""
    if record.source not in MARKETING_SOURCES:
        return False
    if any(e.kind == "erased" and e.record in (None, record.id) and e.at <= at for e in events):
        return False
    last = hand_last_interaction(record, records, events, at)
    due = hand_due(record, events, at, last)
    if due is not None and at >= due:  # past its retention due date
        return False
    if last is None or at >= hand_add(last, FOUR_YEARS):  # the legitimate-interests window
        return False
    restricted, objected, suppressed = hand_state(events, at)
    email = record.data.get("email")
    if listed and isinstance(email, str):
        since = listed.get(email.strip().lower())
        suppressed = suppressed or (since is not None and since <= at)
    return not (restricted or objected or suppressed)


def hand_route(
    record: Record, events: Sequence[Event], at: dt.datetime
) -> tuple[str, dt.datetime | None]:
    if record.source in ("quick_quote", "multiquote", "live_chat"):
        if any(e.kind == "contact_failed" and e.record == record.id and e.at <= at for e in events):
            return "pass_to_providers", None
        local = record.collected_at.astimezone(LONDON)
        t = local.time()
        open_ = local.weekday() < 5 and dt.time(9) <= t < dt.time(17, 30)
        return ("staff_contact" if open_ else "pass_to_providers"), None
    if record.source == "handbook_download":
        return "phone_follow_up", record.collected_at + FORTY_EIGHT_HOURS
    return "not_applicable", None


def hand_may_email(
    records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> tuple[str, ...]:
    """The addresses marketing email may go to (none: denied)."""
    found: dict[str, None] = {}
    for r in records:
        email = r.data.get("email")
        if (
            isinstance(email, str)
            and email.strip()
            and r.collected_at <= at
            and hand_may_process_marketing(r, records, events, at)
        ):
            found.setdefault(email.strip().lower(), None)
    return tuple(found)


def hand_retention(
    record: Record, records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> tuple[str, dt.datetime | None]:
    if record.source == "phone_call":
        return "review", None
    due = hand_due(record, events, at, hand_last_interaction(record, records, events, at))
    if due is None:
        return "keep", None
    return ("keep" if at < due else "delete"), due


MARKETING_CONSULTANCY_CATEGORIES = ("name", "email")


def hand_may_share_consultancy(
    record: Record, records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> tuple[str, ...] | None:
    """marketing_consultancy: name and email, while marketing_updates is allowed (no
    transfer: the consultancy is in the UK). None: denied."""
    if not hand_may_process_marketing(record, records, events, at):
        return None
    shown = tuple(c for c in MARKETING_CONSULTANCY_CATEGORIES if c in record.data)
    return shown or None


# --- the peers: durable-rules, rule-engine, casbin -------------------------------------------

CONDITION = (
    "source in sources and not restricted and not objected and not suppressed and li_left > 0"
)


def facts(
    record: Record, records: Sequence[Record], events: Sequence[Event], at: dt.datetime
) -> dict[str, Any]:
    """The facts every peer needs: they cannot read a timeline themselves."""
    last = hand_last_interaction(record, records, events, at)
    due = hand_due(record, events, at, last)
    window = hand_add(last, FOUR_YEARS) if last is not None else None
    if due is not None and (window is None or due < window):
        window = due
    restricted, objected, suppressed = hand_state(events, at)
    return {
        "source": record.source,
        "restricted": restricted,
        "objected": objected,
        "suppressed": suppressed,
        # durable-rules cannot compare two fields of one fact: post the seconds left
        "li_left": (window - at).total_seconds() if window is not None else 0,
    }


def durable_decider() -> Callable[[dict[str, Any]], bool] | str:
    try:
        from durable import engine as durable_engine
    except Exception as exc:
        return f"not importable ({type(exc).__name__})"

    class InlineHost(durable_engine.Host):  # type: ignore[misc]
        def _run(self) -> None:  # no timer threads: actions run inline
            return None

    results: list[bool] = []

    def allowed(c: Any) -> None:
        results.append(True)

    rules = {
        "may_process": {
            "allowed": {
                "all": [
                    {
                        "m": {
                            "$and": [
                                {"$or": [{"source": s} for s in sorted(MARKETING_SOURCES)]},
                                {"restricted": False},
                                {"objected": False},
                                {"suppressed": False},
                                {"$gt": {"li_left": 0}},
                            ]
                        }
                    }
                ],
                "run": "allowed",
            }
        }
    }
    host = InlineHost()
    host.get_action = lambda name: allowed  # type: ignore[method-assign]
    host.set_rulesets(copy.deepcopy(rules))

    def decide(fact: dict[str, Any]) -> bool:
        results.clear()
        try:
            host.post("may_process", dict(fact))
        except durable_engine.MessageNotHandledException:  # no rule matched: denied
            return False
        return bool(results)

    return decide


def rule_engine_decider() -> Callable[[dict[str, Any]], bool] | str:
    try:
        import rule_engine
    except ImportError:
        return "not installed"
    rule = rule_engine.Rule(CONDITION)
    sources = tuple(sorted(MARKETING_SOURCES))

    def decide(fact: dict[str, Any]) -> bool:
        return bool(rule.matches({**fact, "sources": sources}))

    return decide


CASBIN_MODEL = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.obj == p.obj && r.act == p.act && r.sub.marketing_source && !r.sub.restricted \
&& !r.sub.objected && !r.sub.suppressed && r.sub.li_left > 0
"""


def casbin_deciders() -> (
    tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], Any]] | str
):
    """(enforce, enforce_ex) on an ABAC model of the rule: the subject's facts as attributes,
    one policy line allowing marketing_updates."""
    try:
        import casbin
        from casbin.model import Model
    except ImportError:
        return "not installed"
    model = Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    enforcer.add_policy("marketing_updates", "process")

    def subject(fact: dict[str, Any]) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            marketing_source=fact["source"] in MARKETING_SOURCES,
            restricted=fact["restricted"],
            objected=fact["objected"],
            suppressed=fact["suppressed"],
            li_left=fact["li_left"],
        )

    def enforce(fact: dict[str, Any]) -> bool:
        return bool(enforcer.enforce(subject(fact), "marketing_updates", "process"))

    def enforce_ex(fact: dict[str, Any]) -> tuple[bool, list[str]]:
        allowed, explained = enforcer.enforce_ex(subject(fact), "marketing_updates", "process")
        return bool(allowed), explained

    return enforce, enforce_ex


# --- timing -----------------------------------------------------------------------------------


class Timing(NamedTuple):
    median: float  # microseconds per call
    fastest: float
    slowest: float

    def __str__(self) -> str:
        return f"{self.median:7.1f} ({self.fastest:.1f}-{self.slowest:.1f})"


def per_call(fn: Callable[[], Any], number: int, repeat: int) -> Timing:
    fn()  # warm
    runs = timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)
    runs = [t / number * 1e6 for t in runs]
    return Timing(statistics.median(runs), min(runs), max(runs))


def instants(start: dt.datetime, count: int = 10_007) -> Iterator[dt.datetime]:
    """A new instant every call (cycling over ``count`` of them, a minute apart)."""
    return itertools.cycle([start + dt.timedelta(minutes=k) for k in range(count)])


def explained(decide: Callable[[dt.datetime], Any]) -> Callable[[dt.datetime], str]:
    def both(at: dt.datetime) -> str:
        return decide(at).explain()

    return both


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (at least 5)")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 10000
    repeat = max(5, args.repeat)
    engine, handbook, quote, visit, records, events = world()

    # question: (fairproc at an instant, its answer as the hand gives it, hand-written)
    compiled = compile_questions(Engine(POLICY, World(records, events)))
    # (question, how fairproc asks it, at an instant; its answer as the hand gives it;
    # hand-written). "engine": the interpreter, the reference; "compiled": fairproc.compiled,
    # on an engine of its own (nothing remembered is shared between the two).
    questions: list[
        tuple[
            str,
            str,
            Callable[[dt.datetime], Any],
            Callable[[Any], Any],
            Callable[[dt.datetime], Any],
        ]
    ] = []
    for way, asked in (("engine", engine), ("compiled", compiled)):
        questions += [
            (
                "may_process",
                way,
                lambda at, q=asked: q.may_process(handbook, "marketing_updates", at),
                lambda d: d.allowed,
                lambda at: hand_may_process_marketing(handbook, records, events, at),
            ),
            (
                "route",
                way,
                lambda at, q=asked: q.route(quote, at),
                lambda d: (d.outcome, d.due),
                lambda at: hand_route(quote, events, at),
            ),
            (
                "may_email",
                way,
                lambda at, q=asked: q.may_email("ada", at),
                lambda d: d.addresses or (),
                lambda at: hand_may_email(records, events, at),
            ),
            (
                "retention",
                way,
                lambda at, q=asked: q.retention(visit, at),
                lambda d: (d.outcome, d.until),
                lambda at: hand_retention(visit, records, events, at),
            ),
        ]
        if hasattr(asked, "may_share"):
            questions.append(
                (
                    "may_share",
                    way,
                    lambda at, q=asked: q.may_share(handbook, "marketing_consultancy", at),
                    lambda d: d.categories,
                    lambda at: hand_may_share_consultancy(handbook, records, events, at),
                )
            )
    order = list(dict.fromkeys(name for name, *_ in questions))
    questions.sort(key=lambda q: order.index(q[0]))  # each question's ways side by side
    # The answers must agree before the times mean anything: at the bench's instants, and
    # across the years the rules turn on (the visit falls due, the window closes).
    checks = [AT + dt.timedelta(minutes=k) for k in range(0, 10_007, 997)]
    checks += [AT + dt.timedelta(days=d) for d in range(0, 365 * 5, 61)]
    for name, way, ours, answer, hand in questions:
        for at in checks:
            got, want = answer(ours(at)), hand(at)
            assert got == want, f"{name} ({way}) at {at}: fairproc {got!r}, hand {want!r}"

    print(
        f"decision latency, warmed: median (fastest-slowest) of {repeat} runs x {n} calls, "
        "CPU microseconds per call"
    )
    header = (
        f"{'question':<12} {'fairproc':<9} {'instant':<5} {'decision':>24} {'+ explain()':>24} "
        f"{'hand-written':>24} {'ratio':>6} {'explained':>9}"
    )
    print(header)
    ratios: dict[tuple[str, str], tuple[float, float]] = {}  # at a new instant, to the hand
    for name, way, ours, _, hand in questions:
        for label in ("same", "new"):
            if label == "same":
                at_ours = at_explained = at_hand = itertools.repeat(AT)
            else:
                at_ours, at_explained, at_hand = instants(AT), instants(AT), instants(AT)
            plain = per_call(lambda o=ours, a=at_ours: o(next(a)), n, repeat)
            text = explained(ours)
            told = per_call(lambda t=text, a=at_explained: t(next(a)), n, repeat)
            limit = per_call(lambda h=hand, a=at_hand: h(next(a)), n, repeat)
            print(
                f"{name:<12} {way:<9} {label:<5} {plain!s:>24} {told!s:>24} {limit!s:>24} "
                f"{plain.median / limit.median:5.1f}x {told.median / limit.median:8.1f}x"
            )
            if label == "new":
                ratios[(name, way)] = (plain.median / limit.median, told.median / limit.median)

    print()
    print(
        "may_process (marketing_updates, a handbook download) at a new instant each call, "
        "the facts computed in the timed part for each peer"
    )
    ours: dict[str, Timing] = {}
    for way, asked in (("engine", engine), ("compiled", compiled)):
        at_fp, at_fx = instants(AT), instants(AT)
        ours[f"fairproc {way}"] = per_call(
            lambda q=asked, a=at_fp: q.may_process(handbook, "marketing_updates", next(a)),
            n,
            repeat,
        )
        ours[f"fairproc {way} + explain()"] = per_call(
            lambda q=asked, a=at_fx: q.may_process(
                handbook, "marketing_updates", next(a)
            ).explain(),
            n,
            repeat,
        )
    fairproc_new = ours["fairproc compiled"]
    fairproc_told = ours["fairproc compiled + explain()"]
    peers: list[tuple[str, Callable[[dict[str, Any]], Any] | str]] = [
        ("durable-rules post", durable_decider()),
        ("rule-engine matches", rule_engine_decider()),
    ]
    casbin = casbin_deciders()
    if isinstance(casbin, str):
        peers += [("casbin enforce", casbin), ("casbin enforce_ex", casbin)]
    else:
        peers += [("casbin enforce", casbin[0]), ("casbin enforce_ex", casbin[1])]
    print(f"{'':<31} {'us per call':>24} {'/ compiled':>11} {'/ compiled + explain()':>23}")
    for label, timing in ours.items():
        print(f"{label:<31} {timing!s:>24}")
    peer_times: dict[str, Timing] = {}
    for label, decider in peers:
        if isinstance(decider, str):
            print(f"{label:<31} {decider:>24}")
            continue
        for at in checks:
            verdict = decider(facts(handbook, records, events, at))
            allowed = verdict[0] if isinstance(verdict, tuple) else verdict
            assert allowed == hand_may_process_marketing(handbook, records, events, at), label
        at_peer = instants(AT)
        timing = per_call(
            lambda d=decider, a=at_peer: d(facts(handbook, records, events, next(a))), n, repeat
        )
        print(
            f"{label:<31} {timing!s:>24} {timing.median / fairproc_new.median:10.1f}x "
            f"{timing.median / fairproc_told.median:22.1f}x"
        )
        peer_times[label] = timing
    print()
    print("issue 20's targets, at a new instant, the compiled questions:")
    for name in ("may_process", "route", "may_email", "retention"):
        plain_ratio, told_ratio = ratios[(name, "compiled")]
        print(
            f"  {name:<12} unexplained {plain_ratio:4.1f}x the hand-written (target 1.5x: "
            f"{_met(plain_ratio <= 1.5)}), explained {told_ratio:4.1f}x (target 3x: "
            f"{_met(told_ratio <= 3.0)})"
        )
    durable = peer_times.get("durable-rules post")
    if durable is not None:
        faster = durable.median / fairproc_new.median
        print(f"  {faster:.1f}x faster than durable-rules post (target 5x: {_met(faster >= 5)})")
    casbin_ex = peer_times.get("casbin enforce_ex")
    if casbin_ex is not None:
        faster = casbin_ex.median / fairproc_new.median
        print(
            f"  {faster:.1f}x faster than casbin enforce_ex, explained (target: faster: "
            f"{_met(faster > 1)})"
        )
    return 0


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    sys.exit(main())

"""Decision latency on the reference policy, beside the practical limit and two peers.

    python bench/decisions.py [--quick]

For may_process, route, may_email and retention (warmed), it times fairproc against
(a) a hand-written Python function encoding the same rule, (b) the same decision through
durable-rules written directly, and (c) the same condition through the ``rule-engine``
package, and prints a table of microseconds per decision and ratios to the hand-written
function. Peers that are not installed are reported as such, not skipped silently.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

from dateutil.relativedelta import relativedelta

from fairproc import Engine, Event, Record, World, load_policy

UTC = dt.UTC
AT = dt.datetime(2027, 1, 1, 12, tzinfo=UTC)
MARKETING_SOURCES = frozenset(
    {"handbook_download", "quick_quote", "multiquote", "live_chat", "contact_form"}
)
INTERACTIONS = ("website_visit", "staff_contact", "email_open", "email_click")


def world() -> tuple[Engine, Record, Record, Record, list[Record], list[Event]]:
    policy = load_policy("flexioffices")
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
    return Engine(policy, World(records, events)), handbook, quote, visit, records, events


# --- (a) the hand-written limit: the same rules, written for this one policy ------------------

LONDON = load_policy("flexioffices").tz
FOUR_YEARS = relativedelta(years=4)
TWELVE_MONTHS = relativedelta(months=12)


def hand_add(instant: dt.datetime, delta: relativedelta) -> dt.datetime:
    """Calendar arithmetic on the London wall clock, as a careful hand would write it."""
    wall = instant.astimezone(LONDON).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=LONDON)


def hand_last_interaction(
    records: list[Record], events: list[Event], at: dt.datetime
) -> dt.datetime | None:
    times = [r.collected_at for r in records if r.collected_at <= at]
    times += [e.at for e in events if e.kind in INTERACTIONS and e.at <= at]
    return max(times) if times else None


def hand_may_process_marketing(
    record: Record, records: list[Record], events: list[Event], at: dt.datetime
) -> bool:
    if record.source not in MARKETING_SOURCES:
        return False
    last = hand_last_interaction(records, events, at)
    if last is None or at >= hand_add(last, FOUR_YEARS):  # retention and the LI window
        return False
    restricted = suppressed = objected = False
    for e in events:
        if e.at > at:
            continue
        if e.kind == "restricted":
            restricted = True
        elif e.kind == "restriction_lifted":
            restricted = False
        elif e.kind == "unsubscribed":
            suppressed = True
        elif e.kind == "objected" and e.purpose in (None, "marketing_updates"):
            objected = suppressed = True
    return not (restricted or objected or suppressed)


def hand_route(record: Record) -> str:
    if record.source in ("quick_quote", "multiquote", "live_chat"):
        local = record.collected_at.astimezone(LONDON)
        t = local.time()
        open_ = local.weekday() < 5 and dt.time(9) <= t < dt.time(17, 30)
        return "staff_contact" if open_ else "pass_to_providers"
    if record.source == "handbook_download":
        return "phone_follow_up"
    return "not_applicable"


def hand_may_email(records: list[Record], events: list[Event], at: dt.datetime) -> bool:
    return any(
        "email" in r.data and hand_may_process_marketing(r, records, events, at) for r in records
    )


def hand_retention(
    record: Record, records: list[Record], events: list[Event], at: dt.datetime
) -> str:
    if record.source == "website_visit":
        return "keep" if at < hand_add(record.collected_at, TWELVE_MONTHS) else "delete"
    last = hand_last_interaction(records, events, at)
    assert last is not None
    return "keep" if at < hand_add(last, FOUR_YEARS) else "delete"


# --- (b) durable-rules written directly, (c) rule-engine ------------------------------------

CONDITION = (
    "source in sources and not restricted and not objected and not suppressed and li_left > 0"
)


def facts(
    record: Record, records: list[Record], events: list[Event], at: dt.datetime
) -> dict[str, Any]:
    """The per-question facts both peers need: they cannot read a timeline themselves."""
    last = hand_last_interaction(records, events, at)
    kinds = {e.kind for e in events if e.at <= at}
    return {
        "source": record.source,
        "restricted": "restricted" in kinds,
        "objected": "objected" in kinds,
        "suppressed": "unsubscribed" in kinds,
        "at": int(at.timestamp()),
        # durable-rules cannot compare two fields of one fact: post the difference
        "li_left": (int(hand_add(last, FOUR_YEARS).timestamp()) if last else 0)
        - int(at.timestamp()),
    }


def durable_decider() -> Callable[[dict[str, Any]], bool] | str:
    try:
        from durable import engine as durable_engine
    except Exception as exc:
        return f"durable-rules not importable ({type(exc).__name__}: {exc})"

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
        host.post("may_process", dict(fact))
        return bool(results)

    return decide


def rule_engine_decider() -> Callable[[dict[str, Any]], bool] | str:
    try:
        import rule_engine
    except ImportError as exc:
        return f"rule-engine not installed ({exc})"
    rule = rule_engine.Rule(CONDITION)
    sources = tuple(sorted(MARKETING_SOURCES))

    def decide(fact: dict[str, Any]) -> bool:
        return bool(rule.matches({**fact, "sources": sources}))

    return decide


# --- timing -----------------------------------------------------------------------------------


def per_call(fn: Callable[[], Any], number: int, repeat: int = 5) -> float:
    fn()  # warm
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 20000
    engine, handbook, quote, visit, records, events = world()

    # the answers must agree before the times mean anything
    assert engine.may_process(
        handbook, "marketing_updates", AT
    ).allowed == hand_may_process_marketing(handbook, records, events, AT)
    assert engine.route(quote, AT).outcome == hand_route(quote)
    assert engine.may_email("ada", AT).allowed == hand_may_email(records, events, AT)
    assert engine.retention(visit, AT).outcome == hand_retention(visit, records, events, AT)

    rows: list[tuple[str, float, float, str, str]] = []
    durable = durable_decider()
    rule_eng = rule_engine_decider()

    def peer(decider: Callable[[dict[str, Any]], bool] | str) -> str:
        if isinstance(decider, str):
            return decider
        assert decider(facts(handbook, records, events, AT)) is True
        t = per_call(lambda: decider(facts(handbook, records, events, AT)), n)
        return f"{t:8.1f} us"

    cases = [
        (
            "may_process",
            lambda: engine.may_process(handbook, "marketing_updates", AT),
            lambda: hand_may_process_marketing(handbook, records, events, AT),
        ),
        ("route", lambda: engine.route(quote, AT), lambda: hand_route(quote)),
        (
            "may_email",
            lambda: engine.may_email("ada", AT),
            lambda: hand_may_email(records, events, AT),
        ),
        (
            "retention",
            lambda: engine.retention(visit, AT),
            lambda: hand_retention(visit, records, events, AT),
        ),
    ]
    # Warmed, the same question at the same instant reuses what the subject's history
    # remembers per instant (facts, shifted dates, retention). A host asking at ``now`` asks
    # at a new instant every time: this row pays for every fact and date afresh.
    fresh = [AT + dt.timedelta(minutes=k) for k in range(10_007)]
    assert all(
        engine.may_process(handbook, "marketing_updates", at).allowed
        == hand_may_process_marketing(handbook, records, events, at)
        for at in fresh[::500]
    )
    ours_at, hand_at = itertools.cycle(fresh), itertools.cycle(fresh)
    cases.insert(
        1,
        (
            "may_process, a new instant each call",
            lambda: engine.may_process(handbook, "marketing_updates", next(ours_at)),
            lambda: hand_may_process_marketing(handbook, records, events, next(hand_at)),
        ),
    )
    for name, ours, hand in cases:
        t_ours, t_hand = per_call(ours, n), per_call(hand, n)
        rows.append(
            (
                name,
                t_ours,
                t_hand,
                peer(durable) if name == "may_process" else "",
                peer(rule_eng) if name == "may_process" else "",
            )
        )

    print(f"decision latency, warmed, median of 5 x {n} calls (microseconds per decision)")
    print(
        f"{'question':<38} {'fairproc':>10} {'hand-written':>13} {'ratio':>7}  "
        f"{'durable-rules direct':>22}  {'rule-engine':>12}"
    )
    for name, ours, hand, dur, re_ in rows:
        print(
            f"{name:<38} {ours:8.1f} us {hand:10.1f} us {ours / hand:6.1f}x  {dur:>22}  {re_:>12}"
        )
    mp = rows[0]
    if not isinstance(durable, str):
        t_dur = float(mp[3].split()[0])
        print(f"may_process: fairproc is {t_dur / mp[1]:.1f}x faster than durable-rules direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Events per second through the reactive engine, beside the same rules written by hand for
durable-rules, and beside the pure-Python reactions, in one run.

Run from the repository root (durable-rules installed: ``pip install -e ".[dev]"`` on Python
3.11 or 3.12, or ``pip install "fairproc[durable]"``; without it, on Python 3.13 for one, only
the pure-Python row is measured)::

    python bench/reactive.py                  # 20,000 arrivals, median of 5 runs
    python bench/reactive.py --events 2000 --runs 3

The stream is the same for every row: 20,000 arrivals (by default) about 2,000 subjects who
each already have a record with an email address in the store, half of them records collected
from random sources at random instants of 2026 (weekends, evenings and office hours), half
events (unsubscribes, objections with and without a purpose, restrictions, cookie choices,
office lets, website visits). Each row posts the whole stream in order and reports
arrivals per second, the median of the runs:

* ``durable-rules, hand-written, post``: the reference policy's five reactions written
  directly as durable-rules JSON, a :class:`durable.engine.Host` (without its timer threads),
  each arrival turned into a small message and ``post``-ed as an event; the actions only count.
* ``durable-rules, hand-written, assert+retract``: the same, each arrival asserted as a fact
  and retracted, as fairproc does so that every matching rule fires (an event fires only the
  first it matches).
* ``fairproc ReactiveEngine (durable-rules)``: ``ReactiveEngine.post(arrival, apply=False)``:
  the compiled rules choose the reactions, fairproc carries them out (routing decisions with
  office hours and due times, suppression entries, audit entries, the change set).
* ``fairproc ReactionSession (pure Python)``: the same through the Python reference.

Changes are not applied to the store (``apply=False``): what is measured is reacting, not a
store's writes (applying to an immutable in-memory World copies it on every arrival).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import importlib.metadata
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from fairproc import Event, Record, World, load_policy
from fairproc.model import Policy
from fairproc.reactions import Arrival, ReactionSession

LONDON = ZoneInfo("Europe/London")
SOURCES_WITH_EMAIL = ("quick_quote", "multiquote", "live_chat", "contact_form", "handbook_download")

# The reference policy's reactions (rules/flexioffices/reactions.toml), written by hand.
HAND_WRITTEN = {
    "enquiry": {
        "all": [
            {
                "m": {
                    "$and": [
                        {"t": "record"},
                        {
                            "$or": [
                                {"source": "quick_quote"},
                                {"source": "multiquote"},
                                {"source": "live_chat"},
                            ]
                        },
                    ]
                }
            }
        ],
        "run": "count",
    },
    "handbook": {
        "all": [{"m": {"$and": [{"t": "record"}, {"source": "handbook_download"}]}}],
        "run": "count",
    },
    "unsubscribe": {
        "all": [{"m": {"$and": [{"t": "event"}, {"kind": "unsubscribed"}]}}],
        "run": "count",
    },
    "objection": {
        "all": [{"m": {"$and": [{"t": "event"}, {"kind": "objected"}]}}],
        "run": "count",
    },
    "restriction": {
        "all": [{"m": {"$and": [{"t": "event"}, {"kind": "restricted"}]}}],
        "run": "count",
    },
}


def stream(policy: Policy, n: int, subjects: int, seed: int = 2026) -> tuple[World, list[Arrival]]:
    """The store (one record with an email per subject) and ``n`` arrivals, reproducibly."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=LONDON)

    def instant() -> dt.datetime:
        return (start + dt.timedelta(seconds=rng.randrange(365 * 24 * 3600))).astimezone(LONDON)

    names = [f"s{i}" for i in range(subjects)]
    base = [
        Record(
            f"base-{s}", s, "contact_form", start, {"name": s, "email": f" {s.upper()}@Example.com"}
        )
        for s in names
    ]
    sources = sorted(policy.sources)
    kinds = (
        ["unsubscribed"] * 3
        + ["objected"] * 3
        + ["restricted", "cookies_accepted", "cookies_rejected", "office_let", "website_visit"]
    )
    purposes = [None, None, "marketing_updates", "office_search", "analytics"]
    arrivals: list[Arrival] = []
    for i in range(n):
        subject = rng.choice(names)
        if rng.random() < 0.5:
            source = rng.choice(sources)
            data = {"name": subject}
            if source in SOURCES_WITH_EMAIL:
                data["email"] = f"{subject}@example.com"
            arrivals.append(Record(f"r{i}", subject, source, instant(), data))
        else:
            kind = rng.choice(kinds)
            purpose = rng.choice(purposes) if kind == "objected" else None
            arrivals.append(Event(subject, kind, instant(), purpose=purpose))
    return World(base), arrivals


def hand_message(arrival: Arrival) -> dict[str, Any]:
    if isinstance(arrival, Record):
        return {"t": "record", "source": arrival.source}
    return {"t": "event", "kind": arrival.kind}


def hand_written(arrivals: Sequence[Arrival], facts: bool) -> Callable[[], int]:
    from durable.engine import Host, MessageNotHandledException

    class QuietHost(Host):  # type: ignore[misc]
        def _run(self) -> None:  # no timer threads: actions run inline
            return None

        def get_action(self, action_name: str) -> Callable[[Any], None]:
            return count

    fired = [0]

    def count(c: Any) -> None:
        fired[0] += 1

    def run() -> int:
        fired[0] = 0
        host = QuietHost({"bench": copy.deepcopy(HAND_WRITTEN)})
        try:
            for arrival in arrivals:
                msg = hand_message(arrival)
                try:
                    if facts:
                        host.assert_fact("bench", msg)
                        host.retract_fact("bench", msg)
                    else:
                        host.post("bench", msg)
                except MessageNotHandledException:
                    pass
        finally:
            import durable_rules_engine

            for ruleset in host._ruleset_list:
                durable_rules_engine.delete_ruleset(ruleset._handle)
        return fired[0]

    return run


def through(make: Callable[[], ReactionSession], arrivals: Sequence[Arrival]) -> Callable[[], int]:
    def run() -> int:
        session = make()
        fired = 0
        try:
            for arrival in arrivals:
                fired += len(session.post(arrival, apply=False).fired)
        finally:
            close = getattr(session, "close", None)
            if close is not None:
                close()
        return fired

    return run


def measure(
    rows: Sequence[tuple[str, Callable[[], int]]], runs: int, n: int
) -> list[tuple[str, float, int]]:
    """Each row's median rate; the rows take turns in every run, so that a load that comes and
    goes on the machine falls on all of them alike."""
    rates: dict[str, list[float]] = {label: [] for label, _ in rows}
    fired: dict[str, int] = {}
    for _ in range(runs):
        for label, run in rows:
            began = time.perf_counter()
            fired[label] = run()
            rates[label].append(n / (time.perf_counter() - began))
    return [(label, statistics.median(rates[label]), fired[label]) for label, _ in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="arrivals per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per row (the median is shown)")
    parser.add_argument("--subjects", type=int, default=2_000)
    args = parser.parse_args(argv)

    from fairproc.reactive import DurableUnavailable, ReactiveEngine, load_durable

    policy = load_policy("flexioffices")
    world, arrivals = stream(policy, args.events, args.subjects)
    n = len(arrivals)
    python_row = (
        "fairproc ReactionSession (pure Python)",
        through(lambda: ReactionSession(policy, world), arrivals),
    )
    try:
        load_durable()
    except DurableUnavailable as exc:  # Python 3.13, or not installed: the Python row only
        print(f"no durable-rules rows: {exc}", file=sys.stderr)
        rows = [python_row]
    else:
        rows = [
            ("durable-rules, hand-written, post", hand_written(arrivals, facts=False)),
            ("durable-rules, hand-written, assert+retract", hand_written(arrivals, facts=True)),
            (
                "fairproc ReactiveEngine (durable-rules)",
                through(lambda: ReactiveEngine(policy, world), arrivals),
            ),
            python_row,
        ]
    durable_version = "not installed"
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        durable_version = importlib.metadata.version("durable-rules")
    print(
        f"{n:,} arrivals, {args.subjects:,} subjects, median of {args.runs} runs; "
        f"Python {platform.python_version()}, durable-rules {durable_version}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'':46} {'arrivals/s':>12} {'µs each':>9} {'fired':>7}")
    results = []
    for label, rate, fired in measure(rows, args.runs, n):
        results.append(fired)
        print(f"{label:46} {rate:12,.0f} {1e6 / rate:9.1f} {fired:7,}")
    if len(set(results)) != 1:
        print(f"the rows fired different numbers of reactions: {results}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
